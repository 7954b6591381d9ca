/**
 * The walker's metrics for an exporter: the series computed at scrape time (active flows by family, protocol and
 * state; the kernel's table size and limit) and the OpenTelemetry wiring that exports every Effect metric, these
 * included, through `@effect/opentelemetry`.
 *
 * An application that already runs the walker adds `layer(() => reader)` next to `FlowWalker.layer` to get the same
 * series on its own OpenTelemetry `MetricReader` (a `PrometheusExporter`, a `PeriodicExportingMetricReader`, ...);
 * `layerPrometheus` makes the Prometheus text page that `effect-conntrack serve` mounts on `/metrics`.
 */
import * as OtelMetrics from "@effect/opentelemetry/Metrics"
import type * as Resource from "@effect/opentelemetry/Resource"
import * as FileSystem from "@effect/platform/FileSystem"
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus"
import type { MetricProducer, MetricReader } from "@opentelemetry/sdk-metrics"
import type { NonEmptyReadonlyArray } from "effect/Array"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type { LazyArg } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Ref from "effect/Ref"
import * as Runtime from "effect/Runtime"
import type { Flow } from "./Flow.js"
import { FlowWalker } from "./FlowWalker.js"
import * as metricKeys from "./internal/metricKeys.js"
import * as Metrics from "./Metrics.js"
import { defaults } from "./Options.js"

/** Where the scrape-time series come from. */
export interface ExportOptions {
  /** Where `sys/net/netfilter/nf_conntrack_count` and `nf_conntrack_max` are read. Default `/proc`. */
  readonly procRoot?: string
  /** Which metrics (by name, without `_total`) to export. Default: every Effect metric of the process. */
  readonly include?: (name: string) => boolean
}

/** An `include` for the walker's own series only (`conntrack_*`), as `effect-conntrack serve` exports them. */
export const conntrackOnly = (name: string): boolean => name.startsWith("conntrack_")

/** The label values of one `conntrack_flows` series: family, protocol and state (empty when the protocol has none). */
export const flowLabels = (flow: Flow): string => `${flow.family}\u0000${flow.proto}\u0000${flow.state ?? ""}`

/** Active flows counted by `flowLabels`. */
export const countFlows = (flows: ReadonlyArray<Flow>): Map<string, number> => {
  // Nested maps on the three label values: no string is built per flow (262,144 of them at scrape).
  const byFamily = new Map<string, Map<string, Map<string, number>>>()
  for (let i = 0; i < flows.length; i++) {
    const flow = flows[i] as Flow
    let byProto = byFamily.get(flow.family)
    if (byProto === undefined) {
      byProto = new Map()
      byFamily.set(flow.family, byProto)
    }
    let byState = byProto.get(flow.proto)
    if (byState === undefined) {
      byState = new Map()
      byProto.set(flow.proto, byState)
    }
    const state = flow.state ?? ""
    byState.set(state, (byState.get(state) ?? 0) + 1)
  }
  const counts = new Map<string, number>()
  for (const [family, byProto] of byFamily)
    for (const [proto, byState] of byProto)
      for (const [state, n] of byState) counts.set(`${family}\u0000${proto}\u0000${state}`, n)
  return counts
}

const netfilterFile = (procRoot: string, name: string) => `${procRoot.replace(/\/+$/, "")}/sys/net/netfilter/${name}`

/**
 * An effect that sets the scrape-time series: `conntrack_flows{family,proto,state}` from the walker's active flows
 * (series that had flows and have none now drop to 0), and `conntrack_table_entries` / `conntrack_table_limit` from
 * the kernel's files (left unset, or at their last value, when a file cannot be read; said once at debug level).
 */
export const makeRefresh = (
  options: ExportOptions = {}
): Effect.Effect<Effect.Effect<void>, never, FlowWalker | FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const walker = yield* FlowWalker
    const fs = yield* FileSystem.FileSystem
    const procRoot = options.procRoot ?? defaults.procRoot
    const shown = yield* Ref.make<ReadonlySet<string>>(new Set())
    const gauges = new Map<string, Metric.Metric.Gauge<number>>()
    const gauge = (key: string) => {
      let g = gauges.get(key)
      if (g === undefined) {
        const [family, proto, state] = key.split("\u0000") as [string, string, string]
        g = metricKeys.withLabels(metricKeys.flows, [
          ["family", family],
          ["proto", proto],
          ["state", state]
        ])
        gauges.set(key, g)
      }
      return g
    }
    const unreadable = new Set<string>()
    const readCount = (name: string, target: Metric.Metric.Gauge<number>) => {
      const path = netfilterFile(procRoot, name)
      return fs.readFileString(path).pipe(
        Effect.flatMap((text) => {
          const value = Number(text.trim())
          return text.trim() !== "" && Number.isFinite(value)
            ? Metric.set(target, value)
            : Effect.fail(`reads ${JSON.stringify(text.trim())}`)
        }),
        Effect.catchAll((error) =>
          unreadable.has(path)
            ? Effect.void
            : Effect.sync(() => unreadable.add(path)).pipe(
                Effect.zipRight(
                  Effect.logDebug(
                    `${path} ${typeof error === "string" ? error : `could not be read (${error.message})`}: no ${name} series`
                  )
                )
              )
        )
      )
    }
    return Effect.gen(function* () {
      const counts = countFlows(yield* walker.flows)
      const previous = yield* Ref.getAndSet(shown, new Set(counts.keys()))
      for (const key of previous) if (!counts.has(key)) yield* Metric.set(gauge(key), 0)
      for (const [key, n] of counts) yield* Metric.set(gauge(key), n)
      yield* Effect.all(
        [readCount("nf_conntrack_count", Metrics.tableEntries), readCount("nf_conntrack_max", Metrics.tableLimit)],
        {
          concurrency: 2,
          discard: true
        }
      )
    })
  })

