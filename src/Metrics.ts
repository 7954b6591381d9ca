/**
 * The walker's metrics (Effect `Metric`s; they are process-global, as Effect metrics are).
 */
import * as Metric from "effect/Metric"

/** Event lines folded into the table. */
export const eventsFolded = Metric.counter("conntrack_events_folded", { description: "conntrack events folded" })
/** Flows currently active in the table. */
export const flowsActive = Metric.gauge("conntrack_flows_active", { description: "active flows in the table" })
/** Dead flows dropped because the dead list was full. */
export const deadDropped = Metric.counter("conntrack_dead_flows_dropped", {
  description: "dead flows dropped before a walk reported them (dead list full)"
})
/** conntrack output lines that were not flows. */
export const parseErrors = Metric.counter("conntrack_parse_errors", {
  description: "conntrack lines that failed to parse"
})
/** Restarts of the conntrack processes, tagged with `cause`. */
export const restarts = Metric.counter("conntrack_restarts", { description: "restarts of conntrack, by cause" })
/** ENOBUFS warnings seen on conntrack's stderr. */
export const overflows = Metric.counter("conntrack_overflows", { description: "ENOBUFS event overflows" })
