// The live walker as an application runs it, for the benchmarks on real (or fake) conntrack processes.
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Metric from "effect/Metric"
import * as Scope from "effect/Scope"
import * as FlowWalker from "../src/FlowWalker.js"
import * as Metrics from "../src/Metrics.js"
import type { WalkerOptions } from "../src/Options.js"
import { lines, type Namespace, waitFor } from "../test/kernel/netns.js"
import { seconds } from "./stats.js"

/** Starts a walker and waits until it is ready; `took` is the time that took, in seconds. */
export const startWalker = async (options: WalkerOptions) => {
  const scope = Effect.runSync(Scope.make())
  const start = process.hrtime.bigint()
  const walker = await Effect.runPromise(
    FlowWalker.make(options).pipe(
      Effect.tap((w) => w.ready),
      Scope.extend(scope),
      Effect.provide(NodeContext.layer),
      // Overflows and restarts are counted and printed by the benchmarks; their warnings would only interleave.
      Logger.withMinimumLogLevel(LogLevel.Error)
    )
  )
  return {
    took: seconds(start),
    walk: () => Effect.runPromise(walker.walk),
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

/** The current value of one of the walker's counters (they are process-global). */
export const counter = (metric: Metric.Metric.Counter<number>): number => Effect.runSync(Metric.value(metric)).count

/** Overflows counted so far. */
export const overflows = () => counter(Metrics.overflows)

const toRemove = new Set<string>()
process.once("exit", () => {
  for (const file of toRemove) fs.rmSync(file, { force: true })
})

/** Removes `file` when the benchmark process exits (scripts made for a namespace are used until its walkers stop). */
export const removedAtExit = (file: string): void => {
  toRemove.add(file)
}

/** A script that runs conntrack inside a namespace (benchmarks time the same wrapper on both sides). */
export const conntrackIn = (ns: string) => {
  const file = path.join(os.tmpdir(), `effect-conntrack-bench-${ns}.sh`)
  fs.writeFileSync(file, `#!/bin/sh\nexec ip netns exec ${ns} conntrack "$@"\n`, { mode: 0o755 })
  removedAtExit(file)
  return file
}

/** A bare `conntrack -E` in `ns` (what an events-only tracker sees), once it listens: its stdout and stderr lines. */
export const bareEvents = async (ns: Namespace) => {
  const proc = ns.spawn(["conntrack", "--buffer-size", "4194304", "-E", "-o", "id", "-p", "tcp"])
  const err = lines(proc.stderr)
  await waitFor("conntrack -E to listen", () => err.some((l) => l.startsWith("NOTICE")))
  return { proc, err, overflowed: () => err.some((l) => l.includes("ENOBUFS")) }
}