/**
 * `@effect/opentelemetry`'s producer of every Effect metric, made to run `refresh` before each collection, so that a
 * reader sees the scrape-time series as they are at that moment.
 */
export const makeProducer = (
  refresh: Effect.Effect<void>,
  options: Pick<ExportOptions, "include"> = {}
): Effect.Effect<MetricProducer, never, Resource.Resource> =>
  Effect.gen(function* () {
    const inner = yield* OtelMetrics.makeProducer
    const runtime = yield* Effect.runtime<never>()
    const run = Runtime.runPromise(runtime)
    const include = options.include
    return {
      collect: (collectOptions) =>
        run(refresh)
          .then(() => inner.collect(collectOptions))
          .then((result) =>
            include === undefined
              ? result
              : {
                  ...result,
                  resourceMetrics: {
                    ...result.resourceMetrics,
                    scopeMetrics: result.resourceMetrics.scopeMetrics.map((scope) => ({
                      ...scope,
                      metrics: scope.metrics.filter((m) => include(m.descriptor.name))
                    }))
                  }
                }
          )
    }
  })

/**
 * Every Effect metric (the walker's, and the scrape-time series computed when the reader collects) on the given
 * OpenTelemetry readers, for as long as the layer lives: add it next to `FlowWalker.layer`, with a `Resource` layer
 * from `@effect/opentelemetry`.
 */
export const layer = (
  evaluate: LazyArg<MetricReader | NonEmptyReadonlyArray<MetricReader>>,
  options: ExportOptions = {}
): Layer.Layer<never, never, FlowWalker | FileSystem.FileSystem | Resource.Resource> =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      const producer = yield* makeProducer(yield* makeRefresh(options), options)
      yield* OtelMetrics.registerProducer(producer, evaluate)
    })
  )

/** Collecting the metrics failed (an OpenTelemetry reader or producer rejected). */
export class ScrapeFailed extends Data.TaggedError("ScrapeFailed")<{ readonly cause: unknown }> {
  override get message() {
    return `collecting metrics failed: ${this.cause instanceof Error ? this.cause.message : String(this.cause)}`
  }
}

/** The Prometheus exposition of every Effect metric. */
export interface PrometheusPage {
  /** The page in the Prometheus text format (version 0.0.4), collected now. */
  readonly scrape: Effect.Effect<string, ScrapeFailed>
}

export class Prometheus extends Context.Tag("effect-conntrack/MetricsExport/Prometheus")<
  Prometheus,
  PrometheusPage
>() {}

/** The content type of the Prometheus text format. */
export const contentType = "text/plain; version=0.0.4; charset=utf-8"

/**
 * The Prometheus page, made by `@opentelemetry/exporter-prometheus` (its own HTTP server is not started: mount
 * `scrape` on yours). Counters get `_total`, descriptions become HELP; series carry no OpenTelemetry scope label,
 * and `target_info` carries the `Resource`.
 */
export const layerPrometheus = (
  options: ExportOptions = {}
): Layer.Layer<Prometheus, never, FlowWalker | FileSystem.FileSystem | Resource.Resource> =>
  Layer.scoped(
    Prometheus,
    Effect.gen(function* () {
      const exporter = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true })
      const serializer = new PrometheusSerializer(undefined, false, undefined, false, true)
      const producer = yield* makeProducer(yield* makeRefresh(options), options)
      yield* OtelMetrics.registerProducer(producer, () => exporter)
      return {
        scrape: Effect.tryPromise({
          try: () => exporter.collect(),
          catch: (cause) => new ScrapeFailed({ cause })
        }).pipe(
          Effect.tap(({ errors }) =>
            errors.length > 0 ? Effect.logWarning(`metrics collected with errors: ${errors.join("; ")}`) : Effect.void
          ),
          Effect.map(({ resourceMetrics }) => serializer.serialize(resourceMetrics))
        )
      }
    })
  )
