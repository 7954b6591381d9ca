/**
 * A user's app, for test/packaging.test.ts: it is copied into a scratch app that installed the packed tarball, then
 * type-checked there (strict, NodeNext) and run. It walks a scripted conntrack and prints, as one JSON line, whether
 * a line parsed, how many flows the walk saw and how many conntrack events the app's own metric registry holds.
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Metric from "effect/Metric"
import * as MetricState from "effect/MetricState"
import { FlowWalker, Parser } from "effect-conntrack"
import * as Scripted from "effect-conntrack/testing"

const dumped = Scripted.tcpFlow({ id: 1, sport: 40001, dport: 80 })
const updated = Scripted.tcpFlow({ id: 2, sport: 40002, dport: 443, type: "UPDATE" })
const parsed = Parser.parseDumpLine(Scripted.formatDumpLine(dumped))

const program = Effect.gen(function* () {
  // Against the scripted conntrack: its events come from `conntrack -E` (no event helper to look for).
  const walker = yield* FlowWalker.make({ eventSource: "conntrack" })
  yield* walker.ready
  const walked = yield* walker.walk.pipe(
    Effect.repeat({ until: (flows) => flows.length === 2 }),
    Effect.timeout("10 seconds")
  )
  let events = 0
  for (const pair of yield* Metric.snapshot) {
    if (pair.metricKey.name === "conntrack_events" && MetricState.isCounterState(pair.metricState)) {
      events += Number(pair.metricState.count)
    }
  }
  yield* Console.log(JSON.stringify({ parsed: Either.isRight(parsed), walked: walked.length, events }))
}).pipe(
  Effect.scoped,
  Effect.provide(Scripted.layer({ dump: [Scripted.dumpRun([dumped])], events: [Scripted.eventsRun([updated])] }))
)

Effect.runPromise(program)
