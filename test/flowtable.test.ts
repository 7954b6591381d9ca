import { describe, expect, it } from "@effect/vitest"
import * as fc from "effect/FastCheck"
import type { EventType, Flow } from "../src/Flow.js"
import * as FlowTable from "../src/FlowTable.js"
import { tcpFlow } from "../src/testing.js"

const flow = (id: number, state: string, type?: EventType, sport = 40000 + id) =>
  tcpFlow({ id, sport, dport: 80, state, ...(type !== undefined ? { type } : {}) })

const events = { fromDump: false }
const dump = { fromDump: true }

const fold = (table: FlowTable.FlowTable, flows: ReadonlyArray<Flow>, options = events) =>
  FlowTable.applyAll(table, flows, options)[0]

const walked = (table: FlowTable.FlowTable) => {
  const [w, next] = FlowTable.walk(table)
  return { report: w.map((x) => `${x.flow.id}:${x.active ? "active" : "dead"}`).sort(), next }
}

describe("FlowTable.applyAll: transitions", () => {
  const cases: ReadonlyArray<{
    name: string
    flows: ReadonlyArray<Flow>
    options?: { fromDump: boolean }
    report: ReadonlyArray<string>
  }> = [
    {
      name: "a dumped ESTABLISHED flow becomes active",
      flows: [flow(1, "ESTABLISHED")],
      options: dump,
      report: ["1:active"]
    },
    { name: "an UPDATE not in TIME_WAIT becomes active", flows: [flow(1, "SYN_RECV", "UPDATE")], report: ["1:active"] },
    { name: "a NEW flow is ignored by default", flows: [flow(1, "SYN_SENT", "NEW")], report: [] },
    {
      name: "an UPDATE in TIME_WAIT moves the active flow to the dead list",
      flows: [flow(1, "ESTABLISHED", "UPDATE"), flow(1, "TIME_WAIT", "UPDATE")],
      report: ["1:dead"]
    },
    {
      name: "an UPDATE in CLOSE moves the active flow to the dead list",
      flows: [flow(1, "ESTABLISHED", "UPDATE"), flow(1, "CLOSE", "UPDATE")],
      report: ["1:dead"]
    },
    {
      name: "a DESTROY moves the active flow to the dead list",
      flows: [flow(1, "ESTABLISHED", "UPDATE"), flow(1, "CLOSE", "DESTROY")],
      report: ["1:dead"]
    },
    {
      name: "a DESTROY of a flow never active is not reported",
      flows: [flow(1, "SYN_SENT", "NEW"), flow(1, "CLOSE", "DESTROY")],
      report: []
    },
    {
      name: "an UPDATE in TIME_WAIT of a flow never seen open is reported dead once",
      flows: [flow(1, "TIME_WAIT", "UPDATE"), flow(1, "TIME_WAIT", "UPDATE"), flow(1, "TIME_WAIT", "DESTROY")],
      report: ["1:dead"]
    },
    {
      // Ids are 32-bit hashes since Linux 5.1: two live connections can share one.
      name: "two connections sharing an id are both tracked",
      flows: [flow(1, "ESTABLISHED", "UPDATE", 1000), flow(1, "ESTABLISHED", "UPDATE", 2000)],
      report: ["1:active", "1:active"]
    },
    {
      name: "a DESTROY for one of two connections sharing an id leaves the other active",
      flows: [
        flow(1, "ESTABLISHED", "UPDATE", 1000),
        flow(1, "ESTABLISHED", "UPDATE", 2000),
        flow(1, "CLOSE", "DESTROY", 1000)
      ],
      report: ["1:active", "1:dead"]
    },
    {
      name: "the second of two connections sharing an id dies on its own DESTROY",
      flows: [
        flow(1, "ESTABLISHED", "UPDATE", 1000),
        flow(1, "ESTABLISHED", "UPDATE", 2000),
        flow(1, "CLOSE", "DESTROY", 2000),
        flow(1, "ESTABLISHED", "UPDATE", 1000)
      ],
      report: ["1:active", "1:dead"]
    },
    {
      name: "three connections sharing an id: each is found after the one holding the id died",
      flows: [
        flow(1, "ESTABLISHED", "UPDATE", 1000),
        flow(1, "ESTABLISHED", "UPDATE", 2000),
        flow(1, "ESTABLISHED", "UPDATE", 3000),
        flow(1, "CLOSE", "DESTROY", 1000),
        flow(1, "CLOSE", "DESTROY", 3000),
        flow(1, "TIME_WAIT", "UPDATE", 2000),
        flow(1, "CLOSE", "DESTROY", 2000)
      ],
      report: ["1:dead", "1:dead", "1:dead"]
    },
    {
      name: "a dumped TIME_WAIT flow never reported is reported dead once",
      flows: [flow(1, "TIME_WAIT")],
      options: dump,
      report: ["1:dead"]
    },
    {
      name: "a flow without an id is not kept",
      flows: [{ ...flow(1, "ESTABLISHED", "UPDATE"), id: undefined } as unknown as Flow],
      report: []
    }
  ]
  for (const c of cases) {
    it(c.name, () => {
      const table = fold(FlowTable.empty(), c.flows, c.options ?? events)
      expect(walked(table).report).toStrictEqual([...c.report].sort())
    })
  }

  it("reports NEW flows when includeNew is on", () => {
    const table = fold(FlowTable.empty({ includeNew: true }), [flow(1, "SYN_SENT", "NEW")])
    expect(walked(table).report).toStrictEqual(["1:active"])
  })

  it("counts flows without an id", () => {
    const table = fold(FlowTable.empty(), [{ ...flow(1, "ESTABLISHED", "UPDATE"), id: undefined } as unknown as Flow])
    expect(table.unkeyed).toBe(1)
  })

  it("keeps the last active copy of a dying flow, and says what changed", () => {
    const established = flow(1, "ESTABLISHED", "UPDATE")
    const [table, changes] = FlowTable.applyAll(FlowTable.empty(), [established, flow(1, "CLOSE", "DESTROY")], events)
    expect(changes).toStrictEqual([
      { _tag: "Upserted", flow: established },
      { _tag: "Died", flow: established }
    ])
    expect(FlowTable.walk(table)[0]).toStrictEqual([{ active: false, flow: established }])
  })
})

