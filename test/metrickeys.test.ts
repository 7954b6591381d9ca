// Metrics with their labels fixed in the key count into the very series `Metric.tagged` names, with and without the
// fiber's own metric labels (an application that tags all its metrics with its host, say).
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as MetricKey from "effect/MetricKey"
import { withLabels } from "../src/internal/metricKeys.js"

// A key of its own per test: the metric registry is global.
let made = 0
const freshCounter = () => MetricKey.counter(`test_metric_keys_${made++}`, { incremental: true })

const count = (metric: Metric.Metric.Counter<number>) => Effect.map(Metric.value(metric), (s) => s.count)

describe("withLabels", () => {
  it.effect("counts into the series a reader names with Metric.tagged, labels in the same order", () =>
    Effect.gen(function* () {
      const key = freshCounter()
      yield* Metric.incrementBy(
        withLabels(key, [
          ["family", "ipv4"],
          ["proto", "tcp"]
        ]),
        3
      )
      yield* Metric.incrementBy(
        withLabels(key, [
          ["family", "ipv6"],
          ["proto", "tcp"]
        ]),
        5
      )
      const tagged = (family: string) =>
        Metric.fromMetricKey(key).pipe(Metric.tagged("family", family), Metric.tagged("proto", "tcp"))
      expect(yield* count(tagged("ipv4"))).toBe(3)
      expect(yield* count(tagged("ipv6"))).toBe(5)
      yield* Metric.increment(tagged("ipv4"))
      expect(
        yield* count(
          withLabels(key, [
            ["family", "ipv4"],
            ["proto", "tcp"]
          ])
        )
      ).toBe(4)
    })
  )

  it.effect("a gauge with three labels, and a fiber label equal to one of its own, as Metric.tagged has them", () =>
    Effect.gen(function* () {
      const key = MetricKey.gauge(`test_metric_keys_${made++}`)
      const fixed = withLabels(key, [
        ["family", "ipv4"],
        ["proto", "tcp"],
        ["state", "ESTABLISHED"]
      ])
      const tagged = Metric.fromMetricKey(key).pipe(
        Metric.tagged("family", "ipv4"),
        Metric.tagged("proto", "tcp"),
        Metric.tagged("state", "ESTABLISHED")
      )
      yield* Metric.set(fixed, 42)
      expect((yield* Metric.value(tagged)).value).toBe(42)
      yield* Metric.set(fixed, 7).pipe(Effect.tagMetrics("proto", "tcp"))
      expect((yield* Metric.value(tagged).pipe(Effect.tagMetrics("proto", "tcp"))).value).toBe(7)
    })
  )

  it.effect("adds the fiber's metric labels after its own, as Metric.tagged does", () =>
    Effect.gen(function* () {
      const key = freshCounter()
      const fixed = withLabels(key, [["type", "NEW"]])
      const tagged = Metric.tagged(Metric.fromMetricKey(key), "type", "NEW")
      yield* Metric.incrementBy(fixed, 2).pipe(Effect.tagMetrics("host", "a"))
      yield* Metric.incrementBy(fixed, 7).pipe(Effect.tagMetrics("host", "b"))
      yield* Metric.incrementBy(tagged, 1).pipe(Effect.tagMetrics("host", "a"))
      expect(yield* count(tagged).pipe(Effect.tagMetrics("host", "a"))).toBe(3)
      expect(yield* count(fixed).pipe(Effect.tagMetrics("host", "b"))).toBe(7)
      expect(yield* count(tagged)).toBe(0)
    })
  )
})
