import { describe, expect, it } from "@effect/vitest"
import * as fc from "effect/FastCheck"
import type { EventType, Flow } from "../src/Flow.js"
import * as FlowTable from "../src/FlowTable.js"
import { tcpFlow } from "../src/testing.js"

const flow = (id: number, state: string, type?: EventType, sport = 40000 + id) =>
  tcpFlow({ id, sport, dport: 80, state, ...(type !== undefined ? { type } : {}) })

/** An empty table with one reader (number 0). */
const start = (options: Parameters<typeof FlowTable.empty>[0] = {}) => FlowTable.addReader(FlowTable.empty(options))[1]

const fold = (table: FlowTable.FlowTable, flows: ReadonlyArray<Flow>) => FlowTable.applyAll(table, flows).table
const resync = (table: FlowTable.FlowTable, flows: ReadonlyArray<Flow>) => FlowTable.resync(table, flows).table

const walked = (table: FlowTable.FlowTable, reader = 0) => {
  const w = FlowTable.walk(table, reader)
  return {
    report: w.walked.map((x) => `${x.flow.id}:${x.active ? "active" : "dead"}`).sort(),
    next: w.table,
    dropped: w.dropped
  }
}

describe("FlowTable: conntrack ids across the 32 bits", () => {
  it("keeps apart ids of 2^31 and more, and the ids they share low bits with", () => {
    const ids = [5, 2 ** 31 + 5, 2 ** 32 - 1, 2 ** 31 - 1, 2 ** 32 + 5]
    let table = fold(
      start(),
      ids.map((id) => flow(id, "ESTABLISHED", "UPDATE", 40000))
    )
    expect(walked(table).report).toStrictEqual(ids.map((id) => `${id}:active`).sort())
    table = fold(table, [flow(2 ** 31 + 5, "CLOSE", "DESTROY", 40000)])
    expect(walked(table).report).toStrictEqual(
      [5, 2 ** 32 - 1, 2 ** 31 - 1, 2 ** 32 + 5, 2 ** 31 + 5]
        .map((id) => `${id}:${id === 2 ** 31 + 5 ? "dead" : "active"}`)
        .sort()
    )
  })
})

describe("FlowTable.applyAll: transitions", () => {
  const cases: ReadonlyArray<{
    name: string
    flows: ReadonlyArray<Flow>
    dump?: boolean
    report: ReadonlyArray<string>
  }> = [
    {
      name: "a dumped ESTABLISHED flow becomes active",
      flows: [flow(1, "ESTABLISHED")],
      dump: true,
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
      dump: true,
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
      const table = c.dump === true ? resync(start(), c.flows) : fold(start(), c.flows)
      expect(walked(table).report).toStrictEqual([...c.report].sort())
    })
  }

  it("reports NEW flows when includeNew is on", () => {
    const table = fold(start({ includeNew: true }), [flow(1, "SYN_SENT", "NEW")])
    expect(walked(table).report).toStrictEqual(["1:active"])
  })

  it("counts flows without an id", () => {
    const table = fold(start(), [{ ...flow(1, "ESTABLISHED", "UPDATE"), id: undefined } as unknown as Flow])
    expect(FlowTable.stats(table).unkeyed).toBe(1)
  })

  it("reports a dying flow as it ended: its last active copy with the final state and counters, and says what changed", () => {
    const established = flow(1, "ESTABLISHED", "UPDATE")
    const destroyed = {
      ...flow(1, "CLOSE", "DESTROY"),
      original: { ...established.original, packets: 6, bytes: 325 },
      reply: { ...established.reply, packets: 4, bytes: 217 }
    }
    const ended = { ...established, state: "CLOSE", original: destroyed.original, reply: destroyed.reply }
    const { table, changes } = FlowTable.applyAll(start(), [established, destroyed], { now: 5 })
    expect(changes).toStrictEqual([
      FlowTable.Change.Upserted({ flow: established }),
      FlowTable.Change.Died({ flow: ended })
    ])
    expect(FlowTable.walk(table, 0).walked).toStrictEqual([{ active: false, flow: ended, firstSeen: 5, lastSeen: 5 }])
  })

  it("says when it first and last saw a connection", () => {
    let table = FlowTable.applyAll(start(), [flow(1, "SYN_RECV", "UPDATE")], { now: 1000 }).table
    table = FlowTable.applyAll(table, [flow(1, "ESTABLISHED", "UPDATE")], { now: 2000 }).table
    expect(FlowTable.walk(table, 0).walked).toStrictEqual([
      { active: true, flow: flow(1, "ESTABLISHED", "UPDATE"), firstSeen: 1000, lastSeen: 2000 }
    ])
    table = FlowTable.applyAll(table, [flow(1, "TIME_WAIT", "UPDATE")], { now: 3000 }).table
    expect(FlowTable.walk(table, 0).walked).toStrictEqual([
      { active: false, flow: flow(1, "TIME_WAIT", "UPDATE"), firstSeen: 1000, lastSeen: 3000 }
    ])
  })

  it("counts connections opened and closed, by family and protocol", () => {
    const { opened, closed } = FlowTable.applyAll(start(), [
      flow(1, "ESTABLISHED", "UPDATE"),
      flow(1, "FIN_WAIT", "UPDATE"),
      flow(2, "ESTABLISHED", "UPDATE"),
      flow(2, "CLOSE", "DESTROY")
    ])
    expect([...opened]).toStrictEqual([["ipv4 tcp", 2]])
    expect([...closed]).toStrictEqual([["ipv4 tcp", 1]])
  })
})

