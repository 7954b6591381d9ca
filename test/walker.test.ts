import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as Conntrack from "../src/Conntrack.js"
import * as ErrorsModule from "../src/Errors.js"
import type { Flow } from "../src/Flow.js"
import type { WalkedFlow } from "../src/FlowTable.js"
import * as FlowWalker from "../src/FlowWalker.js"
import * as Metrics from "../src/Metrics.js"
import type { WalkerOptions } from "../src/Options.js"
import * as Scripted from "../src/testing.js"

interface LogLine {
  readonly level: string
  readonly message: string
}

const recordLogs = () => {
  const logs: Array<LogLine> = []
  const logger = Logger.make(({ logLevel, message }) => {
    logs.push({ level: logLevel.label, message: Array.isArray(message) ? message.join(" ") : String(message) })
  })
  const layer = Layer.merge(Logger.replace(Logger.defaultLogger, logger), Logger.minimumLogLevel(LogLevel.Debug))
  return { logs, layer }
}

const procRootWith = (content: string | undefined) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "effect-conntrack-proc-"))
  if (content !== undefined) {
    fs.mkdirSync(path.join(root, "sys/net/netfilter"), { recursive: true })
    fs.writeFileSync(path.join(root, "sys/net/netfilter/nf_conntrack_events"), content)
  }
  return root
}

const established = (id: number, sport = 40000 + id) => Scripted.tcpFlow({ id, sport, dport: 80 })
const update = (id: number, state: string, sport = 40000 + id) =>
  Scripted.tcpFlow({ id, sport, dport: 80, state, type: state === "CLOSE" ? "DESTROY" : "UPDATE" })

const report = (walked: ReadonlyArray<WalkedFlow>) =>
  walked.map((w) => `${w.flow.id}:${w.active ? "active" : "dead"}`).sort()

/** Runs `body` with a walker over the scripted conntrack, the test clock, and recorded logs. */
const withWalker = <A, E>(
  script: Scripted.Script,
  options: WalkerOptions,
  body: (walker: FlowWalker.Service, logs: ReadonlyArray<LogLine>) => Effect.Effect<A, E, Scripted.ScriptedConntrack>
) => {
  const { logs, layer } = recordLogs()
  return Effect.gen(function* () {
    const walker = yield* FlowWalker.make(options)
    yield* TestClock.adjust("1 millis")
    return yield* body(walker, logs)
  }).pipe(Effect.scoped, Effect.provide(Scripted.layer(script)), Effect.provide(layer))
}

const spawnedKinds = Effect.map(Scripted.ScriptedConntrack, (s) => s.spawned).pipe(
  Effect.flatten,
  Effect.map((all) => all.map((p) => p.kind))
)

/**
 * Runs `effect` with a PATH of its own: a new directory, holding an executable `stdbuf` when `stdbuf` is true. (The
 * scripted executor runs nothing: only the lookup of stdbuf reads the PATH. A new directory each time, since a stdbuf
 * that failed is remembered for its PATH.)
 */
const withPath = <A, E, R>(stdbuf: boolean, effect: Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ectx-walker-path-"))
      if (stdbuf) fs.writeFileSync(path.join(dir, "stdbuf"), "#!/bin/sh\n", { mode: 0o755 })
      const saved = process.env.PATH
      process.env.PATH = dir
      return { dir, saved }
    }),
    () => effect,
    ({ dir, saved }) =>
      Effect.sync(() => {
        if (saved === undefined) delete process.env.PATH
        else process.env.PATH = saved
        fs.rmSync(dir, { recursive: true, force: true })
      })
  )

/** The command lines of the dumps spawned so far. */
const dumpLines = Effect.map(Effect.flatten(Effect.map(Scripted.ScriptedConntrack, (s) => s.spawned)), (spawned) =>
  spawned.filter((s) => s.kind === "dump").map((s) => [s.command, ...s.args].join(" "))
)

