// Which program delivers events: the helper (here fixtures/fake-helper.sh, which replays the real helper's recorded
// output), conntrack -E, or auto, through the real Node executor; and the real helper's own argument checks.
import * as child from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Stream from "effect/Stream"
import * as Conntrack from "../src/Conntrack.js"
import * as EventSource from "../src/EventSource.js"
import * as Options from "../src/Options.js"

const root = path.join(import.meta.dirname, "..")
const fakeHelper = path.join(root, "fixtures", "fake-helper.sh")
const recorded = fs
  .readFileSync(path.join(root, "fixtures", "helper", "events.helper.txt"), "utf8")
  .split("\n")
  .filter((l) => l !== "")
const realHelper = path.join(root, "dist", "native", "conntrack-events")

/** A fresh directory per test: the helper probe is remembered per path for the whole process. */
const scratch = () => fs.mkdtempSync(path.join(os.tmpdir(), "ect-native-eventsource-"))

/** The fake helper at a path no other test used. */
const freshFake = () => {
  const file = path.join(scratch(), "conntrack-events")
  fs.writeFileSync(file, `#!/bin/sh\nexec ${fakeHelper} "$@"\n`, { mode: 0o755 })
  return file
}

const script = (body: string, mode = 0o755) => {
  const file = path.join(scratch(), "conntrack-events")
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode })
  return file
}

const recordLogs = () => {
  const logs: Array<{ level: string; message: string }> = []
  const logger = Logger.make(({ logLevel, message }) => {
    logs.push({ level: logLevel.label, message: Array.isArray(message) ? message.join(" ") : String(message) })
  })
  return {
    logs,
    layer: Layer.mergeAll(
      NodeContext.layer,
      Logger.replace(Logger.defaultLogger, logger),
      Logger.minimumLogLevel(LogLevel.All)
    )
  }
}

const chosen = (options: Options.WalkerOptions) => EventSource.choose(Options.resolve(options))