describe("FlowTable: one life, observations in any order", () => {
  it("a stale UPDATE of a connection reported dead does not make it active again", () => {
    const table = fold(start(), [
      flow(1, "ESTABLISHED", "UPDATE"),
      flow(1, "TIME_WAIT", "UPDATE"),
      flow(1, "SYN_RECV", "UPDATE")
    ])
    expect(walked(table).report).toStrictEqual(["1:dead"])
  })

  it("a NEW after the DESTROY is a new life: the old one is reported dead, the new one active", () => {
    const table = fold(start(), [
      flow(1, "ESTABLISHED", "UPDATE"),
      flow(1, "TIME_WAIT", "UPDATE"),
      flow(1, "TIME_WAIT", "DESTROY"),
      flow(1, "SYN_SENT", "NEW"),
      flow(1, "SYN_RECV", "UPDATE")
    ])
    expect(walked(table).report).toStrictEqual(["1:active", "1:dead"])
  })

  it("a connection whose entry was reused dies once per life", () => {
    const table = fold(start(), [
      flow(1, "ESTABLISHED", "UPDATE"),
      flow(1, "TIME_WAIT", "UPDATE"),
      flow(1, "TIME_WAIT", "DESTROY"),
      flow(1, "SYN_SENT", "NEW"),
      flow(1, "SYN_RECV", "UPDATE"),
      flow(1, "CLOSE", "DESTROY")
    ])
    expect(walked(table).report).toStrictEqual(["1:dead", "1:dead"])
  })

  it("activeFlows holds the active connections' flows only: not a NEW seen alone, also where two lives share an id", () => {
    const established = [flow(2, "ESTABLISHED", "UPDATE"), flow(3, "ESTABLISHED", "UPDATE", 40003)]
    const table = fold(start(), [
      flow(1, "SYN_SENT", "NEW"),
      established[0] as Flow,
      flow(3, "SYN_SENT", "NEW", 41003),
      established[1] as Flow,
      flow(4, "SYN_SENT", "NEW", 41004),
      flow(4, "ESTABLISHED", "UPDATE", 40004),
      flow(4, "CLOSE", "DESTROY", 40004)
    ])
    const bySport = (flows: ReadonlyArray<Flow>) =>
      [...flows].sort((a, b) => (a.original.sport as number) - (b.original.sport as number))
    expect(bySport(FlowTable.activeFlows(table))).toStrictEqual(established)
    expect(FlowTable.activeFlows(table)).toStrictEqual(FlowTable.active(table).map((w) => w.flow))
  })

  it("an UPDATE older than what the table knows (a lower state) changes nothing", () => {
    const table = fold(start(), [flow(1, "FIN_WAIT", "UPDATE"), flow(1, "ESTABLISHED", "UPDATE")])
    expect(FlowTable.active(table).map((w) => w.flow.state)).toStrictEqual(["FIN_WAIT"])
  })

  it("a dump line older than this resync's events does not undo them (the issue's reproduction)", () => {
    // The events tell a whole life while the dump runs; the dump, read later, shows it in TIME_WAIT; its events'
    // TIME_WAIT comes after tens of thousands of unrelated lines. However these arrive, the connection dies once.
    const life = ["SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK"].map((s) => flow(1, s, "UPDATE"))
    const closing = flow(1, "TIME_WAIT", "UPDATE")
    const dumped = flow(1, "TIME_WAIT")
    const orders: ReadonlyArray<ReadonlyArray<"dump" | Flow>> = [
      ["dump", ...life, closing],
      [...life, "dump", closing],
      [...life, closing, "dump"],
      [life[0] as Flow, "dump", ...life.slice(1), closing]
    ]
    for (const order of orders) {
      const r = FlowTable.beginResync(start())
      for (const o of order) {
        if (o === "dump") r.addDump([dumped])
        else r.addEvents([o])
      }
      const done = r.done(start()) as FlowTable.Folded
      const changes = done.changes.map((c) => c._tag)
      expect(walked(done.table).report).toStrictEqual(["1:dead"])
      expect(changes.filter((c) => c === "Died")).toStrictEqual(["Died"])
      expect(FlowTable.size(done.table)).toBe(0)
    }
  })

  it("a dump line newer than the events of a life born in the resync moves it on (its UPDATE not read yet)", () => {
    for (const includeNew of [true, false]) {
      const r = FlowTable.beginResync(start({ includeNew }))
      r.addEvents([flow(1, "SYN_SENT", "NEW")])
      r.addDump([flow(1, "ESTABLISHED")])
      const done = r.done(start()) as FlowTable.Folded
      const w = FlowTable.walk(done.table, 0).walked
      expect(w.map((x) => `${x.flow.id}:${x.flow.state}:${x.active}`)).toStrictEqual(["1:ESTABLISHED:true"])
      // The UPDATE read afterwards is older news.
      const later = FlowTable.applyAll(done.table, [flow(1, "SYN_RECV", "UPDATE")]).table
      expect(FlowTable.active(later).map((x) => x.flow.state)).toStrictEqual(["ESTABLISHED"])
    }
  })

  it("a dump line that shows a reply to a UDP flow born in the resync makes it active (its UPDATE not read yet)", () => {
    const udp = (type: EventType | undefined, unreplied: boolean) =>
      ({
        ...tcpFlow({ id: 9, sport: 5353, dport: 53, ...(type !== undefined ? { type } : {}) }),
        proto: "udp" as const,
        protonum: 17,
        ...(unreplied ? { unreplied: true as const } : {})
      }) as Flow
    const stripped = (f: Flow) => {
      const { state: _state, ...rest } = f
      return rest as Flow
    }
    const r = FlowTable.beginResync(start())
    r.addEvents([stripped(udp("NEW", true))])
    r.addDump([stripped(udp(undefined, true))])
    expect(FlowTable.size((r.done(start()) as FlowTable.Folded).table)).toBe(0)
    const replied = FlowTable.beginResync(start())
    replied.addEvents([stripped(udp("NEW", true))])
    replied.addDump([stripped(udp(undefined, false))])
    expect(FlowTable.size((replied.done(start()) as FlowTable.Folded).table)).toBe(1)
  })

  it("a stale NEW of a connection a newer dump line showed closed does not begin a new life", () => {
    const r = FlowTable.beginResync(start())
    r.addDump([flow(1, "TIME_WAIT")])
    r.addEvents([flow(1, "SYN_SENT", "NEW"), flow(1, "SYN_RECV", "UPDATE"), flow(1, "ESTABLISHED", "UPDATE")])
    const done = r.done(start()) as FlowTable.Folded
    expect(walked(done.table).report).toStrictEqual(["1:dead"])
  })

  it("a DESTROY that arrives before an older dump line of a connection we did not know: reported dead once", () => {
    const r = FlowTable.beginResync(start())
    r.addEvents([flow(1, "SYN_SENT", "NEW"), flow(1, "CLOSE", "DESTROY")])
    r.addDump([flow(1, "ESTABLISHED")])
    const done = r.done(start()) as FlowTable.Folded
    expect(walked(done.table).report).toStrictEqual(["1:dead"])
    // And a NEW after that is a new life.
    expect(walked(fold(done.table, [flow(1, "SYN_SENT", "NEW"), flow(1, "SYN_RECV", "UPDATE")])).report).toStrictEqual([
      "1:active",
      "1:dead"
    ])
  })

  it("a dump line read before a DESTROY that arrived first does not bring the connection back", () => {
    const table = fold(start(), [flow(1, "ESTABLISHED", "UPDATE")])
    const r = FlowTable.beginResync(table)
    r.addEvents([flow(1, "CLOSE", "DESTROY")])
    r.addDump([flow(1, "ESTABLISHED")])
    const done = r.done(table) as FlowTable.Folded
    expect(walked(done.table).report).toStrictEqual(["1:dead"])
    expect(FlowTable.stats(done.table).remembered).toBe(0)
  })

  it("a dump showing a remembered dead connection open again is a new life (its events were lost)", () => {
    const table = walked(fold(start(), [flow(1, "ESTABLISHED", "UPDATE"), flow(1, "TIME_WAIT", "UPDATE")])).next
    expect(walked(resync(table, [flow(1, "ESTABLISHED")])).report).toStrictEqual(["1:active"])
  })

  it("a dump showing an open connection further back than we knew it ends the old life and starts a new one", () => {
    const table = walked(fold(start(), [flow(1, "FIN_WAIT", "UPDATE")])).next
    expect(walked(resync(table, [flow(1, "SYN_RECV")])).report).toStrictEqual(["1:active", "1:dead"])
  })

  it("a closed connection shown again with another start time is another life", () => {
    const [a, b] = [
      { ...flow(1, "TIME_WAIT"), start: "Wed Nov 25 09:11:29 2026" },
      { ...flow(1, "TIME_WAIT"), start: "Wed Nov 25 09:11:31 2026" }
    ]
    const first = walked(resync(start(), [a]))
    expect(first.report).toStrictEqual(["1:dead"])
    expect(walked(resync(first.next, [a])).report).toStrictEqual([])
    expect(walked(resync(first.next, [b])).report).toStrictEqual(["1:dead"])
  })
})

