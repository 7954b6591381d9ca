import * as fs from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scripted from "../src/testing.js"
import { cli, procRootWith, sleepingUntil } from "./support/cli.js"

const flow = Scripted.tcpFlow({ id: 1, sport: 40001, dport: 80 })
const script: Scripted.Script = { dump: [Scripted.dumpRun([flow])], events: [Scripted.eventsRun()] }

/** Starts `watch` with these arguments, lets it reach its first walk's sleep, and stops it. */
const watchUntilFirstWalk = (args: ReadonlyArray<string>, env?: Map<string, string>) =>
  Effect.gen(function* () {
    const procRoot = procRootWith("1\n")
    const run = cli(["watch", "--proc-root", procRoot, ...args], { script })
    const effect =
      env === undefined
        ? run.effect
        : Effect.withConfigProvider(run.effect, ConfigProvider.fromMap(env, { pathDelim: "_" }))
    const fiber = yield* Effect.fork(effect)
    yield* sleepingUntil(1000)
    const spawned = yield* run.spawned
    yield* Fiber.interrupt(fiber)
    fs.rmSync(procRoot, { recursive: true })
    return { spawned, stdout: run.stdout(), stderr: run.stderr() }
  })

/** Runs a command that must fail: its stderr and stdout, and what it spawned. */
const refused = (args: ReadonlyArray<string>, s: Scripted.Script = script) =>
  Effect.gen(function* () {
    const run = cli(args, { script: s })
    const exit = yield* run.effect
    expect(Exit.isFailure(exit)).toBe(true)
    return { output: run.stdout() + run.stderr(), spawned: yield* run.spawned }
  })

describe("built-in flags anywhere among the options", () => {
  it.effect("watch --json --log-level debug runs, with debug logs", () =>
    Effect.gen(function* () {
      const { stderr, spawned } = yield* watchUntilFirstWalk(["--json", "--log-level", "debug"])
      expect(stderr).not.toContain("Received unknown argument")
      expect(stderr).toContain("level=DEBUG")
      expect(spawned.map((s) => s.kind)).toStrictEqual(["events", "dump"])
    })
  )

  it.effect("dump --count --log-level=warning runs", () =>
    Effect.gen(function* () {
      const run = cli(["dump", "--count", "--log-level=warning"], { script })
      expect(Exit.isSuccess(yield* run.effect)).toBe(true)
      expect(run.stdout()).toBe("1 flows\nESTABLISHED 1\n")
    })
  )

  it.effect("watch --json --help prints the help and starts nothing", () =>
    Effect.gen(function* () {
      const run = cli(["watch", "--json", "--help"], { script })
      yield* run.effect
      expect(run.stdout()).toContain("--interval")
      expect(run.stderr()).not.toContain("Received unknown argument")
      expect(yield* run.spawned).toStrictEqual([])
    })
  )
})

describe("flags that are refused with a clear message", () => {
  it.effect("--buffer-size -1, as CONNTRACK_BUFFER_SIZE=-1 is", () =>
    Effect.gen(function* () {
      const { output, spawned } = yield* refused(["watch", "--buffer-size", "-1"])
      expect(output).toContain("--buffer-size must be 0 (none) or a number of bytes, not -1")
      expect(spawned).toStrictEqual([])
    })
  )

  it.effect("--interval below 10 milliseconds", () =>
    Effect.gen(function* () {
      const { output, spawned } = yield* refused(["watch", "--interval", "1 nanos"])
      expect(output).toContain('--interval must be at least 10ms, not "1 nanos"')
      expect(spawned).toStrictEqual([])
    })
  )
})

describe("conntrack's own refusals", () => {
  it.effect("a missing setpriv names the way out", () =>
    Effect.gen(function* () {
      const { output } = yield* refused(["dump"], { dump: [{ spawnError: "NotFound" }] })
      expect(output).toBe(
        "effect-conntrack: setpriv was not found: install the util-linux package (e.g. apt-get install util-linux), or run conntrack without it with CONNTRACK_DIE_WITH_PARENT=false (then a conntrack may outlive a killed effect-conntrack)\n"
      )
    })
  )

  it.effect("a protocol conntrack refuses: its stderr is printed once", () =>
    Effect.gen(function* () {
      const { output } = yield* refused(["dump", "--proto", "foo"], {
        dump: [
          {
            steps: [
              {
                stderr: [
                  "conntrack v1.4.7 (conntrack-tools): `foo' unsupported protocol",
                  "Try `conntrack -h' or 'conntrack --help' for more information."
                ]
              },
              { exit: 2 }
            ]
          }
        ]
      })
      expect(output.split("unsupported protocol")).toHaveLength(2)
      expect(output).toBe(
        "effect-conntrack: conntrack -L -o id -p foo exited with code 2; its last stderr lines: conntrack v1.4.7 (conntrack-tools): `foo' unsupported protocol / Try `conntrack -h' or 'conntrack --help' for more information.\n"
      )
    })
  )

  it.effect("a dump that succeeds still logs what else it said on stderr", () =>
    Effect.gen(function* () {
      const run = cli(["dump", "--count"], {
        script: {
          dump: [
            { steps: [{ stdout: Scripted.formatDumpLine(flow) }, { stderr: "a warning of its own" }, { exit: 0 }] }
          ]
        }
      })
      expect(Exit.isSuccess(yield* run.effect)).toBe(true)
      expect(run.stderr()).toContain("level=WARN fiber=#")
      expect(run.stderr()).toContain('message="conntrack -L -o id -p tcp: a warning of its own"')
    })
  )
})

describe("extra conntrack arguments for -L only, -E only, or both", () => {
  // conntrack's own arguments, after what runs it (setpriv, and stdbuf for a dump).
  const argsOf = (spawned: ReadonlyArray<Scripted.Spawned>) =>
    spawned.map((s) => s.args.slice(s.args.indexOf("conntrack") + 1).join(" "))

  it.effect("--dump-arg and --event-arg, with -- for both", () =>
    Effect.gen(function* () {
      const { spawned } = yield* watchUntilFirstWalk([
        "--dump-arg",
        "--zone",
        "--dump-arg",
        "3",
        "--event-arg",
        "-e",
        "--event-arg",
        "UPDATE,DESTROY",
        "--",
        "--mark",
        "1"
      ])
      expect(argsOf(spawned)).toStrictEqual([
        "--buffer-size 33554432 -E -o id -p tcp --mark 1 -e UPDATE,DESTROY",
        "-L -o id -p tcp --mark 1 --zone 3"
      ])
    })
  )

  it.effect("CONNTRACK_DUMP_ARGS and CONNTRACK_EVENT_ARGS, with CONNTRACK_EXTRA_ARGS for both", () =>
    Effect.gen(function* () {
      const { spawned } = yield* watchUntilFirstWalk(
        [],
        new Map([
          ["CONNTRACK_DUMP_ARGS", "--zone 3"],
          ["CONNTRACK_EVENT_ARGS", "-e UPDATE,DESTROY"],
          ["CONNTRACK_EXTRA_ARGS", "--mark 1"]
        ])
      )
      expect(argsOf(spawned)).toStrictEqual([
        "--buffer-size 33554432 -E -o id -p tcp --mark 1 -e UPDATE,DESTROY",
        "-L -o id -p tcp --mark 1 --zone 3"
      ])
    })
  )
})