describe("the event source", () => {
  it.live("auto runs the helper when it is there and runs: its lines are parsed, its argv is fixed", () => {
    const helper = freshFake()
    const argsFile = path.join(path.dirname(helper), "args")
    const { logs, layer } = recordLogs()
    return Effect.gen(function* () {
      process.env.FAKE_ARGS = argsFile
      const running = yield* Conntrack.start("events", { helperPath: helper, bufferSize: 1000 })
      yield* running.listening
      const flows = yield* running.flows.pipe(Stream.take(recorded.length), Stream.runCollect)
      expect(Chunk.toReadonlyArray(flows).map((f) => f.id)).toStrictEqual(
        recorded.map((l) => Number(/ id=(\d+)(?!.* id=)/.exec(l.replace(/ \[USERSPACE\].*$/, ""))?.[1]))
      )
      expect(
        fs
          .readFileSync(argsFile, "utf8")
          .split("\n")
          .filter((l) => l !== "")
      ).toStrictEqual(["-p", "tcp", "--buffer-size", "1000", "--parent-pid", String(process.pid)])
      expect(logs.filter((l) => l.level === "WARN")).toStrictEqual([])
      expect(
        logs.some((l) => l.message === `events from ${helper} -p tcp --buffer-size 1000 --parent-pid ${process.pid}`)
      ).toBe(true)
    }).pipe(Effect.scoped, Effect.ensuring(Effect.sync(() => delete process.env.FAKE_ARGS)), Effect.provide(layer))
  })

  it.live("auto falls back to conntrack -E when the helper is missing, and warns once with the apt line", () => {
    const missing = path.join(scratch(), "conntrack-events")
    const { logs, layer } = recordLogs()
    return Effect.gen(function* () {
      const first = yield* chosen({ helperPath: missing })
      const second = yield* chosen({ helperPath: missing })
      expect(first).toStrictEqual(EventSource.EventSource.Conntrack({ binary: "conntrack" }))
      expect(second).toStrictEqual(first)
      const program = yield* Conntrack.eventsProgram({ helperPath: missing })
      expect(program).toStrictEqual({
        program: "conntrack",
        args: ["--buffer-size", "33554432", "-E", "-o", "id", "-p", "tcp"]
      })
      const warnings = logs.filter((l) => l.level === "WARN")
      expect(warnings.length).toBe(1)
      expect(warnings[0]?.message).toContain(`the event helper ${missing} is missing: using conntrack -E instead`)
      expect(warnings[0]?.message).toContain("apt-get install -y libnetfilter-conntrack-dev gcc pkg-config")
      expect(warnings[0]?.message).toContain("ENOBUFS")
    }).pipe(Effect.provide(layer))
  })

  it.live("helper forced: a missing helper is EventHelperUnavailable, from the event stream too", () => {
    const missing = path.join(scratch(), "conntrack-events")
    return Effect.gen(function* () {
      const error = yield* Effect.flip(chosen({ eventSource: "helper", helperPath: missing }))
      expect(error._tag).toBe("EventHelperUnavailable")
      expect(error.path).toBe(missing)
      expect(error.reason).toBe("is missing")
      expect(error.message).toContain("apt-get install -y libnetfilter-conntrack-dev gcc pkg-config")
      const streamed = yield* Stream.runDrain(Conntrack.events({ eventSource: "helper", helperPath: missing })).pipe(
        Effect.either
      )
      expect(Either.isLeft(streamed) && streamed.left._tag).toBe("EventHelperUnavailable")
    }).pipe(Effect.provide(NodeContext.layer))
  })

  it.live("helper forced: one that is not executable or does not run is EventHelperUnavailable saying so", () =>
    Effect.gen(function* () {
      const notExecutable = yield* Effect.flip(chosen({ eventSource: "helper", helperPath: script("exit 0", 0o644) }))
      expect(notExecutable.reason).toBe("is not executable")
      const broken = yield* Effect.flip(chosen({ eventSource: "helper", helperPath: script("exit 127") }))
      expect(broken.reason).toBe("does not run (--version exited with code 127)")
    }).pipe(Effect.provide(NodeContext.layer))
  )

  it.live("auto runs conntrack -E for conntrack's extra arguments or a named conntrack binary", () => {
    const helper = freshFake()
    const { logs, layer } = recordLogs()
    return Effect.gen(function* () {
      expect((yield* chosen({ helperPath: helper }))._tag).toBe("Helper")
      expect(yield* chosen({ helperPath: helper, extraArgs: ["--zone", "3"] })).toStrictEqual(
        EventSource.EventSource.Conntrack({ binary: "conntrack" })
      )
      expect(logs.filter((l) => l.level === "WARN").map((l) => l.message)).toStrictEqual([
        `the event helper ${helper} does not take conntrack's arguments (--zone 3): using conntrack -E instead. ${EventSource.conntrackLoses}; drop those options to use the helper`
      ])
      expect(yield* chosen({ helperPath: helper, binary: "/opt/conntrack" })).toStrictEqual(
        EventSource.EventSource.Conntrack({ binary: "/opt/conntrack" })
      )
      expect(yield* chosen({ helperPath: helper, eventSource: "conntrack" })).toStrictEqual(
        EventSource.EventSource.Conntrack({ binary: "conntrack" })
      )
      const forced = yield* Effect.flip(chosen({ helperPath: helper, eventSource: "helper", protocol: "icmp6" }))
      expect(forced.reason).toBe('does not know the protocol "icmp6"')
    }).pipe(Effect.provide(layer))
  })

  it.effect("CONNTRACK_EVENT_SOURCE and CONNTRACK_HELPER_PATH are read, and a wrong source is refused", () =>
    Effect.gen(function* () {
      const read = (env: Record<string, string>) =>
        Effect.either(
          Effect.withConfigProvider(
            Options.config,
            ConfigProvider.fromMap(new Map(Object.entries(env)), { pathDelim: "_" })
          )
        )
      expect(yield* read({ CONNTRACK_EVENT_SOURCE: "helper", CONNTRACK_HELPER_PATH: "/x/h" })).toStrictEqual(
        Either.right({ eventSource: "helper", helperPath: "/x/h" })
      )
      expect(Either.isLeft(yield* read({ CONNTRACK_EVENT_SOURCE: "fast" }))).toBe(true)
      expect(Options.resolve({}).eventSource).toBe("auto")
    })
  )
})

describe.skipIf(!fs.existsSync(realHelper))("the real helper", () => {
  it("prints its version, and refuses arguments it does not know with exit code 2", () => {
    const version = child.spawnSync(realHelper, ["--version"], { encoding: "utf8" })
    expect(version.status).toBe(0)
    expect(version.stdout).toBe("conntrack-events v1.0.0 (effect-conntrack)\n")
    for (const args of [["-X"], ["-p", "nosuch"], ["--buffer-size", "lots"], ["--parent-pid"]]) {
      const r = child.spawnSync(realHelper, args, { encoding: "utf8" })
      expect(r.status).toBe(2)
      expect(r.stderr).toMatch(/^conntrack-events: /)
    }
  })

  it("exits at once when the parent pid it was given is not its parent", () => {
    const r = child.spawnSync(realHelper, ["--parent-pid", "999999999"], { encoding: "utf8", timeout: 5000 })
    expect(r.status).toBe(1)
    expect(r.stderr).toBe("conntrack-events: the parent process is gone\n")
  })
})
