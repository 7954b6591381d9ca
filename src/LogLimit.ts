/**
 * A rate limit for log lines that can come in floods (conntrack's stderr, stdout lines that are not flows).
 *
 * Messages are grouped by kind (by default the message with its numbers masked). In each window (one minute by
 * default) the first message of a kind is logged and the others like it are held back and counted in the
 * `conntrack_log_lines_suppressed` metric; when the window ends, each kind that was held back gets one summary line,
 * "N more like this in the last minute: <message>". At most `kinds` different kinds are logged per window: messages of
 * any further kind are held back and summed up in one more line. A window thus logs at most `2 * kinds + 1` lines
 * and keeps at most `kinds` short entries, whatever the flood.
 *
 * Summaries are written when the next message comes after the window, or by `flush` (the command line flushes at
 * exit). The limiter is shared across conntrack restarts, so a conntrack that keeps failing has its stderr logged
 * once a minute, not at every restart.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as LogLevel from "effect/LogLevel"
import * as Metric from "effect/Metric"
import * as Metrics from "./Metrics.js"

/** How a limiter counts. */
export interface LogLimitOptions {
  /** Length of a window. Default 1 minute. */
  readonly window?: Duration.DurationInput
  /** Most different kinds of message logged per window. Default 20. */
  readonly kinds?: number
  /** Longest message logged, in characters; the rest is cut and its length said. Default 500. */
  readonly maxLength?: number
}

/** A log rate limiter. */
export interface LogLimit {
  /**
   * Logs `message` at `level` if it is the first of its `kind` in this window (and the window still has room for a
   * new kind); otherwise counts it. `kind` defaults to the message; numbers in it are masked.
   */
  readonly log: (level: LogLevel.LogLevel, message: string, kind?: string) => Effect.Effect<void>
  /** Writes the summaries of what was held back, and starts a new window. */
  readonly flush: Effect.Effect<void>
}

interface Kind {
  readonly level: LogLevel.LogLevel
  readonly message: string
  held: number
}

/** Cuts a message to `max` characters, saying how long it was. */
export const cut = (message: string, max: number): string =>
  message.length <= max ? message : `${message.slice(0, max)}... (${message.length} characters)`

const kindOf = (message: string): string => message.slice(0, 200).replace(/\d+/g, "N")

/** A limiter with its own counts. */
export const make = (options: LogLimitOptions = {}): LogLimit => {
  const window = Duration.toMillis(Duration.decode(options.window ?? Duration.minutes(1)))
  const maxKinds = options.kinds ?? 20
  const maxLength = options.maxLength ?? 500
  const period = window === 60_000 ? "the last minute" : `the last ${Duration.format(Duration.millis(window))}`
  // Plain state touched only inside `Effect.sync`/`suspend` bodies, which run to completion without yielding: each
  // update is atomic.
  let started: number | undefined
  let kinds = new Map<string, Kind>()
  let others = 0
  let othersLevel: LogLevel.LogLevel = LogLevel.Warning

  /** Ends the window: the summaries to write. */
  const close = (): Effect.Effect<void> => {
    const summaries: Array<Effect.Effect<void>> = []
    for (const kind of kinds.values()) {
      if (kind.held > 0) {
        summaries.push(Effect.logWithLevel(kind.level, `${kind.held} more like this in ${period}: ${kind.message}`))
      }
    }
    if (others > 0) {
      summaries.push(
        Effect.logWithLevel(
          othersLevel,
          `${others} more log lines in ${period} were held back (more than ${maxKinds} different messages)`
        )
      )
    }
    started = undefined
    kinds = new Map()
    others = 0
    return summaries.length === 0 ? Effect.void : Effect.all(summaries, { discard: true })
  }

  const log = (level: LogLevel.LogLevel, message: string, kindText?: string) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.suspend(() => {
        const summaries = started !== undefined && now - started >= window ? close() : Effect.void
        if (started === undefined) started = now
        const kind = kindOf(kindText ?? message)
        const seen = kinds.get(kind)
        let line: Effect.Effect<void>
        if (seen !== undefined) {
          seen.held++
          line = Metric.increment(Metrics.logLinesSuppressed)
        } else if (kinds.size < maxKinds) {
          const text = cut(message, maxLength)
          kinds.set(kind, { level, message: cut(text, 200), held: 0 })
          line = Effect.logWithLevel(level, text)
        } else {
          others++
          if (LogLevel.greaterThan(level, othersLevel)) othersLevel = level
          line = Metric.increment(Metrics.logLinesSuppressed)
        }
        return Effect.zipRight(summaries, line)
      })
    )

  return { log, flush: Effect.suspend(close) }
}

/**
 * The limiter the library's own logging goes through: one per process by default (shared across restarts); provide
 * another (`Effect.provideService(LogLimiter, LogLimit.make(...))`) to isolate or tune it.
 */
export class LogLimiter extends Context.Reference<LogLimiter>()("effect-conntrack/LogLimit", {
  defaultValue: (): LogLimit => make()
}) {}

/** Logs a warning through the current limiter. */
export const warn = (message: string, kind?: string): Effect.Effect<void> =>
  Effect.flatMap(LogLimiter, (limiter) => limiter.log(LogLevel.Warning, message, kind))

/** Writes the current limiter's pending summaries. */
export const flush: Effect.Effect<void> = Effect.flatMap(LogLimiter, (limiter) => limiter.flush)
