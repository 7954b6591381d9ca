// Floods a scripted conntrack can send (stderr at 1 MB/s, 1,000 garbage stdout lines a second, a conntrack that fails
// at every restart), driven by the TestClock: the log stays bounded and the metric counts what was held back.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Metric from "effect/Metric"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as Conntrack from "../src/Conntrack.js"
import * as FlowWalker from "../src/FlowWalker.js"
import * as LogLimit from "../src/LogLimit.js"
import * as Metrics from "../src/Metrics.js"
import * as Scripted from "../src/testing.js"

interface LogLine {
  readonly level: string
  readonly message: string
}

/** A fresh limiter and a logger that records what reaches it (warnings and above). */
const recorded = () => {
  const logs: Array<LogLine> = []
  const logger = Logger.make(({ logLevel, message }) => {
    logs.push({ level: logLevel.label, message: Array.isArray(message) ? message.join(" ") : String(message) })
  })
  const layer = Layer.merge(Logger.replace(Logger.defaultLogger, logger), Logger.minimumLogLevel(LogLevel.Warning))
  return { logs, layer, limiter: LogLimit.make() }
}

const suppressed = Metric.value(Metrics.logLinesSuppressed).pipe(Effect.map((s) => s.count))

/** A word without digits for each k, so that masking numbers does not make two of them alike. */
const word = (k: number) => {
  let s = ""
  let n = k
  do {
    s += String.fromCharCode(97 + (n % 26))
    n = Math.floor(n / 26)
  } while (n > 0)
  return s
}

const pad = (line: string, bytes: number) => line.padEnd(bytes - 1, ".")

const shown = "conntrack --buffer-size 33554432 -E -o id -p tcp"

/** Summaries written when the window ends: how many lines they say were held back. */
const summarised = (logs: ReadonlyArray<LogLine>) =>
  logs.reduce((n, l) => {
    const m = /^(\d+) more (?:like this|log lines) in the last minute/.exec(l.message)
    return n + (m === null ? 0 : Number(m[1]))
  }, 0)

