/**
 * How far the V8 heap may grow past what the long-running commands (`watch`, `serve`) keep.
 *
 * Under churn the walker allocates fast and keeps little: at 300 connections/s its live heap stays near 38 MB, and V8,
 * tuned for throughput, lets the old space grow to 3 to 4 times that between full collections (RSS 250 MB in the
 * soak). A daemon is better off with memory that follows what it keeps, so these commands set V8's heap growing
 * factor to `1 + percent / 100` (default 1.5). It is a factor over the live heap, not a cap: a large table still fits,
 * where a fixed `--max-old-space-size` would end in an out-of-memory crash. `CONNTRACK_HEAP_GROWTH_PERCENT` sets it
 * (0 keeps V8's own heuristics); a `--heap-growing-percent` given to node itself wins. Library users are left alone:
 * a process-wide V8 setting is the application's choice.
 */
import * as v8 from "node:v8"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"

/** The default: the old space may grow to 1.5 times the live heap before the next full collection. */
export const defaultGrowthPercent = 50

/** The environment's setting: `CONNTRACK_HEAP_GROWTH_PERCENT`, 0 (V8's own heuristics) to 1000. */
export const growthPercent: Config.Config<number> = Config.integer("CONNTRACK_HEAP_GROWTH_PERCENT").pipe(
  Config.validate({ message: "must be 0 (V8's own) to 1000", validation: (n) => n >= 0 && n <= 1000 }),
  Config.withDefault(defaultGrowthPercent)
)

/** The V8 flag to set, or undefined when there is none to set (0, or node was given its own). */
export const growthFlag = (percent: number, execArgv: ReadonlyArray<string>): string | undefined =>
  percent > 0 && !execArgv.some((a) => /^--heap[-_]growing[-_]percent(=|$)/.test(a))
    ? `--heap-growing-percent=${percent}`
    : undefined

/** Where V8 flags go: V8 itself by default; tests provide a recorder. */
export class V8Flags extends Context.Reference<V8Flags>()("effect-conntrack/cli/V8Flags", {
  defaultValue: () => ({ set: (flag: string): void => v8.setFlagsFromString(flag) })
}) {}

/**
 * Sets the growing factor from the environment. V8 reads it at every full collection, so setting it once the
 * process runs takes effect from the next one.
 */
export const bound: Effect.Effect<void, ConfigError.ConfigError> = Effect.flatMap(growthPercent, (percent) => {
  const flag = growthFlag(percent, process.execArgv)
  return flag === undefined ? Effect.void : Effect.flatMap(V8Flags, (flags) => Effect.sync(() => flags.set(flag)))
})