describe("FlowWalker with a scripted conntrack", () => {
  it.effect("starts the event stream before the dump, and walks dumped flows and events", () =>
    withWalker(
      { dump: [Scripted.dumpRun([established(1)])], events: [Scripted.eventsRun([update(2, "ESTABLISHED")])] },
      {},
      (walker) =>
        Effect.gen(function* () {
          expect(yield* spawnedKinds).toStrictEqual(["events", "dump"])
          expect(report(yield* walker.walk)).toStrictEqual(["1:active", "2:active"])
        })
    )
  )

  it.effect("runs conntrack through setpriv with the documented arguments, the dump through stdbuf", () =>
    withPath(
      true,
      withWalker({}, { bufferSize: 1024, extraArgs: ["--zone", "3"] }, () =>
        Effect.gen(function* () {
          const spawned = yield* Effect.flatten(Effect.map(Scripted.ScriptedConntrack, (s) => s.spawned))
          expect(spawned.map((s) => [s.command, ...s.args].join(" "))).toStrictEqual([
            "setpriv --pdeathsig KILL -- conntrack --buffer-size 1024 -E -o id -p tcp --zone 3",
            "setpriv --pdeathsig KILL -- stdbuf -o 65536 conntrack -L -o id -p tcp --zone 3"
          ])
        })
      )
    )
  )

  it.effect("dumps without stdbuf when the PATH has none", () =>
    withPath(
      false,
      withWalker({}, {}, () =>
        Effect.map(dumpLines, (lines) =>
          expect(lines).toStrictEqual(["setpriv --pdeathsig KILL -- conntrack -L -o id -p tcp"])
        )
      )
    )
  )

  it.effect("a stdbuf that fails is logged, naming it, and the dump runs again without it: no restart", () =>
    withPath(
      true,
      withWalker(
        {
          dump: [
            { steps: [{ stderr: "stdbuf: failed to find 'libstdbuf.so'" }, { exit: 125 }] },
            Scripted.dumpRun([established(1)])
          ]
        },
        {},
        (walker, logs) =>
          Effect.gen(function* () {
            yield* walker.ready
            expect(report(yield* walker.walk)).toStrictEqual(["1:active"])
            expect(yield* dumpLines).toStrictEqual([
              "setpriv --pdeathsig KILL -- stdbuf -o 65536 conntrack -L -o id -p tcp",
              "setpriv --pdeathsig KILL -- conntrack -L -o id -p tcp"
            ])
            // One session: the events' conntrack was not restarted.
            expect(yield* spawnedKinds).toStrictEqual(["events", "dump", "dump"])
            expect(logs.filter((l) => l.level === "WARN").map((l) => l.message)).toStrictEqual([
              "conntrack -L -o id -p tcp could not be run through stdbuf -o 65536 (exit code 125): this process runs " +
                "conntrack without stdbuf from now on (CONNTRACK_DUMP_WRITE_SIZE=0, or dumpWriteSize: 0, does so " +
                "from the start); its last stderr lines: stdbuf: failed to find 'libstdbuf.so'"
            ])
          })
      )
    )
  )

  it.effect("dumps through stdbuf only as asked: with dumpWriteSize 0, and without setpriv", () =>
    Effect.gen(function* () {
      const lines = (options: WalkerOptions) =>
        withPath(
          true,
          withWalker({}, options, () => dumpLines)
        )
      expect(yield* lines({ dumpWriteSize: 0 })).toStrictEqual([
        "setpriv --pdeathsig KILL -- conntrack -L -o id -p tcp"
      ])
      // A size stdbuf would refuse is logged and taken as 0.
      expect(yield* lines({ dumpWriteSize: 1.5 })).toStrictEqual([
        "setpriv --pdeathsig KILL -- conntrack -L -o id -p tcp"
      ])
      expect(yield* lines({ dieWithParent: false, dumpWriteSize: 4096 })).toStrictEqual([
        "stdbuf -o 4096 conntrack -L -o id -p tcp"
      ])
    })
  )

  it.effect("reports a connection closed between two walks dead exactly once", () =>
    withWalker(
      {
        events: [
          Scripted.eventsRun([
            update(1, "ESTABLISHED"),
            { sleep: "5 seconds" },
            update(1, "TIME_WAIT"),
            update(1, "CLOSE")
          ])
        ]
      },
      {},
      (walker) =>
        Effect.gen(function* () {
          expect(report(yield* walker.walk)).toStrictEqual(["1:active"])
          yield* TestClock.adjust("5 seconds")
          expect(report(yield* walker.walk)).toStrictEqual(["1:dead"])
          expect(report(yield* walker.walk)).toStrictEqual([])
        })
    )
  )

  it.effect("restarts 1 second after a failure, and not before", () =>
    withWalker({ events: [Scripted.eventsRun([{ exit: 1 }]), Scripted.eventsRun()] }, {}, () =>
      Effect.gen(function* () {
        expect(yield* spawnedKinds).toStrictEqual(["events", "dump"])
        yield* TestClock.adjust("998 millis")
        expect(yield* spawnedKinds).toStrictEqual(["events", "dump"])
        yield* TestClock.adjust("1 millis")
        expect(yield* spawnedKinds).toStrictEqual(["events", "dump", "events", "dump"])
      })
    )
  )

  it.effect("takes its restart delay from the options", () =>
    withWalker(
      { events: [Scripted.eventsRun([{ exit: 1 }]), Scripted.eventsRun()] },
      { restartDelay: "5 seconds" },
      () =>
        Effect.gen(function* () {
          yield* TestClock.adjust("4 seconds")
          expect((yield* spawnedKinds).length).toBe(2)
          yield* TestClock.adjust("1 second")
          expect((yield* spawnedKinds).length).toBe(4)
        })
    )
  )

  it.effect("resyncs on an ENOBUFS warning although conntrack keeps running", () =>
    Effect.gen(function* () {
      const before = (yield* Metric.value(Metrics.overflows)).count
      yield* withWalker(
        {
          dump: [Scripted.dumpRun([established(1)]), Scripted.dumpRun([established(1), established(3)])],
          events: [
            Scripted.eventsRun([update(2, "ESTABLISHED"), { sleep: "1 second" }, { stderr: Scripted.enobufsLines }]),
            Scripted.eventsRun()
          ]
        },
        {},
        (walker) =>
          Effect.gen(function* () {
            yield* TestClock.adjust("1 second")
            const first = yield* Effect.flatten(Effect.map(Scripted.ScriptedConntrack, (s) => s.spawned))
            // The first event process was still running: the walker stopped it itself.
            expect(first[0]?.signals).toStrictEqual(["SIGTERM"])
            expect(first[0]?.running).toBe(false)
            yield* TestClock.adjust("1 second")
            expect(yield* spawnedKinds).toStrictEqual(["events", "dump", "events", "dump"])
            // 2 was only seen by events, is gone from the fresh dump: dead once; 3 appeared while we were deaf.
            expect(report(yield* walker.walk)).toStrictEqual(["1:active", "2:dead", "3:active"])
          })
      )
      expect((yield* Metric.value(Metrics.overflows)).count - before).toBe(1)
    })
  )

  it.effect("folds the events read before conntrack -E died, then restarts", () =>
    withWalker(
      {
        dump: [Scripted.dumpRun([established(1)]), Scripted.dumpRun([established(1)])],
        events: [
          Scripted.eventsRun([{ sleep: "500 millis" }, update(2, "ESTABLISHED"), { killedBy: "SIGKILL" }]),
          Scripted.eventsRun()
        ]
      },
      {},
      (walker) =>
        Effect.gen(function* () {
          yield* TestClock.adjust("500 millis")
          yield* TestClock.adjust("1 second")
          expect((yield* spawnedKinds).length).toBe(4)
          // 2 was seen only in the events its conntrack printed before dying, and is gone from the next dump.
          expect(report(yield* walker.walk)).toStrictEqual(["1:active", "2:dead"])
        })
    )
  )

  it.effect("keeps flows across a restart without duplicates", () =>
    withWalker(
      {
        dump: [Scripted.dumpRun([established(1)]), Scripted.dumpRun([established(1)])],
        events: [Scripted.eventsRun([{ sleep: "500 millis" }, { killedBy: "SIGKILL" }]), Scripted.eventsRun()]
      },
      {},
      (walker) =>
        Effect.gen(function* () {
          expect(report(yield* walker.walk)).toStrictEqual(["1:active"])
          yield* TestClock.adjust("500 millis")
          yield* TestClock.adjust("1 second")
          expect((yield* spawnedKinds).length).toBe(4)
          expect(report(yield* walker.walk)).toStrictEqual(["1:active"])
        })
    )
  )

  it.effect("logs a restart once per cause, not once per attempt", () =>
    withWalker({ events: [Scripted.eventsRun([{ exit: 1 }])] }, {}, (_, logs) =>
      Effect.gen(function* () {
        yield* TestClock.adjust("10 seconds")
        const restarts = logs.filter((l) => l.message.startsWith("conntrack walker restarting"))
        expect(restarts.length).toBe(11)
        expect(restarts.filter((l) => l.level !== "DEBUG").length).toBe(1)
        expect(restarts[0]?.message).toMatch(/-E -o id -p tcp exited with code 1/)
      })
    )
  )

  it.effect("a missing conntrack is a typed error with a clear log line", () =>
    withWalker({ events: [{ spawnError: "NotFound" }] }, { dieWithParent: false }, (_, logs) =>
      Effect.gen(function* () {
        const errors = logs.filter((l) => l.level === "ERROR")
        expect(errors.map((l) => l.message)).toStrictEqual([
          "conntrack walker restarting: conntrack was not found: install the conntrack package (e.g. apt-get install conntrack) or give its path"
        ])
      })
    )
  )

  it.effect("a permission error is a typed error with a clear log line", () =>
    withWalker(
      {
        events: [
          {
            steps: [
              {
                stderr: [
                  "mnl_socket_bind: Operation not permitted",
                  "conntrack v1.4.7 (conntrack-tools): Can't open netlink socket"
                ]
              },
              { exit: 1 }
            ]
          }
        ]
      },
      {},
      (_, logs) =>
        Effect.gen(function* () {
          const errors = logs.filter((l) => l.level === "ERROR").map((l) => l.message)
          expect(errors).toHaveLength(1)
          expect(errors[0]).toMatch(/was refused: run as root or give the process CAP_NET_ADMIN/)
        })
    )
  )

  it.effect("skips a malformed line, logs and counts it, and goes on", () =>
    Effect.gen(function* () {
      const before = (yield* Metric.value(Metrics.parseErrors)).count
      yield* withWalker(
        { events: [Scripted.eventsRun([{ stdout: "tcp garbage" }, update(1, "ESTABLISHED")])] },
        {},
        (walker, logs) =>
          Effect.gen(function* () {
            expect(report(yield* walker.walk)).toStrictEqual(["1:active"])
            expect(logs.some((l) => l.level === "WARN" && l.message.includes("skipped a line"))).toBe(true)
          })
      )
      expect((yield* Metric.value(Metrics.parseErrors)).count - before).toBe(1)
    })
  )

  it.effect("streams table changes to subscribers", () =>
    withWalker(
      { events: [Scripted.eventsRun([{ sleep: "1 second" }, update(1, "ESTABLISHED"), update(1, "CLOSE")])] },
      {},
      (walker) =>
        Effect.gen(function* () {
          const fiber = yield* walker.changes.pipe(Stream.take(2), Stream.runCollect, Effect.fork)
          yield* TestClock.adjust("1 second")
          const changes = Chunk.toReadonlyArray(yield* Fiber.join(fiber))
          expect(changes.map((c) => `${c._tag}:${c.flow.id}`)).toStrictEqual(["Upserted:1", "Died:1"])
        })
    )
  )

  it.effect("is ready once the first dump is folded in, not before", () =>
    withWalker(
      {
        dump: [{ steps: [{ sleep: "2 seconds" }, ...(Scripted.dumpRun([established(1)]).steps ?? [])] }],
        events: [Scripted.eventsRun()]
      },
      {},
      (walker) =>
        Effect.gen(function* () {
          const ready = yield* Effect.fork(walker.ready)
          yield* TestClock.adjust("1998 millis") // the dump started at 0 and the clock is at 1 ms
          expect(Option.isNone(yield* Fiber.poll(ready))).toBe(true)
          expect(report(yield* walker.walk)).toStrictEqual([])
          yield* TestClock.adjust("1 millis")
          yield* Fiber.join(ready)
          expect(report(yield* walker.walk)).toStrictEqual(["1:active"])
        })
    )
  )

  it.effect("dumps after a short wait when conntrack -E prints no NOTICE", () =>
    withWalker({ events: [{ steps: [] }] }, { bufferSize: 0, listenTimeout: "500 millis" }, () =>
      Effect.gen(function* () {
        expect(yield* spawnedKinds).toStrictEqual(["events"])
        yield* TestClock.adjust("500 millis")
        expect(yield* spawnedKinds).toStrictEqual(["events", "dump"])
      })
    )
  )
})