describe("FlowTable: protocols", () => {
  const of = (proto: "udp" | "icmp" | "sctp" | "dccp" | "gre", state: string | undefined, type: EventType) => {
    const base = flow(1, "ESTABLISHED", type)
    const tuple =
      proto === "icmp"
        ? { src: "127.0.0.1", dst: "127.0.0.1", type: 8, code: 0, id: 7 }
        : proto === "gre"
          ? { src: "127.0.0.1", dst: "127.0.0.1", srckey: 1, dstkey: 2 }
          : { src: "127.0.0.1", dst: "127.0.0.1", sport: 5000, dport: 6000 }
    const { state: _, ...rest } = base
    return { ...rest, proto, protonum: 1, original: tuple, reply: tuple, ...(state ? { state } : {}) } as Flow
  }
  const cases: ReadonlyArray<[string, ReadonlyArray<Flow>, ReadonlyArray<string>]> = [
    [
      "udp: active on UPDATE, dead on DESTROY",
      [of("udp", undefined, "UPDATE"), of("udp", undefined, "DESTROY")],
      ["1:dead"]
    ],
    ["icmp: active on UPDATE", [of("icmp", undefined, "UPDATE")], ["1:active"]],
    ["gre: dead on DESTROY", [of("gre", undefined, "UPDATE"), of("gre", undefined, "DESTROY")], ["1:dead"]],
    ["sctp: CLOSED is closed", [of("sctp", "ESTABLISHED", "UPDATE"), of("sctp", "CLOSED", "UPDATE")], ["1:dead"]],
    ["sctp: SHUTDOWN_SENT is open", [of("sctp", "SHUTDOWN_SENT", "UPDATE")], ["1:active"]],
    ["dccp: TIMEWAIT is closed", [of("dccp", "OPEN", "UPDATE"), of("dccp", "TIMEWAIT", "UPDATE")], ["1:dead"]],
    ["dccp: CLOSED is closed", [of("dccp", "OPEN", "UPDATE"), of("dccp", "CLOSED", "UPDATE")], ["1:dead"]]
  ]
  for (const [name, flows, report] of cases) {
    it(name, () => {
      expect(walked(fold(start(), flows)).report).toStrictEqual(report)
    })
  }
})

