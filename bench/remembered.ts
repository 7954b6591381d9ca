// Memory the table keeps per connection remembered as reported dead (a TIME_WAIT entry the kernel still holds), and
// the fold's own cost per event without parsing: both in-process, on flows parsed from conntrack's own text.
import * as Either from "effect/Either"
import type { Flow } from "../src/Flow.js"
import * as FlowTable from "../src/FlowTable.js"
import { formatDumpLine, formatEventLine } from "../src/Format.js"
import { parseDumpLine, parseEventLine } from "../src/Parser.js"
import { tcpFlow } from "../src/testing.js"
import { fmt, gc, median, type Row, seconds } from "./stats.js"

const ENTRIES = 262_144

const address = (k: number) => `127.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`

const parsed = (line: string, parse: (l: string) => Either.Either<Flow, unknown>): Flow => {
  const r = parse(line)
  if (Either.isLeft(r)) throw new Error(`unparsable: ${line}`)
  return r.right
}

export const rememberedBenchmark = async (runs: number): Promise<ReadonlyArray<Row>> => {
  // The dead flows as the walker gets them: parsed from dump lines.
  const lines = Array.from({ length: ENTRIES }, (_, i) =>
    formatDumpLine(
      tcpFlow({
        id: i + 1,
        src: address(i + 1),
        dst: "127.200.0.1",
        sport: 1024 + (i % 60000),
        dport: 80,
        state: "TIME_WAIT"
      })
    )
  )
  gc()
  const before = process.memoryUsage().heapUsed
  let table = FlowTable.addReader(FlowTable.empty())[1]
  table = FlowTable.resync(
    table,
    lines.map((l) => parsed(l, parseDumpLine))
  ).table
  // The reader walks: the deaths leave the log, and only what the table remembers stays.
  table = FlowTable.walk(table, 0).table
  gc()
  const bytes = (process.memoryUsage().heapUsed - before) / ENTRIES
  const remembered = FlowTable.stats(table).remembered
  console.log(
    `remembered: ${fmt(bytes)} heap bytes per connection remembered as reported dead, at ${fmt(remembered)} of them`
  )

  // The fold alone: 1,000,000 parsed events (a connection's life: UPDATE ESTABLISHED, TIME_WAIT, DESTROY) over a
  // table of 262,144 active flows, in batches of 256 as the walker folds them.
  const events: Array<Flow> = []
  for (let i = 0; events.length < 1_000_000; i++) {
    const base = { id: 1_000_000 + i, src: address(i + 1), dst: "127.201.0.1", sport: 1024 + (i % 60000), dport: 80 }
    for (const [state, type] of [
      ["ESTABLISHED", "UPDATE"],
      ["TIME_WAIT", "UPDATE"],
      ["TIME_WAIT", "DESTROY"]
    ] as const) {
      events.push(parsed(formatEventLine(tcpFlow({ ...base, state, type })), parseEventLine))
    }
  }
  const dumped = lines.map((l) => parsed(l.replace("TIME_WAIT", "ESTABLISHED"), parseDumpLine))
  const rates: Array<number> = []
  for (let r = 0; r < runs; r++) {
    // A fresh table for each run, as the walker has: it keeps no older version of its table (one kept would keep
    // every change made since, see FlowIndex).
    let t = FlowTable.resync(FlowTable.addReader(FlowTable.empty())[1], dumped).table
    gc()
    const start = process.hrtime.bigint()
    for (let k = 0; k < events.length; k += 256) {
      t = FlowTable.applyAll(t, events.slice(k, k + 256), { changes: false }).table
      if ((k & 0xffff) === 0) t = FlowTable.walk(t, 0).table
    }
    rates.push(events.length / seconds(start))
  }
  const rate = median(rates)
  console.log(`fold: ${fmt(rate)} events/s (${fmt(1e6 / rate, 2)} µs an event), parsing excluded`)
  return [
    {
      benchmark: "Memory per connection remembered as reported dead (262,144 TIME_WAIT)",
      figure: `${fmt(bytes)} B`,
      baseline: "",
      target: "<= 400 B (less than a flow held active)",
      met: bytes <= 400
    },
    {
      benchmark: "Fold alone, 1,000,000 events over 262,144 active flows",
      figure: `${fmt(rate)} events/s (${fmt(1e6 / rate, 2)} µs/event)`,
      baseline: "",
      target: "",
      met: true
    }
  ]
}