describe("the log rate limit under floods", () => {
  it.effect("a 1 MB/s stderr flood for 20 seconds logs a bounded number of lines, and counts the rest", () => {
    const { logs, layer, limiter } = recorded()
    const steps: Array<Scripted.Step> = []
    let lines = 0
    for (let step = 0; step < 200; step++) {
      const batch: Array<string> = []
      for (let k = 0; k < 1000; k++, lines++) {
        // About 100 bytes each. Half repeat one message with changing numbers; half are all different (more kinds than the limit).
        batch.push(
          lines % 2 === 0 ? `${pad("netlink error, try again", 94)}${lines}` : pad(`noise ${word(lines)}`, 100)
        )
      }
      steps.push({ stderr: batch }, { sleep: "100 millis" })
    }
    return Effect.gen(function* () {
      const before = yield* suppressed
      const fiber = yield* Effect.fork(
        Stream.runDrain(Conntrack.events({ dieWithParent: false, eventSource: "conntrack" }))
      )
      yield* TestClock.adjust("20 seconds")
      const during = logs.length
      const held = (yield* suppressed) - before
      expect(lines).toBe(200_000)
      expect(during).toBeLessThanOrEqual(20)
      expect(during).toBeGreaterThan(0)
      expect(held).toBe(lines - during)
      expect(logs.filter((l) => l.message.startsWith(`${shown}: netlink error,`))).toHaveLength(1)
      // The next window: one summary per kind that was held back, and one for the kinds past the limit.
      yield* TestClock.adjust("1 minute")
      yield* LogLimit.flush
      const summaries = logs.slice(during)
      expect(summaries.length).toBeLessThanOrEqual(21)
      expect(summarised(summaries)).toBe(held)
      expect(summaries.map((l) => l.message)).toContain(
        `99999 more like this in the last minute: ${shown}: ${pad("netlink error, try again", 94)}0`
      )
      yield* Fiber.interrupt(fiber)
    }).pipe(
      Effect.provideService(LogLimit.LogLimiter, limiter),
      Effect.provide(Scripted.layer({ events: [Scripted.eventsRun(steps)] })),
      Effect.provide(layer)
    )
  })

  it.effect("1,000 garbage stdout lines a second for 10 seconds: bounded warnings, every line still counted", () => {
    const { logs, layer, limiter } = recorded()
    const steps: Array<Scripted.Step> = []
    let lines = 0
    for (let step = 0; step < 100; step++) {
      const batch: Array<string> = []
      for (let k = 0; k < 100; k++, lines++) batch.push(`${word(lines)} is not a flow ${lines}`)
      steps.push({ stdout: batch }, { sleep: "100 millis" })
    }
    return Effect.gen(function* () {
      const before = yield* suppressed
      const errorsBefore = (yield* Metric.value(Metrics.parseErrors)).count
      const fiber = yield* Effect.fork(
        Stream.runDrain(Conntrack.events({ dieWithParent: false, eventSource: "conntrack" }))
      )
      yield* TestClock.adjust("10 seconds")
      const warnings = logs.filter((l) => l.message.includes("skipped a line"))
      expect(warnings.length).toBeGreaterThan(0)
      expect(logs.length).toBeLessThanOrEqual(20)
      expect((yield* suppressed) - before).toBe(lines - logs.length)
      expect((yield* Metric.value(Metrics.parseErrors)).count - errorsBefore).toBe(10_000)
      yield* Fiber.interrupt(fiber)
    }).pipe(
      Effect.provideService(LogLimit.LogLimiter, limiter),
      Effect.provide(Scripted.layer({ events: [Scripted.eventsRun(steps)] })),
      Effect.provide(layer)
    )
  })

  it.effect("a conntrack that fails at every restart has its stderr logged once a minute, not at every restart", () => {
    const { logs, layer, limiter } = recorded()
    const failing = Scripted.eventsRun([{ stderr: "conntrack: something is badly wrong" }, { exit: 1 }])
    return Effect.gen(function* () {
      yield* FlowWalker.make({ eventSource: "conntrack" })
      yield* TestClock.adjust("30 seconds")
      const spawned = yield* Effect.flatten(Effect.map(Scripted.ScriptedConntrack, (s) => s.spawned))
      expect(spawned.filter((p) => p.kind === "events").length).toBeGreaterThanOrEqual(10)
      expect(logs.filter((l) => l.message === `${shown}: conntrack: something is badly wrong`)).toHaveLength(1)
    }).pipe(
      Effect.scoped,
      Effect.provideService(LogLimit.LogLimiter, limiter),
      Effect.provide(Scripted.layer({ events: [failing] })),
      Effect.provide(layer)
    )
  })
})

describe("LogLimit", () => {
  it.effect("logs the first of each kind per window, then one summary for the repeats", () => {
    const { logs, layer } = recorded()
    const limiter = LogLimit.make({ kinds: 2 })
    return Effect.gen(function* () {
      for (let k = 0; k < 5; k++) yield* limiter.log(LogLevel.Warning, `disk ${k} is full`)
      yield* limiter.log(LogLevel.Error, "fan stopped")
      yield* limiter.log(LogLevel.Warning, "a third kind")
      yield* limiter.log(LogLevel.Warning, "a fourth kind")
      expect(logs).toStrictEqual([
        { level: "WARN", message: "disk 0 is full" },
        { level: "ERROR", message: "fan stopped" }
      ])
      yield* TestClock.adjust("1 minute")
      yield* limiter.log(LogLevel.Warning, "disk 9 is full")
      expect(logs.slice(2)).toStrictEqual([
        { level: "WARN", message: "4 more like this in the last minute: disk 0 is full" },
        {
          level: "WARN",
          message: "2 more log lines in the last minute were held back (more than 2 different messages)"
        },
        { level: "WARN", message: "disk 9 is full" }
      ])
    }).pipe(Effect.provide(layer))
  })

  it.effect("cuts a long message and says how long it was", () => {
    const { logs, layer } = recorded()
    return LogLimit.make({ maxLength: 10 })
      .log(LogLevel.Warning, "x".repeat(1_000_000))
      .pipe(
        Effect.provide(layer),
        Effect.map(() => expect(logs[0]?.message).toBe("xxxxxxxxxx... (1000000 characters)"))
      )
  })
})
