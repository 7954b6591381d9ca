/**
 * effect-conntrack: a live table of the Linux kernel's tracked connections (netfilter conntrack) for Effect
 * applications. The command line lives in `bin.ts`; the scripted conntrack for tests in `effect-conntrack/testing`.
 */
export * as Conntrack from "./Conntrack.js"
export * as Errors from "./Errors.js"
export * as EventSource from "./EventSource.js"
export * as Flow from "./Flow.js"
export * as FlowLog from "./FlowLog.js"
export * as FlowTable from "./FlowTable.js"
export * as FlowWalker from "./FlowWalker.js"
export * as Format from "./Format.js"
export * as KernelSupport from "./KernelSupport.js"
export * as LogLimit from "./LogLimit.js"
export * as Metrics from "./Metrics.js"
export * as MetricsExport from "./MetricsExport.js"
export * as Options from "./Options.js"
export * as Parser from "./Parser.js"
export * as Serve from "./Serve.js"
