import { describe, expect, it } from "@effect/vitest"
import type { Flow } from "../src/Flow.js"
import * as FlowTable from "../src/FlowTable.js"
import { tcpFlow } from "../src/testing.js"
import { heap } from "./support/heap.js"

const N = 100_000
const address = (k: number) => `127.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`
const flows = (state: string, type?: Flow["type"]) =>
  Array.from({ length: N }, (_, i) =>
    tcpFlow({
      id: i + 1,
      src: address(i),
      dst: "127.200.0.1",
      sport: 1024 + (i % 60000),
      dport: 80,
      state,
      ...(type !== undefined ? { type } : {})
    })
  )

// Times as a walker gives them: milliseconds since the epoch, past 2^31 (kept in heap numbers).
const t0 = 1_795_000_000_000

describe("FlowTable memory", () => {
  it("the connections a fold makes share its time: less than 100 bytes each besides the flow", () => {
    const dumped = flows("ESTABLISHED")
    const updated = flows("FIN_WAIT", "UPDATE")
    // A connection object (56 bytes) and a map entry (about 36, with the map's room to grow), without a heap number of
    // its own for each time (32 bytes more).
    let before = heap()
    const r = FlowTable.beginResync(FlowTable.empty(), { now: t0, changes: false })
    for (let k = 0; k < N; k += 256) r.addDump(dumped.slice(k, k + 256), t0 + k)
    const fromDump = (r.done(FlowTable.empty(), t0 + N) as FlowTable.Folded).table
    const dumpBytes = (heap() - before) / N
    // The same from events (the fold's path), in batches as the walker folds them.
    before = heap()
    let fromEvents = FlowTable.empty()
    for (let k = 0; k < N; k += 256) {
      fromEvents = FlowTable.applyAll(fromEvents, updated.slice(k, k + 256), { now: t0 + k, changes: false }).table
    }
    const eventBytes = (heap() - before) / N
    for (const [table, flows] of [
      [fromDump, dumped],
      [fromEvents, updated]
    ] as const) {
      const walked = FlowTable.active(table)
      expect(walked.length).toBe(N)
      expect(walked.every((w, k) => w.flow === flows[k] && w.firstSeen >= t0 && w.lastSeen >= w.firstSeen)).toBe(true)
    }
    expect(dumpBytes).toBeLessThan(100)
    expect(eventBytes).toBeLessThan(100)
  })
})