describe("FlowTable.walk", () => {
  it("reports a dead flow once, then forgets it", () => {
    const table = fold(FlowTable.empty(), [flow(1, "ESTABLISHED", "UPDATE"), flow(1, "CLOSE", "DESTROY")])
    const first = walked(table)
    expect(first.report).toStrictEqual(["1:dead"])
    expect(walked(first.next).report).toStrictEqual([])
  })

  it("reports a connection that died and came back as active only", () => {
    const table = fold(FlowTable.empty(), [
      flow(1, "ESTABLISHED", "UPDATE"),
      flow(1, "TIME_WAIT", "UPDATE"),
      flow(1, "SYN_RECV", "UPDATE")
    ])
    expect(walked(table).report).toStrictEqual(["1:active"])
  })

  it("reports a connection that died twice (its entry reused) once, as dead", () => {
    const table = fold(FlowTable.empty(), [
      flow(1, "ESTABLISHED", "UPDATE"),
      flow(1, "TIME_WAIT", "UPDATE"),
      flow(1, "SYN_RECV", "UPDATE"),
      flow(1, "CLOSE", "DESTROY")
    ])
    expect(table.dead.length).toBe(2)
    expect(walked(table).report).toStrictEqual(["1:dead"])
  })

  it("keeps the dead list within its bound, dropping the oldest and counting them", () => {
    const flows = Array.from({ length: 10 }, (_, k) => [
      flow(k, "ESTABLISHED", "UPDATE"),
      flow(k, "CLOSE", "DESTROY")
    ]).flat()
    const table = fold(FlowTable.empty({ maxDead: 4 }), flows)
    expect(table.dropped).toBe(6)
    expect(walked(table).report).toStrictEqual(["6:dead", "7:dead", "8:dead", "9:dead"])
  })
})