describe("closing the scope", () => {
  it.effect("stops the conntrack processes", () =>
    Effect.gen(function* () {
      const scripted = Scripted.layer({})
      const spawned = yield* Effect.gen(function* () {
        const ctx = yield* Layer.build(scripted)
        yield* FlowWalker.make({}).pipe(
          Effect.zipRight(TestClock.adjust("1 millis")),
          Effect.provide(ctx),
          Effect.scoped
        )
        return yield* Effect.provide(Effect.flatten(Effect.map(Scripted.ScriptedConntrack, (s) => s.spawned)), ctx)
      }).pipe(Effect.scoped)
      expect(spawned.length).toBeGreaterThan(0)
      for (const p of spawned) expect(p.running).toBe(false)
      expect(spawned.find((p) => p.kind === "events")?.signals).toStrictEqual(["SIGTERM"])
    })
  )

  it.effect("sends SIGKILL to a child that ignores SIGTERM, after the stop timeout", () =>
    Effect.gen(function* () {
      const ctx = yield* Layer.build(Scripted.layer({ events: [Scripted.eventsRun([], { ignoreSigterm: true })] }))
      const spawned = Effect.provide(Effect.flatten(Effect.map(Scripted.ScriptedConntrack, (s) => s.spawned)), ctx)
      const running = yield* FlowWalker.make({ stopTimeout: "2 seconds" }).pipe(
        Effect.zipRight(Effect.never),
        Effect.scoped,
        Effect.provide(ctx),
        Effect.fork
      )
      yield* TestClock.adjust("1 millis")
      expect((yield* spawned).map((s) => s.kind)).toStrictEqual(["events", "dump"])
      const closing = yield* Effect.fork(Fiber.interrupt(running))
      yield* TestClock.adjust("1 second")
      expect((yield* spawned)[0]?.signals).toStrictEqual(["SIGTERM"])
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(closing)
      const events = (yield* spawned)[0]
      expect(events?.signals).toStrictEqual(["SIGTERM", "SIGKILL"])
      expect(events?.running).toBe(false)
    }).pipe(Effect.scoped)
  )
})