describe("FlowTable.walk and readers", () => {
  it("reports a dead flow once, then forgets it", () => {
    const table = fold(start(), [flow(1, "ESTABLISHED", "UPDATE"), flow(1, "CLOSE", "DESTROY")])
    const first = walked(table)
    expect(first.report).toStrictEqual(["1:dead"])
    expect(walked(first.next).report).toStrictEqual([])
    expect(FlowTable.stats(first.next).logged).toBe(0)
  })

  it("each reader sees every death once, whatever the others do", () => {
    const [b, table] = FlowTable.addReader(start())
    const died = fold(table, [flow(1, "ESTABLISHED", "UPDATE"), flow(1, "CLOSE", "DESTROY")])
    const a1 = walked(died, 0)
    expect(a1.report).toStrictEqual(["1:dead"])
    // Reader 0 walked: the death is kept for reader b.
    expect(FlowTable.stats(a1.next).logged).toBe(1)
    const b1 = walked(a1.next, b)
    expect(b1.report).toStrictEqual(["1:dead"])
    expect(FlowTable.stats(b1.next).logged).toBe(0)
    expect(walked(b1.next, b).report).toStrictEqual([])
  })

  it("a reader sees the deaths from when it was made", () => {
    const died = fold(start(), [flow(1, "ESTABLISHED", "UPDATE"), flow(1, "CLOSE", "DESTROY")])
    const [late, table] = FlowTable.addReader(died)
    expect(walked(table, late).report).toStrictEqual([])
    expect(walked(table, 0).report).toStrictEqual(["1:dead"])
  })

  it("a removed reader no longer holds deaths back", () => {
    const [b, table] = FlowTable.addReader(start())
    const died = fold(table, [flow(1, "ESTABLISHED", "UPDATE"), flow(1, "CLOSE", "DESTROY")])
    const walkedByA = walked(died, 0).next
    expect(FlowTable.stats(FlowTable.removeReader(walkedByA, b)).logged).toBe(0)
  })

  it("keeps the log of deaths within its bound, and tells each reader how many it missed", () => {
    const flows = Array.from({ length: 10 }, (_, k) => [
      flow(k, "ESTABLISHED", "UPDATE"),
      flow(k, "CLOSE", "DESTROY")
    ]).flat()
    const table = fold(start({ maxDead: 4 }), flows)
    const w = walked(table)
    expect(w.dropped).toBe(6)
    expect(w.report).toStrictEqual(["6:dead", "7:dead", "8:dead", "9:dead"])
  })
})