describe("FlowTable.resync", () => {
  it("keeps flows still in the dump active, once, never both dead and alive", () => {
    const table = fold(FlowTable.empty(), [flow(1, "ESTABLISHED", "UPDATE"), flow(2, "ESTABLISHED", "UPDATE")])
    const [synced] = FlowTable.resync(table, [flow(1, "ESTABLISHED"), flow(3, "ESTABLISHED")])
    expect(walked(synced).report).toStrictEqual(["1:active", "2:dead", "3:active"])
  })

  it("ends a connection whose id was reused by another while its DESTROY was lost", () => {
    const table = fold(FlowTable.empty(), [
      flow(1, "ESTABLISHED", "UPDATE", 1000),
      flow(1, "ESTABLISHED", "UPDATE", 2000)
    ])
    const [synced] = FlowTable.resync(table, [flow(1, "ESTABLISHED", undefined, 2000)])
    const [w] = FlowTable.walk(synced)
    expect(w.map((x) => `${x.flow.original.sport}:${x.active}`).sort()).toStrictEqual(["1000:false", "2000:true"])
  })

  it("reports a dumped TIME_WAIT flow dead once, and not again at the next resync", () => {
    const [first] = FlowTable.resync(FlowTable.empty(), [flow(1, "TIME_WAIT")])
    const once = walked(first)
    expect(once.report).toStrictEqual(["1:dead"])
    const [second] = FlowTable.resync(once.next, [flow(1, "TIME_WAIT")])
    expect(walked(second).report).toStrictEqual([])
  })

  it("does not report again a flow the events already reported dead", () => {
    const table = fold(FlowTable.empty(), [flow(1, "ESTABLISHED", "UPDATE"), flow(1, "TIME_WAIT", "UPDATE")])
    const { next } = walked(table)
    const [synced] = FlowTable.resync(next, [flow(1, "TIME_WAIT")])
    expect(walked(synced).report).toStrictEqual([])
  })

  it("forgets reported ids once a dump no longer shows them", () => {
    const [first] = FlowTable.resync(FlowTable.empty(), [flow(1, "TIME_WAIT")])
    const [second] = FlowTable.resync(walked(first).next, [])
    expect([...second.reported].length).toBe(0)
  })

  it("folds a dump added in parts the same as in one go, and changes nothing until done", () => {
    const table = fold(FlowTable.empty(), [flow(1, "ESTABLISHED", "UPDATE"), flow(2, "ESTABLISHED", "UPDATE")])
    const r = FlowTable.beginResync(table)
    r.add([flow(1, "ESTABLISHED")])
    r.add([flow(3, "ESTABLISHED"), flow(4, "TIME_WAIT")])
    expect(walked(table).report).toStrictEqual(["1:active", "2:active"])
    const [synced, changes] = r.done(table)
    expect(walked(synced).report).toStrictEqual(["1:active", "2:dead", "3:active", "4:dead"])
    expect(changes.map((c) => `${c._tag}:${c.flow.id}`).sort()).toStrictEqual([
      "Died:2",
      "Died:4",
      "Upserted:1",
      "Upserted:3"
    ])
  })

  it("does not report again what a walk during the dump reported", () => {
    const table = fold(FlowTable.empty(), [flow(1, "ESTABLISHED", "UPDATE"), flow(1, "CLOSE", "UPDATE")])
    const r = FlowTable.beginResync(table)
    r.add([flow(2, "ESTABLISHED")])
    const during = walked(table)
    expect(during.report).toStrictEqual(["1:dead"])
    const [synced] = r.done(during.next)
    expect(walked(synced).report).toStrictEqual(["2:active"])
  })

  it("keeps the remembered ids within their bound, forgetting the oldest", () => {
    const dumped = Array.from({ length: 20 }, (_, k) => flow(k, "TIME_WAIT"))
    const [table] = FlowTable.resync(FlowTable.empty({ maxReported: 16 }), dumped)
    // Past the bound it forgets down to 7/8 of it at once.
    const kept = [...table.reported].map(([key]) => Number(key.split(" ")[0])).sort((a, b) => a - b)
    expect(kept).toStrictEqual(Array.from({ length: 14 }, (_, k) => k + 6))
  })
})