describe("Conntrack streams: typed errors", () => {
  const run = (script: Scripted.Script, options = {}) =>
    Conntrack.dump(options).pipe(Stream.runCollect, Effect.exit, Effect.provide(Scripted.layer(script)))

  it.effect("a missing binary behind setpriv is ConntrackNotFound", () =>
    Effect.gen(function* () {
      const exit = yield* run({
        dump: [
          { steps: [{ stderr: "setpriv: failed to execute conntrack: No such file or directory" }, { exit: 127 }] }
        ]
      })
      expect(exit).toStrictEqual(
        Exit.fail(new ErrorsModule.ConntrackNotFound({ binary: "conntrack", pkg: "conntrack" }))
      )
    })
  )

  it.effect("a missing binary behind stdbuf is ConntrackNotFound", () =>
    withPath(
      true,
      Effect.gen(function* () {
        const exit = yield* run({
          dump: [
            {
              steps: [{ stderr: "stdbuf: failed to run command ‘conntrack’: No such file or directory" }, { exit: 127 }]
            }
          ]
        })
        expect(exit).toStrictEqual(
          Exit.fail(new ErrorsModule.ConntrackNotFound({ binary: "conntrack", pkg: "conntrack" }))
        )
      })
    )
  )

  const stdbufFailures: ReadonlyArray<readonly [string, Scripted.Run, WalkerOptions, string]> = [
    [
      "a setpriv that cannot execute it",
      { steps: [{ stderr: "setpriv: failed to execute stdbuf: No such file or directory" }, { exit: 127 }] },
      {},
      "exit code 127"
    ],
    ["none to spawn, without setpriv", { spawnError: "NotFound" }, { dieWithParent: false }, "it was not found"],
    [
      "one that cannot be executed, without setpriv",
      { spawnError: "PermissionDenied" },
      { dieWithParent: false },
      "it could not be executed"
    ]
  ]
  for (const [how, failing, options, said] of stdbufFailures) {
    it.effect(`stdbuf failing (${how}): a warning naming it, and the dump again without it`, () =>
      withPath(
        true,
        Effect.gen(function* () {
          const { logs, layer } = recordLogs()
          const [flows, lines] = yield* Conntrack.dump(options).pipe(
            Stream.runCollect,
            Effect.zip(dumpLines),
            Effect.provide(Scripted.layer({ dump: [failing, Scripted.dumpRun([established(1)])] })),
            Effect.provide(layer)
          )
          expect(Chunk.toReadonlyArray(flows).map((f) => f.id)).toStrictEqual([1])
          // (The scripted layer records the processes it started: not a spawn that failed.)
          expect(lines.map((l) => l.replace("setpriv --pdeathsig KILL -- ", ""))).toStrictEqual([
            ...("spawnError" in failing ? [] : ["stdbuf -o 65536 conntrack -L -o id -p tcp"]),
            "conntrack -L -o id -p tcp"
          ])
          expect(logs.filter((l) => l.level === "WARN").map((l) => l.message)).toStrictEqual([
            expect.stringMatching(
              new RegExp(
                `^conntrack -L -o id -p tcp could not be run through stdbuf -o 65536 \\(${said}\\): ` +
                  "this process runs conntrack without stdbuf from now on"
              )
            )
          ])
        })
      )
    )
  }

  it.effect("a missing setpriv is ConntrackNotFound naming util-linux", () =>
    Effect.gen(function* () {
      const exit = yield* run({ dump: [{ spawnError: "NotFound" }] })
      expect(Exit.isFailure(exit) && String(exit.cause)).toMatch(
        /setpriv was not found: install the util-linux package/
      )
    })
  )

  it.effect("no privilege is PermissionDenied, with conntrack's own words", () =>
    Effect.gen(function* () {
      const stderr = fs.readFileSync(
        path.join(import.meta.dirname, "..", "fixtures/recorded/not-root-dump.stderr"),
        "utf8"
      )
      const lines = stderr.split("\n").filter((l) => l !== "" && !l.startsWith("exit "))
      const exit = yield* run({ dump: [{ steps: [{ stderr: lines }, { exit: 1 }] }] })
      expect(exit).toStrictEqual(
        Exit.fail(new ErrorsModule.PermissionDenied({ command: "conntrack -L -o id -p tcp", stderr: lines }))
      )
    })
  )

  it.effect("a dump that fails is ConntrackExited with its code and last stderr lines", () =>
    Effect.gen(function* () {
      const exit = yield* run({ dump: [{ steps: [{ stderr: "something broke" }, { exit: 2 }] }] })
      expect(exit).toStrictEqual(
        Exit.fail(
          new ErrorsModule.ConntrackExited({
            command: "conntrack -L -o id -p tcp",
            exitCode: 2,
            stderr: ["something broke"]
          })
        )
      )
    })
  )

  it.effect("an event stream that exits 0 is a failure too", () =>
    Effect.gen(function* () {
      const exit = yield* Conntrack.events({}).pipe(
        Stream.runCollect,
        Effect.exit,
        Effect.provide(Scripted.layer({ events: [Scripted.eventsRun([update(1, "ESTABLISHED"), { exit: 0 }])] }))
      )
      expect(Exit.isFailure(exit) && String(exit.cause)).toMatch(/exited with code 0/)
    })
  )

  it.effect("a killed event stream names the signal", () =>
    Effect.gen(function* () {
      const exit = yield* Conntrack.events({}).pipe(
        Stream.runCollect,
        Effect.exit,
        Effect.provide(Scripted.layer({ events: [Scripted.eventsRun([{ killedBy: "SIGKILL" }])] }))
      )
      expect(Exit.isFailure(exit) && String(exit.cause)).toMatch(/was killed by SIGKILL/)
    })
  )

  it.effect("a dump yields its flows and ends", () =>
    Effect.gen(function* () {
      const flows: ReadonlyArray<Flow> = [established(1), established(2)]
      const exit = yield* run({ dump: [Scripted.dumpRun(flows)] })
      expect(Exit.map(exit, (c) => Chunk.toReadonlyArray(c).map((f) => f.id))).toStrictEqual(Exit.succeed([1, 2]))
    })
  )
})