describe("FlowTable.resync", () => {
  it("keeps flows still in the dump active, once, never both dead and alive", () => {
    const table = fold(start(), [flow(1, "ESTABLISHED", "UPDATE"), flow(2, "ESTABLISHED", "UPDATE")])
    expect(walked(resync(table, [flow(1, "ESTABLISHED"), flow(3, "ESTABLISHED")])).report).toStrictEqual([
      "1:active",
      "2:dead",
      "3:active"
    ])
  })

  it("ends a connection whose id was reused by another while its DESTROY was lost", () => {
    const table = fold(start(), [flow(1, "ESTABLISHED", "UPDATE", 1000), flow(1, "ESTABLISHED", "UPDATE", 2000)])
    const w = FlowTable.walk(resync(table, [flow(1, "ESTABLISHED", undefined, 2000)]), 0).walked
    expect(w.map((x) => `${x.flow.original.sport}:${x.active}`).sort()).toStrictEqual(["1000:false", "2000:true"])
  })

  it("reports a dumped TIME_WAIT flow dead once, and not again at the next resync", () => {
    const once = walked(resync(start(), [flow(1, "TIME_WAIT")]))
    expect(once.report).toStrictEqual(["1:dead"])
    expect(walked(resync(once.next, [flow(1, "TIME_WAIT")])).report).toStrictEqual([])
  })

  it("does not report again a flow the events already reported dead", () => {
    const { next } = walked(fold(start(), [flow(1, "ESTABLISHED", "UPDATE"), flow(1, "TIME_WAIT", "UPDATE")]))
    expect(walked(resync(next, [flow(1, "TIME_WAIT")])).report).toStrictEqual([])
  })

  it("forgets a dead connection once a dump no longer shows it, or its DESTROY arrives", () => {
    const first = walked(resync(start(), [flow(1, "TIME_WAIT"), flow(2, "TIME_WAIT")])).next
    expect(FlowTable.stats(first).remembered).toBe(2)
    expect(FlowTable.stats(fold(first, [flow(1, "TIME_WAIT", "DESTROY")])).remembered).toBe(1)
    expect(FlowTable.stats(resync(first, [])).remembered).toBe(0)
  })

  it("folds a dump added in parts the same as in one go, and changes nothing until done", () => {
    const table = fold(start(), [flow(1, "ESTABLISHED", "UPDATE"), flow(2, "ESTABLISHED", "UPDATE")])
    const r = FlowTable.beginResync(table)
    r.addDump([flow(1, "ESTABLISHED")])
    r.addDump([flow(3, "ESTABLISHED"), flow(4, "TIME_WAIT")])
    expect(walked(table).report).toStrictEqual(["1:active", "2:active"])
    const { table: synced, changes } = r.done(table) as FlowTable.Folded
    expect(walked(synced).report).toStrictEqual(["1:active", "2:dead", "3:active", "4:dead"])
    // Flow 1's line confirms what the table knew: no change to tell.
    expect(changes.map((c) => `${c._tag}:${c.flow.id}`).sort()).toStrictEqual(["Died:2", "Died:4", "Upserted:3"])
  })

  it("without changes worked out as it folds, gives them as a whole when asked at the end, and none otherwise", () => {
    const table = fold(start(), [flow(1, "ESTABLISHED", "UPDATE"), flow(2, "ESTABLISHED", "UPDATE")])
    const dump = [flow(1, "ESTABLISHED"), flow(3, "ESTABLISHED"), flow(4, "TIME_WAIT")]
    const tags = (f: FlowTable.Folded | undefined) =>
      (f as FlowTable.Folded).changes.map((c) => `${c._tag}:${c.flow.id}`)
    const quiet = FlowTable.beginResync(table, { changes: false })
    quiet.addDump(dump)
    const none = quiet.done(table, 0, false) as FlowTable.Folded
    expect(none.changes).toStrictEqual([])
    expect(walked(none.table).report).toStrictEqual(["1:active", "2:dead", "3:active", "4:dead"])
    // A subscriber joined meanwhile (its snapshot was the table before): the deaths, then what became active or
    // changed state since (1's line only confirms what the table knew).
    const asked = FlowTable.beginResync(table, { changes: false })
    asked.addDump([...dump, flow(5, "FIN_WAIT"), flow(2, "ESTABLISHED", undefined, 50000)])
    const got = tags(asked.done(table, 0, true))
    expect(got.slice(0, 2)).toStrictEqual(["Died:4", "Died:2"])
    expect(got.slice(2).sort()).toStrictEqual(["Upserted:2", "Upserted:3", "Upserted:5"])
    const moved = FlowTable.beginResync(table, { changes: false })
    moved.addDump([flow(1, "FIN_WAIT"), flow(2, "ESTABLISHED")])
    expect(tags(moved.done(table, 0, true))).toStrictEqual(["Upserted:1"])
    // Worked out as it folds, but nobody listens any more: none.
    const dropped = FlowTable.beginResync(table)
    dropped.addDump(dump)
    expect(tags(dropped.done(table, 0, false))).toStrictEqual([])
  })

  it("tells subscribers only what a dump changed: a line that confirms a connection's state is no change", () => {
    const table = fold(start(), [flow(1, "ESTABLISHED", "UPDATE"), flow(2, "ESTABLISHED", "UPDATE")])
    const { changes } = FlowTable.resync(table, [flow(1, "ESTABLISHED"), flow(2, "FIN_WAIT")])
    expect(changes.map((c) => `${c._tag}:${c.flow.id}:${c.flow.state}`)).toStrictEqual(["Upserted:2:FIN_WAIT"])
  })

  it("does not report again what a walk during the dump reported", () => {
    const table = fold(start(), [flow(1, "ESTABLISHED", "UPDATE"), flow(1, "CLOSE", "UPDATE")])
    const r = FlowTable.beginResync(table)
    r.addDump([flow(2, "ESTABLISHED")])
    const during = walked(table)
    expect(during.report).toStrictEqual(["1:dead"])
    expect(walked((r.done(during.next) as FlowTable.Folded).table).report).toStrictEqual(["2:active"])
  })

  it("a resync used after it is done changes nothing", () => {
    const table = start()
    const r = FlowTable.beginResync(table)
    r.addDump([flow(1, "ESTABLISHED")])
    const done = (r.done(table) as FlowTable.Folded).table
    expect(r.addDump([flow(2, "ESTABLISHED")])).toBe(false)
    expect(r.addEvents([flow(3, "ESTABLISHED", "UPDATE")])).toBe(false)
    expect(r.done(table)).toBeUndefined()
    expect(walked(done).report).toStrictEqual(["1:active"])
  })

  it("keeps the remembered connections within their bound, forgetting the oldest", () => {
    const dumped = Array.from({ length: 20 }, (_, k) => flow(k, "TIME_WAIT"))
    const first = walked(resync(start({ maxReported: 16 }), dumped))
    expect(first.report.length).toBe(20)
    // Past the bound it forgets down to 7/8 of it at once: the 6 oldest are reported again by the next dump.
    expect(FlowTable.stats(first.next).remembered).toBe(14)
    expect(walked(resync(first.next, dumped)).report).toStrictEqual(
      ["0", "1", "2", "3", "4", "5"].map((k) => `${k}:dead`).sort()
    )
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
        let table = start()
        const walk = () => {
          const { walked: w, table: next } = FlowTable.walk(table, 0)
          table = next
          const lived = w.map((x) => life(x.flow))
          expect(new Set(lived).size).toBe(lived.length)
          for (const x of w) if (!x.active) deaths[life(x.flow)] = (deaths[life(x.flow)] ?? 0) + 1
        }
        const resyncNow = () => {
          const dumped = phase.flatMap((p, k) => (p === 1 || p === 2 ? [kernelFlow(k)] : []))
          for (const f of dumped) seen[life(f)] = true
          table = resync(table, dumped)
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
          else resyncNow()
          // What `flows` and a scrape read: the active connections' flows, the same as a walk's active part.
          expect(FlowTable.activeFlows(table)).toStrictEqual(FlowTable.active(table).map((x) => x.flow))
          expect(FlowTable.activeFlows(table)).toHaveLength(FlowTable.size(table))
        }
        // Every connection ends; a last resync and walk settle the table.
        for (let k = 0; k < lives; k++) while (phase[k] !== 3) advance(k, true, false)
        resyncNow()
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

  it("a fold that consumes the table it is given makes the same tables as one that does not", () => {
    const event = fc.record({
      id: fc.integer({ min: 1, max: 8 }),
      // Two connections may share an id, as colliding 32-bit ids do (their tuples differ).
      sport: fc.integer({ min: 40000, max: 40001 }),
      state: fc.constantFrom("SYN_SENT", "ESTABLISHED", "TIME_WAIT", "CLOSE"),
      type: fc.constantFrom("NEW" as const, "UPDATE" as const, "DESTROY" as const)
    })
    const step = fc.oneof(
      {
        weight: 6,
        arbitrary: fc.record({ kind: fc.constant("fold" as const), flows: fc.array(event, { maxLength: 6 }) })
      },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant("walk" as const), flows: fc.constant([]) }) },
      {
        weight: 1,
        arbitrary: fc.record({ kind: fc.constant("resync" as const), flows: fc.array(event, { maxLength: 6 }) })
      }
    )
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        // Two tables: a table folded with `consume` must be its caller's only reference.
        let plain = start({ maxDead: 4, maxReported: 4 })
        let consumed = start({ maxDead: 4, maxReported: 4 })
        for (const { kind, flows } of steps) {
          if (kind === "fold") {
            const events = flows.map((e) => flow(e.id, e.state, e.type, e.sport))
            const a = FlowTable.applyAll(plain, events, { now: 1 })
            const b = FlowTable.applyAll(consumed, events, { now: 1, consume: true })
            expect(b.changes).toStrictEqual(a.changes)
            plain = a.table
            consumed = b.table
          } else if (kind === "walk") {
            const a = walked(plain)
            const b = walked(consumed)
            expect(b.report).toStrictEqual(a.report)
            expect(b.dropped).toBe(a.dropped)
            plain = a.next
            consumed = b.next
          } else {
            const dump = flows.map((e) => flow(e.id, e.state, undefined, e.sport))
            plain = resync(plain, dump)
            consumed = resync(consumed, dump)
          }
          expect(FlowTable.stats(consumed)).toStrictEqual(FlowTable.stats(plain))
          expect(FlowTable.activeFlows(consumed)).toStrictEqual(FlowTable.activeFlows(plain))
        }
      }),
      { numRuns: 1000 }
    )
  })

  it("a fold that consumes its table leaves that table unreadable, and the tables before it", () => {
    const zero = start()
    const first = fold(zero, [flow(1, "ESTABLISHED", "UPDATE")])
    const second = FlowTable.applyAll(first, [flow(2, "ESTABLISHED", "UPDATE")], { consume: true }).table
    expect(walked(second).report).toStrictEqual(["1:active", "2:active"])
    expect(() => FlowTable.activeFlows(first)).toThrow("a flow index version was read after its owner edited it")
    expect(() => FlowTable.active(zero)).toThrow("a flow index version was read after its owner edited it")
  })

  it("the log of deaths never exceeds its bound, and a reader is told of every death it missed", () => {
    fc.assert(
      fc.property(fc.array(fc.nat(50), { maxLength: 200 }), fc.integer({ min: 1, max: 8 }), (ids, maxDead) => {
        let table = start({ maxDead })
        let died = 0
        for (const id of ids) {
          const { table: next, changes } = FlowTable.applyAll(table, [
            flow(id, "ESTABLISHED", "UPDATE"),
            flow(id, "CLOSE", "DESTROY")
          ])
          died += changes.filter((c) => c._tag === "Died").length
          table = next
          expect(FlowTable.stats(table).logged).toBeLessThanOrEqual(maxDead)
        }
        const w = FlowTable.walk(table, 0)
        expect(w.walked.length + w.dropped).toBe(died)
      }),
      { numRuns: 1000 }
    )
  })
})