describe("FlowTable properties", () => {
  // A kernel model: connections live ESTABLISHED, maybe TIME_WAIT, then are destroyed. The tracker sees their
  // events (some lost, as in an overflow), dumps of what the kernel holds, and walks in between.
  const lives = 6
  const op = fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({
        kind: fc.constant("advance" as const),
        life: fc.nat(lives - 1),
        lost: fc.boolean(),
        skipTimeWait: fc.boolean()
      })
    },
    { weight: 2, arbitrary: fc.constant({ kind: "walk" as const }) },
    { weight: 1, arbitrary: fc.constant({ kind: "resync" as const }) }
  )

  it("every connection the tracker saw is reported dead exactly once; no walk repeats a connection (ids shared)", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        const phase = Array.from({ length: lives }, () => 0) // 0 not started, 1 established, 2 time-wait, 3 gone
        const seen = Array.from({ length: lives }, () => false)
        const deaths = Array.from({ length: lives }, () => 0)
        // Lives k and k + 3 share an id, as colliding 32-bit ids do; their tuples differ.
        const kernelFlow = (k: number, type?: EventType) =>
          flow((k % 3) + 1, phase[k] === 1 ? "ESTABLISHED" : phase[k] === 2 ? "TIME_WAIT" : "CLOSE", type, 40000 + k)
        const life = (f: Flow) => (f.original.sport as number) - 40000
        let table = FlowTable.empty()
        const walk = () => {
          const [w, next] = FlowTable.walk(table)
          table = next
          const lived = w.map((x) => life(x.flow))
          expect(new Set(lived).size).toBe(lived.length)
          for (const x of w) if (!x.active) deaths[life(x.flow)] = (deaths[life(x.flow)] ?? 0) + 1
        }
        const resync = () => {
          const dumped = phase.flatMap((p, k) => (p === 1 || p === 2 ? [kernelFlow(k)] : []))
          for (const f of dumped) seen[life(f)] = true
          table = FlowTable.resync(table, dumped)[0]
        }
        const advance = (k: number, lost: boolean, skipTimeWait: boolean) => {
          if (phase[k] === 3) return
          phase[k] = phase[k] === 1 && skipTimeWait ? 3 : (phase[k] as number) + 1
          const type = phase[k] === 3 ? "DESTROY" : "UPDATE"
          if (lost) return
          if (type === "UPDATE") seen[k] = true
          table = fold(table, [kernelFlow(k, type)])
        }
        for (const o of ops) {
          if (o.kind === "advance") advance(o.life, o.lost, o.skipTimeWait)
          else if (o.kind === "walk") walk()
          else resync()
        }
        // Every connection ends; a last resync and walk settle the table.
        for (let k = 0; k < lives; k++) while (phase[k] !== 3) advance(k, true, false)
        resync()
        walk()
        for (let k = 0; k < lives; k++) {
          expect(deaths[k]).toBeLessThanOrEqual(1)
          if (seen[k]) expect(deaths[k]).toBe(1)
        }
        expect(FlowTable.size(table)).toBe(0)
      }),
      { numRuns: 3000 }
    )
  })

  it("the dead list never exceeds its bound, and every drop is counted", () => {
    fc.assert(
      fc.property(fc.array(fc.nat(50), { maxLength: 200 }), fc.integer({ min: 1, max: 8 }), (ids, maxDead) => {
        let table = FlowTable.empty({ maxDead })
        let died = 0
        for (const id of ids) {
          const [next, changes] = FlowTable.applyAll(
            table,
            [flow(id, "ESTABLISHED", "UPDATE"), flow(id, "CLOSE", "DESTROY")],
            events
          )
          died += changes.filter((c) => c._tag === "Died").length
          table = next
          expect(table.dead.length).toBeLessThanOrEqual(maxDead)
        }
        expect(table.dead.length + table.dropped).toBe(died)
      }),
      { numRuns: 1000 }
    )
  })
})