describe("FlowWalker.layer: kernel support", () => {
  const walkerWith = (content: string | undefined) => {
    const { logs, layer } = recordLogs()
    const procRoot = procRootWith(content)
    return Effect.gen(function* () {
      const walker = yield* FlowWalker.FlowWalker
      yield* TestClock.adjust("1 millis")
      const spawned = yield* Effect.flatten(Effect.map(Scripted.ScriptedConntrack, (s) => s.spawned))
      return { walked: yield* walker.walk, spawned, logs }
    }).pipe(
      Effect.provide(
        FlowWalker.layer({ procRoot }).pipe(
          Layer.provideMerge(Scripted.layer({ dump: [Scripted.dumpRun([established(1)])] }))
        )
      ),
      Effect.provide(NodeFileSystem.layer),
      Effect.provide(layer),
      Effect.ensuring(Effect.sync(() => fs.rmSync(procRoot, { recursive: true, force: true })))
    )
  }

  for (const [content, name] of [
    ["0\n", "reads 0"],
    [undefined, "is missing"],
    ["garbage\n", "reads something else"]
  ] as const) {
    it.effect(`selects the no-op walker when the events file ${name}`, () =>
      Effect.gen(function* () {
        const { walked, spawned, logs } = yield* walkerWith(content)
        expect(walked).toStrictEqual([])
        expect(spawned).toStrictEqual([])
        const warnings = logs.filter((l) => l.level === "WARN").map((l) => l.message)
        expect(warnings).toHaveLength(1)
        expect(warnings[0]).toMatch(/conntrack events are off: .*nf_conntrack_events .*the walker will report no flows/)
      })
    )
  }

  for (const content of ["1\n", "2\n", " 2 "]) {
    it.effect(`runs the live walker when the events file reads ${JSON.stringify(content)}`, () =>
      Effect.gen(function* () {
        const { walked, spawned } = yield* walkerWith(content)
        expect(spawned.map((s) => s.kind)).toStrictEqual(["events", "dump"])
        expect(report(walked)).toStrictEqual(["1:active"])
      })
    )
  }
})

