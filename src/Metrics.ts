/**
 * The walker's metrics (Effect `Metric`s; they are process-global, as Effect metrics are).
 *
 * Labels come only from small fixed sets (event type, family, protocol, state, restart cause): never an address, a
 * port or an id, since a metric registry keeps every label combination forever. Counters are named without `_total`
 * and are `incremental` (only count up): OpenTelemetry exports them as monotonic sums, which Prometheus exporters
 * name with `_total`; a non-incremental counter would be exported as a gauge.
 */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as keys from "./internal/metricKeys.js"

/** conntrack event lines folded into the table, tagged with `type` (NEW, UPDATE, DESTROY). */
export const events: Metric.Metric.Counter<number> = Metric.fromMetricKey(keys.events)
/** Connections first seen active, tagged with `family` and `proto`. */
export const flowsOpened: Metric.Metric.Counter<number> = Metric.fromMetricKey(keys.flowsOpened)
/** Connections reported dead, tagged with `family` and `proto`. */
export const flowsClosed: Metric.Metric.Counter<number> = Metric.fromMetricKey(keys.flowsClosed)
/** Flows currently active in the table. */
export const flowsActive = Metric.gauge("conntrack_flows_active", { description: "active flows in the table" })
/** Dead flows a reader missed because the log of deaths had dropped them before it walked. */
export const deadDropped = Metric.counter("conntrack_dead_flows_dropped", {
  incremental: true,
  description: "dead flows dropped before a reader walked them (log of deaths full)"
})
/** conntrack output lines that were not flows. */
export const parseErrors = Metric.counter("conntrack_parse_errors", {
  incremental: true,
  description: "conntrack lines that failed to parse"
})
/** Restarts of the conntrack processes, tagged with `cause`. */
export const restarts = Metric.counter("conntrack_restarts", {
  incremental: true,
  description: "restarts of conntrack, by cause"
})
/** ENOBUFS warnings seen on conntrack's stderr. */
export const overflows = Metric.counter("conntrack_overflows", {
  incremental: true,
  description: "ENOBUFS event overflows"
})
/** 1 while the walker's table holds a complete dump and it is folding events; 0 before and while it restarts. */
export const walkerReady = Metric.gauge("conntrack_walker_ready", {
  description: "1 once the walker's table holds a full dump and events are folded, 0 before and while it restarts"
})
/** How long a resync took: the dump, its fold, and the events held meanwhile. */
export const resyncDuration = Metric.histogram(
  "conntrack_resync_duration_seconds",
  MetricBoundaries.exponential({ start: 0.01, factor: 2, count: 12 }),
  "time to dump and fold the kernel's table (seconds)"
)
/** Changes a `changes` subscriber missed because it fell too far behind. */
export const changesDropped = Metric.counter("conntrack_changes_dropped", {
  incremental: true,
  description: "table changes a slow subscriber missed (its buffer was full)"
})
/** 1 while the kernel sends conntrack events (`nf_conntrack_events` reads 1 or 2), 0 when they are off. */
export const eventsEnabled = Metric.gauge("conntrack_events_enabled", {
  description: "1 while the kernel sends conntrack events in this namespace, 0 when they are off"
})
/** Log lines held back by the rate limit (repeats of a message within a minute, or past the kinds it logs). */
export const logLinesSuppressed = Metric.counter("conntrack_log_lines_suppressed", {
  incremental: true,
  description: "log lines held back by the rate limit (each kind of message is logged once a minute, then summarised)"
})

// Scrape-time series: `MetricsExport` sets them from the walker and the kernel each time metrics are collected.

/** Active flows in the walker's table, tagged with `family`, `proto` and `state` (empty for protocols without one). */
export const flows: Metric.Metric.Gauge<number> = Metric.fromMetricKey(keys.flows)
/** The kernel's `nf_conntrack_count`: entries in this network namespace's conntrack table. */
export const tableEntries = Metric.gauge("conntrack_table_entries", {
  description: "entries in the kernel's conntrack table (nf_conntrack_count, read at scrape)"
})
/** The kernel's `nf_conntrack_max`: the most entries the conntrack table holds. */
export const tableLimit = Metric.gauge("conntrack_table_limit", {
  description: "size limit of the kernel's conntrack table (nf_conntrack_max, read at scrape)"
})
