/**
 * The walker's metrics (Effect `Metric`s; they are process-global, as Effect metrics are).
 *
 * Labels come only from small fixed sets (event type, family, protocol, state, restart cause): never an address, a
 * port or an id, since a metric registry keeps every label combination forever. Counters are named without `_total`;
 * Prometheus exporters add it.
 */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"

/** conntrack event lines folded into the table, tagged with `type` (NEW, UPDATE, DESTROY). */
export const events = Metric.counter("conntrack_events", { description: "conntrack events folded, by type" })
/** Connections first seen active, tagged with `family` and `proto`. */
export const flowsOpened = Metric.counter("conntrack_flows_opened", {
  description: "connections first seen active, by family and protocol"
})
/** Connections reported dead, tagged with `family` and `proto`. */
export const flowsClosed = Metric.counter("conntrack_flows_closed", {
  description: "connections reported dead (closed), by family and protocol"
})
/** Flows currently active in the table. */
export const flowsActive = Metric.gauge("conntrack_flows_active", { description: "active flows in the table" })
/** Dead flows a reader missed because the log of deaths had dropped them before it walked. */
export const deadDropped = Metric.counter("conntrack_dead_flows_dropped", {
  description: "dead flows dropped before a reader walked them (log of deaths full)"
})
/** conntrack output lines that were not flows. */
export const parseErrors = Metric.counter("conntrack_parse_errors", {
  description: "conntrack lines that failed to parse"
})
/** Restarts of the conntrack processes, tagged with `cause`. */
export const restarts = Metric.counter("conntrack_restarts", { description: "restarts of conntrack, by cause" })
/** ENOBUFS warnings seen on conntrack's stderr. */
export const overflows = Metric.counter("conntrack_overflows", { description: "ENOBUFS event overflows" })
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
  description: "table changes a slow subscriber missed (its buffer was full)"
})
/** 1 while the kernel sends conntrack events (`nf_conntrack_events` reads 1 or 2), 0 when they are off. */
export const eventsEnabled = Metric.gauge("conntrack_events_enabled", {
  description: "1 while the kernel sends conntrack events in this namespace, 0 when they are off"
})
/** Log lines held back by the rate limit (repeats of a message within a minute, or past the kinds it logs). */
export const logLinesSuppressed = Metric.counter("conntrack_log_lines_suppressed", {
  description: "log lines held back by the rate limit (each kind of message is logged once a minute, then summarised)"
})