describe("FlowWalker under load (correct-under-load issue)", () => {
  it.effect("a slow dump and a queued life: the connection dies once, never comes back (stale events lose)", () => {
    // The dump takes 0.8 s and shows the connection in TIME_WAIT; meanwhile the event stream prints its whole life,
    // tens of thousands of unrelated lines, then its TIME_WAIT.
    const life = ["SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK"].map((s) => update(1, s))
    const unrelated = Array.from({ length: 20_000 }, (_, k) => update(100 + k, "ESTABLISHED", 1000 + (k % 60000)))
    return withWalker(
      {
        dump: [
          {
            steps: [
              { sleep: "800 millis" },
              ...(Scripted.dumpRun([Scripted.tcpFlow({ id: 1, sport: 40001, dport: 80, state: "TIME_WAIT" })]).steps ??
                [])
            ]
          }
        ],
        events: [
          Scripted.eventsRun([
            ...life,
            { stdout: unrelated.map((f) => Scripted.formatEventLine(f)) },
            { sleep: "1 second" },
            update(1, "TIME_WAIT")
          ])
        ]
      },
      {},
      (walker) =>
        Effect.gen(function* () {
          const changes = yield* walker.changes.pipe(
            Stream.filter((c) => c.flow.id === 1),
            Stream.runCollect,
            Effect.fork
          )
          const seen: Array<string> = []
          for (let k = 0; k < 6; k++) {
            for (const w of yield* walker.walk) if (w.flow.id === 1) seen.push(w.active ? "active" : "dead")
            yield* TestClock.adjust("400 millis")
          }
          expect(seen).toStrictEqual(["dead"])
          yield* Fiber.interrupt(changes)
          const tags = Chunk.toReadonlyArray(yield* Fiber.join(changes).pipe(Effect.orElseSucceed(() => Chunk.empty())))
          expect(tags.map((c) => c._tag).filter((t) => t === "Died").length).toBeLessThanOrEqual(1)
        })
    )
  })

  it.effect("each reader sees every death exactly once", () =>
    withWalker(
      {
        dump: [Scripted.dumpRun([established(1), established(2)])],
        events: [
          Scripted.eventsRun([{ sleep: "1 second" }, update(1, "CLOSE"), { sleep: "1 second" }, update(2, "CLOSE")])
        ]
      },
      {},
      (walker) =>
        Effect.gen(function* () {
          const scope = yield* Scope.make()
          const dashboard = yield* Scope.extend(walker.reader, scope)
          const audit = yield* Scope.extend(walker.reader, scope)
          const deaths = { own: [] as Array<number>, dashboard: [] as Array<number>, audit: [] as Array<number> }
          const collect = (into: Array<number>, walked: ReadonlyArray<WalkedFlow>) => {
            for (const w of walked) if (!w.active) into.push(w.flow.id as number)
          }
          yield* TestClock.adjust("1 second")
          collect(deaths.dashboard, yield* dashboard.walk)
          collect(deaths.own, yield* walker.walk)
          yield* TestClock.adjust("1 second")
          collect(deaths.dashboard, yield* dashboard.walk)
          collect(deaths.audit, yield* audit.walk)
          collect(deaths.own, yield* walker.walk)
          collect(deaths.audit, yield* audit.walk)
          expect(deaths).toStrictEqual({ own: [1, 2], dashboard: [1, 2], audit: [1, 2] })
          expect(yield* dashboard.dropped).toBe(0)
        })
    )
  )

  it.effect("a reader that falls behind the log's bound is told how many deaths it missed, and they are counted", () =>
    withWalker(
      {
        dump: [Scripted.dumpRun([1, 2, 3, 4, 5].map((id) => established(id)))],
        events: [Scripted.eventsRun([{ sleep: "1 second" }, ...[1, 2, 3, 4, 5].map((id) => update(id, "CLOSE"))])]
      },
      { maxDead: 2 },
      (walker) =>
        Effect.gen(function* () {
          const before = (yield* Metric.value(Metrics.deadDropped)).count
          const slow = yield* Scope.extend(walker.reader, yield* Scope.make())
          yield* TestClock.adjust("1 second")
          expect(report(yield* slow.walk)).toStrictEqual(["4:dead", "5:dead"])
          expect(yield* slow.dropped).toBe(3)
          expect((yield* Metric.value(Metrics.deadDropped)).count - before).toBe(3)
        })
    )
  )

  it.effect("a subscriber that joins while the dump runs gets the table, then the whole resync", () =>
    withWalker(
      {
        dump: [
          Scripted.dumpRun([established(1)]),
          { steps: [{ sleep: "2 seconds" }, ...(Scripted.dumpRun([established(2)]).steps ?? [])] }
        ],
        events: [Scripted.eventsRun([{ sleep: "1 second" }, { killedBy: "SIGKILL" }]), Scripted.eventsRun()]
      },
      {},
      (walker) =>
        Effect.gen(function* () {
          yield* TestClock.adjust("2 seconds") // killed at 1 s, restarted at 2 s: the second dump runs until 4 s
          const changes = yield* walker.changes.pipe(Stream.take(3), Stream.runCollect, Effect.fork)
          yield* TestClock.adjust("3 seconds")
          const got = Chunk.toReadonlyArray(yield* Fiber.join(changes)).map((c) => `${c._tag}:${c.flow.id}`)
          expect(got[0]).toBe("Upserted:1")
          expect(got.slice(1).sort()).toStrictEqual(["Died:1", "Upserted:2"])
        })
    )
  )

  it.effect("a subscriber that falls behind loses the oldest changes, counted", () =>
    withWalker(
      {
        dump: [Scripted.dumpRun([])],
        events: [
          Scripted.eventsRun([{ sleep: "1 second" }, ...[1, 2, 3, 4, 5, 6].map((id) => update(id, "ESTABLISHED"))])
        ]
      },
      { changesBuffer: 2 },
      (walker) =>
        Effect.gen(function* () {
          const before = (yield* Metric.value(Metrics.changesDropped)).count
          // A subscriber busy for a second with each change: the six changes of one fold overflow its buffer of 2. It
          // was waiting, so it gets the first; the buffer keeps the newest two; the three between are lost.
          const slow = yield* walker.changes.pipe(
            Stream.tap(() => Effect.sleep("1 second")),
            Stream.take(3),
            Stream.runCollect,
            Effect.fork
          )
          for (let k = 0; k < 4; k++) yield* TestClock.adjust("1 second")
          const got = Chunk.toReadonlyArray(yield* Fiber.join(slow)).map((c) => `${c._tag}:${c.flow.id}`)
          expect(got).toStrictEqual(["Upserted:1", "Upserted:5", "Upserted:6"])
          expect((yield* Metric.value(Metrics.changesDropped)).count - before).toBe(3)
        })
    )
  )

  it.effect("without its own reader, walk shows the active flows and no death is kept for it", () =>
    withWalker(
      {
        dump: [Scripted.dumpRun([established(1), established(2)])],
        events: [Scripted.eventsRun([{ sleep: "1 second" }, update(1, "CLOSE")])]
      },
      { ownReader: false },
      (walker) =>
        Effect.gen(function* () {
          yield* TestClock.adjust("1 second")
          expect(report(yield* walker.walk)).toStrictEqual(["2:active"])
        })
    )
  )

  it.effect("ready fails with the error a user must fix: conntrack missing", () =>
    withWalker({ events: [{ spawnError: "NotFound" }] }, { dieWithParent: false }, (walker) =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(walker.ready)
        expect(error._tag).toBe("ConntrackNotFound")
        expect((yield* walker.status).failures).toBe(1)
      })
    )
  )

  it.effect("a conntrack -E that fails before it listens is no reason to dump", () =>
    withWalker({ events: [{ steps: [{ stderr: "conntrack: bad option" }, { exit: 2 }] }] }, {}, () =>
      Effect.gen(function* () {
        expect(yield* spawnedKinds).toStrictEqual(["events"])
      })
    )
  )

  it.effect("status: not ready before the dump, synced after it, failing while restarting", () =>
    withWalker(
      {
        dump: [Scripted.dumpRun([established(1)])],
        events: [Scripted.eventsRun([{ sleep: "1 second" }, { exit: 1 }]), Scripted.eventsRun([{ exit: 1 }])]
      },
      {},
      (walker) =>
        Effect.gen(function* () {
          expect(yield* walker.status).toStrictEqual({ ready: true, synced: true, failures: 0 })
          yield* TestClock.adjust("1 second")
          expect(yield* walker.status).toStrictEqual({ ready: true, synced: false, failures: 1 })
          yield* TestClock.adjust("1 second")
          expect((yield* walker.status).failures).toBe(2)
        })
    )
  )

  it.effect("counts events by type, and connections opened and closed by family and protocol", () =>
    withWalker(
      { events: [Scripted.eventsRun([{ sleep: "1 second" }, update(1, "ESTABLISHED"), update(1, "CLOSE")])] },
      {},
      () =>
        Effect.gen(function* () {
          const tagged = (m: typeof Metrics.flowsOpened) =>
            m.pipe(Metric.tagged("family", "ipv4"), Metric.tagged("proto", "tcp"))
          const value = (m: typeof Metrics.flowsOpened) => Effect.map(Metric.value(m), (s) => s.count)
          const before = [
            yield* value(Metric.tagged(Metrics.events, "type", "UPDATE")),
            yield* value(Metric.tagged(Metrics.events, "type", "DESTROY")),
            yield* value(tagged(Metrics.flowsOpened)),
            yield* value(tagged(Metrics.flowsClosed))
          ]
          yield* TestClock.adjust("1 second")
          const after = [
            yield* value(Metric.tagged(Metrics.events, "type", "UPDATE")),
            yield* value(Metric.tagged(Metrics.events, "type", "DESTROY")),
            yield* value(tagged(Metrics.flowsOpened)),
            yield* value(tagged(Metrics.flowsClosed))
          ]
          expect(after.map((a, k) => a - (before[k] as number))).toStrictEqual([1, 1, 1, 1])
        })
    )
  )

  it.effect("events fold in the order read: a small read does not overtake a large one still queued", () => {
    // Connection 2 moves up through its states. Each even state comes in a large read (50 lines of other connections
    // with it), the next odd state right after in a read of its own. A subscriber sees every state in turn; a state
    // folded ahead of an earlier one would hide that one (an entry only moves forward).
    const states = ["SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT"]
    const large = (k: number, state: string) => ({
      stdout: [
        ...Array.from({ length: 50 }, (_, j) =>
          Scripted.formatEventLine(update(1000 + 50 * k + j, "ESTABLISHED", 1000 + 50 * k + j))
        ),
        Scripted.formatEventLine(update(2, state))
      ]
    })
    const pairs = [0, 1, 2].flatMap(
      (k): Array<Scripted.Step | Flow> => [
        large(k, states[2 * k] as string),
        update(2, states[2 * k + 1] as string),
        { sleep: "1 millis" }
      ]
    )
    return withWalker(
      {
        dump: [{ steps: [{ sleep: "500 millis" }, ...(Scripted.dumpRun([]).steps ?? [])] }],
        events: [Scripted.eventsRun([{ sleep: "1 second" }, ...pairs])]
      },
      {},
      (walker) =>
        Effect.gen(function* () {
          const fiber = yield* walker.changes.pipe(
            Stream.filter((c) => c.flow.id === 2),
            Stream.map((c) => c.flow.state ?? ""),
            Stream.takeUntil((state) => state === "TIME_WAIT"),
            Stream.runCollect,
            Effect.fork
          )
          yield* TestClock.adjust("1 second")
          for (let k = 0; k < 3; k++) yield* TestClock.adjust("1 millis")
          expect(Chunk.toReadonlyArray(yield* Fiber.join(fiber))).toStrictEqual(states)
          expect(report(yield* walker.walk).filter((w) => w.startsWith("2:"))).toStrictEqual(["2:dead"])
        })
    )
  })

  it.effect("counts each event once when it arrives during the dump, then once more for each event after it", () => {
    const value = (type: string) =>
      Effect.map(Metric.value(Metric.tagged(Metrics.events, "type", type)), (s) => s.count)
    const counts = Effect.all([value("UPDATE"), value("DESTROY")])
    return Effect.gen(function* () {
      const [updates, destroys] = yield* counts
      yield* withWalker(
        {
          // The events printed while the dump sleeps arrive during the resync.
          dump: [{ steps: [{ sleep: "2 seconds" }, ...(Scripted.dumpRun([established(1)]).steps ?? [])] }],
          events: [
            Scripted.eventsRun([
              update(2, "ESTABLISHED"),
              update(2, "CLOSE"),
              { sleep: "3 seconds" },
              update(1, "CLOSE")
            ])
          ]
        },
        {},
        (walker) =>
          Effect.gen(function* () {
            yield* TestClock.adjust("2 seconds")
            yield* walker.ready
            const [duringUpdates, duringDestroys] = yield* counts
            expect([duringUpdates - updates, duringDestroys - destroys]).toStrictEqual([1, 1])
            yield* TestClock.adjust("2 seconds")
            const [afterUpdates, afterDestroys] = yield* counts
            expect([afterUpdates - duringUpdates, afterDestroys - duringDestroys]).toStrictEqual([0, 1])
            // 2 lived and died during the resync: reported once, as dead.
            expect(report(yield* walker.walk)).toStrictEqual(["1:dead", "2:dead"])
          })
      )
    })
  })
})

