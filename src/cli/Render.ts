/**
 * How the command line shows flows to a person: one row per flow, the reply side only when it differs (NAT).
 */
import type { Flow, Tuple } from "../Flow.js"
import type { WalkedFlow } from "../FlowTable.js"

const endpoint = (address: string, port: number | undefined) =>
  port === undefined ? address : address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`

/** `src:sport -> dst:dport` (ICMP adds its type and id, GRE its keys). */
export const side = (t: Tuple): string => {
  let s = `${endpoint(t.src, t.sport)} -> ${endpoint(t.dst, t.dport)}`
  if (t.type !== undefined) s += ` type=${t.type} id=${t.id ?? "-"}`
  if (t.srckey !== undefined) s += ` keys=0x${t.srckey.toString(16)}/0x${(t.dstkey ?? 0).toString(16)}`
  return s
}

/** Whether the reply tuple is not the mirror of the original: the flow is NAT'ed. */
export const isTranslated = (flow: Flow): boolean => {
  const o = flow.original
  const r = flow.reply
  return r.src !== o.dst || r.dst !== o.src || r.sport !== o.dport || r.dport !== o.sport
}

const columns = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths: Array<number> = []
  for (const row of rows) {
    row.forEach((cell, k) => {
      widths[k] = Math.max(widths[k] ?? 0, cell.length)
    })
  }
  return rows
    .map((row) =>
      row
        .map((cell, k) => (k === row.length - 1 ? cell : cell.padEnd(widths[k] ?? 0)))
        .join("  ")
        .trimEnd()
    )
    .join("\n")
}

/** A table of flows; with `status`, a last column saying active or closed. */
export const flowTable = (rows: ReadonlyArray<Pick<WalkedFlow, "active" | "flow">>, status: boolean): string => {
  const header = ["PROTO", "STATE", "ORIGINAL", "REPLY (NAT)", ...(status ? ["STATUS"] : [])]
  return columns([
    header,
    ...rows.map(({ flow, active }) => [
      flow.proto === "unknown" ? `unknown/${flow.protonum}` : flow.proto,
      flow.state ?? "-",
      side(flow.original),
      isTranslated(flow) ? side(flow.reply) : "",
      ...(status ? [active ? "active" : "closed"] : [])
    ])
  ])
}

/** One walk for a person: a summary line, then the table (nothing more when the walk is empty). */
export const walkText = (walk: number, walked: ReadonlyArray<WalkedFlow>): string => {
  const active = walked.filter((w) => w.active).length
  const summary = `walk ${walk}: ${active} active, ${walked.length - active} closed since the last walk`
  return walked.length === 0 ? summary : `${summary}\n${flowTable(walked, true)}`
}

/** One walk as JSON lines: `{"walk":N,"active":true,"flow":{...}}` per flow. */
export const walkJson = (walk: number, walked: ReadonlyArray<WalkedFlow>): string =>
  walked.map((w) => JSON.stringify({ walk, active: w.active, flow: w.flow })).join("\n")

/** Adds `flow` to counts by state (flows with no state count under "-"). */
export const countState = (counts: Map<string, number>, flow: Flow): Map<string, number> =>
  counts.set(flow.state ?? "-", (counts.get(flow.state ?? "-") ?? 0) + 1)

/** Counts by state, the largest first. */
export const sortedCounts = (counts: ReadonlyMap<string, number>): ReadonlyArray<readonly [string, number]> =>
  [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))

/** What `dump --count` prints: the total and the counts by state, as lines or as one JSON object. */
export const countReport = (counts: ReadonlyMap<string, number>, json: boolean): string => {
  const total = [...counts.values()].reduce((a, b) => a + b, 0)
  const byState = sortedCounts(counts)
  return json
    ? JSON.stringify({ total, byState: Object.fromEntries(byState) })
    : [`${total} flows`, ...byState.map(([state, n]) => `${state} ${n}`)].join("\n")
}