describe("FlowTable: a resync of an empty table", () => {
  // Only what a table held before a resync can be missing from its dump, so a resync of an empty table does not track
  // what its dump showed. That holds only while every connection a resync makes is shown by its dump or touched by its
  // events: a table holding one more connection (which its dump shows) must end the same for all the others.
  it("ends as the same resync of a table that held one more connection, shown by its dump (property)", () => {
    const states = ["SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "TIME_WAIT", "CLOSE"]
    const step = fc.record({
      dump: fc.boolean(),
      id: fc.integer({ min: 1, max: 4 }),
      state: fc.constantFrom(...states),
      type: fc.constantFrom<EventType>("NEW", "UPDATE", "DESTROY")
    })
    const other = flow(999, "ESTABLISHED")
    const others = (report: ReadonlyArray<string>) => report.filter((r) => !r.startsWith("999:"))
    fc.assert(
      fc.property(fc.array(step, { maxLength: 30 }), (steps) => {
        const run = (table: FlowTable.FlowTable) => {
          const r = FlowTable.beginResync(table)
          for (const s of steps) {
            if (s.dump) r.addDump([flow(s.id, s.state)])
            else r.addEvents([flow(s.id, s.state, s.type)])
          }
          r.addDump([other])
          return (r.done(table) as FlowTable.Folded).table
        }
        const fromEmpty = run(start())
        const fromOne = run(fold(start(), [{ ...other, type: "UPDATE" }]))
        expect(others(walked(fromOne).report)).toStrictEqual(others(walked(fromEmpty).report))
        expect(FlowTable.size(fromOne)).toBe(FlowTable.size(fromEmpty))
      }),
      { numRuns: 3000 }
    )
  })
})