describe("messages", () => {
  it.effect("a spawn failure other than a missing binary or privilege says it could not be started", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Stream.runDrain(Conntrack.dump({ dieWithParent: false })))
      expect(error.message).toMatch(/^conntrack -L -o id -p tcp could not be started: .*EMFILE/)
      expect(error.message).not.toMatch(/undefined/)
    }).pipe(Effect.provide(Scripted.layer({ dump: [{ spawnError: "Unknown" }] })))
  )
})

describe("stopping a child", () => {
  // `exitCode` completes when the child's exit has been read.
  const process = (
    kill: (signal: string) => Effect.Effect<void, Error>,
    running: () => boolean,
    pid = 7,
    exitCode: Effect.Effect<unknown> = Effect.never
  ) => ({ pid, isRunning: Effect.sync(running), kill, exitCode }) as unknown as Parameters<typeof Conntrack.stop>[0]

  /** A kill that records the signal, then does `then`. */
  const recorded =
    (signals: Array<string>, then: Effect.Effect<void, Error>) =>
    (signal: string): Effect.Effect<void, Error> =>
      Effect.zipRight(
        Effect.sync(() => signals.push(signal)),
        then
      )

  it.effect("a SIGTERM that fails because the child just ended is no failure (no false warning)", () => {
    const { logs, layer } = recordLogs()
    let alive = true
    const proc = process(
      () =>
        Effect.suspend(() => {
          alive = false
          return Effect.fail(new Error("kill ESRCH"))
        }),
      () => alive,
      7,
      Effect.void
    )
    return Effect.gen(function* () {
      yield* Conntrack.stop(proc, "conntrack -E", Duration.seconds(2))
      expect(logs.filter((l) => l.level !== "DEBUG")).toStrictEqual([])
    }).pipe(Effect.provide(layer))
  })

  // As seen in the capture benchmark: the kill finds no process (ESRCH), and the exit is read a moment later.
  it.effect(
    "a kill that fails because the child has ended, its exit read a moment later, is waited for quietly",
    () => {
      const { logs, layer } = recordLogs()
      const signals: Array<string> = []
      let exitRead = false
      const proc = process(
        recorded(signals, Effect.fail(new Error("kill ESRCH"))),
        () => !exitRead,
        7,
        Effect.zipRight(
          Effect.sleep("50 millis"),
          Effect.sync(() => {
            exitRead = true
          })
        )
      )
      return Effect.gen(function* () {
        const fiber = yield* Effect.fork(Conntrack.stop(proc, "conntrack -L", Duration.seconds(2)))
        yield* TestClock.adjust("100 millis")
        yield* Fiber.join(fiber)
        expect(signals).toStrictEqual(["SIGTERM"])
        expect(logs.filter((l) => l.level !== "DEBUG")).toStrictEqual([])
      }).pipe(Effect.provide(layer))
    }
  )

  it.effect("a kill that fails while the child runs on: SIGKILL after the wait, then an error with its state", () => {
    const { logs, layer } = recordLogs()
    const signals: Array<string> = []
    const proc = process(recorded(signals, Effect.fail(new Error("kill EPERM"))), () => true, globalThis.process.pid)
    return Effect.gen(function* () {
      const fiber = yield* Effect.fork(Conntrack.stop(proc, "conntrack -L", Duration.seconds(2)))
      yield* TestClock.adjust("1 second")
      expect(signals).toStrictEqual(["SIGTERM"])
      yield* TestClock.adjust("3 seconds")
      yield* Fiber.join(fiber)
      expect(signals).toStrictEqual(["SIGTERM", "SIGKILL"])
      expect(logs.map((l) => `${l.level} ${l.message}`)).toStrictEqual([
        "WARN conntrack -L: SIGTERM failed (kill EPERM) and it has not ended within 2s: SIGKILL",
        expect.stringMatching(
          new RegExp(
            `^ERROR conntrack -L \\(pid ${globalThis.process.pid}\\) is still running 2s after SIGKILL \\(which failed: kill EPERM\\) \\(in state [RS]\\)$`
          )
        )
      ])
    }).pipe(Effect.provide(layer))
  })

  // A child whose exit is never read, with the pid of a process the kernel runs (this test's own) or of none.
  const neverSeenToEnd = (pid: number) => {
    const { logs, layer } = recordLogs()
    const signals: Array<string> = []
    const proc = process(recorded(signals, Effect.never), () => true, pid)
    return Effect.gen(function* () {
      const fiber = yield* Effect.fork(Conntrack.stop(proc, "conntrack -E", Duration.seconds(2)))
      yield* TestClock.adjust("4 seconds")
      yield* Fiber.join(fiber)
      return { signals, logs }
    }).pipe(Effect.provide(layer))
  }

  it.effect("the wait after SIGKILL is bounded too; a child the kernel still runs is an error, with its state", () =>
    Effect.gen(function* () {
      const { signals, logs } = yield* neverSeenToEnd(globalThis.process.pid)
      expect(signals).toStrictEqual(["SIGTERM", "SIGKILL"])
      expect(logs.map((l) => l.level)).toStrictEqual(["WARN", "ERROR"])
      expect(logs[1]?.message).toMatch(
        new RegExp(
          `^conntrack -E \\(pid ${globalThis.process.pid}\\) is still running 2s after SIGKILL \\(in state [RS]\\)$`
        )
      )
    })
  )

  it.effect(
    "a child that has ended but whose exit was not read (a held-up event loop) is a warning, not an error",
    () =>
      Effect.gen(function* () {
        // Above the kernel's largest pid_max (2^22): no process has it.
        const { logs } = yield* neverSeenToEnd(2 ** 22 + 1)
        expect(logs.map((l) => l.level)).toStrictEqual(["WARN", "WARN"])
        expect(logs[1]?.message).toBe(
          `conntrack -E (pid ${2 ** 22 + 1}) has ended, but its exit was not read 2s after SIGKILL: this process's event loop was held up`
        )
      })
  )
})

describe("the scripted conntrack", () => {
  it.effect("a scripted process's player ends with its scope (twenty dumps leave no fiber behind)", () =>
    Effect.gen(function* () {
      const before = (yield* Fiber.roots).length
      for (let k = 0; k < 20; k++) yield* Stream.runDrain(Conntrack.dump({ dieWithParent: false }))
      yield* Effect.yieldNow()
      expect((yield* Fiber.roots).length - before).toBe(0)
    }).pipe(Effect.provide(Scripted.layer({ dump: [Scripted.dumpRun([established(1)])] })))
  )
})
