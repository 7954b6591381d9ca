// Events read compact (as the walker reads them) by each fast reader: an event whose tuples repeat, byte for byte,
// those kept for its connection takes them; every flow is still the string parser's (src/internal/reference.ts).
import { describe, expect, it } from "@effect/vitest"
import * as fc from "effect/FastCheck"
import type { Flow } from "../src/Flow.js"
import { formatEventLine } from "../src/Format.js"
import { FALLBACK } from "../src/internal/straight.js"
import {
  type Around,
  agreesWith,
  around,
  arounds,
  commonFlow,
  mutate,
  mutation,
  readers,
  readWith
} from "./support/fastReaders.js"

// The scanner's line copied alone keeps and takes tuples as in its chunk (test/parser-straight.test.ts reads events
// compact that way too): two readers here keep this file's run short.
describe.each(readers.slice(0, 2))("$name, reading events compact", (reader) => {
  it("never hands a connection the tuples of another that had the same id and tuples too long to keep", () => {
    const short = "src=127.0.0.1 dst=127.0.0.2 sport=1024 dport=80 src=127.0.0.2 dst=127.0.0.1 sport=80 dport=1024"
    const a = "2001:db8:1111:2222:3333:4444:5555:6666"
    const b = "2001:db8:7777:8888:9999:aaaa:bbbb:cccc"
    const c = "2001:db8:dddd:eeee:ffff:1111:2222:3333"
    const d = "2001:db8:4444:5555:6666:7777:8888:9999"
    const long = `src=${a} dst=${b} sport=65535 dport=65535 zone-orig=1 packets=123456789 bytes=123456789012 src=${c} dst=${d} sport=65534 dport=65533`
    expect(long.length).toBeGreaterThan(256)
    for (const next of ["UPDATE", "DESTROY"]) {
      reader.reset()
      const lines = [
        `[NEW] tcp 6 120 SYN_SENT ${short} id=7`,
        `[NEW] tcp 6 120 SYN_SENT ${long} id=7`,
        `[${next}] tcp 6 60 SYN_RECV ${short} id=7`
      ]
      for (const line of lines) expect(agreesWith(reader, line, "events")).toBe(true)
      reader.reset()
      const flows = lines.map((line) => readWith(reader, line, "events", true, arounds[0] as Around) as Flow)
      expect(flows[2]?.original).toStrictEqual(flows[0]?.original)
      expect(flows[2]?.reply).toStrictEqual(flows[0]?.reply)
    }
  })

  it("reads a connection's later events as the string parser does, taking its tuples again only where they repeat", () => {
    // A connection's events as conntrack -E prints them (its tuples again in each), one of a few ids, some mutated
    // and some of another connection that got the same id: the reader keeps each id's last tuples.
    const step = fc.record({
      id: fc.constantFrom(7, 4103, 4294967295),
      change: fc.constantFrom("rest", "rest", "rest", "mutated", "other"),
      mutations: fc.array(mutation, { minLength: 1, maxLength: 2 }),
      where: around
    })
    const connections = fc.tuple(
      fc.array(commonFlow(fc.constantFrom("NEW", "UPDATE", "DESTROY")), { minLength: 3, maxLength: 3 }),
      fc.array(fc.tuple(commonFlow(fc.constantFrom("NEW", "UPDATE", "UPDATE", "DESTROY")), step), {
        minLength: 1,
        maxLength: 12
      })
    )
    let taken = 0
    let read = 0
    fc.assert(
      fc.property(connections, ([firsts, steps]) => {
        // Each run from an empty cache (lines read before may have left it keeping one line in 16), so that a
        // counterexample replays alone.
        reader.reset()
        const lives = new Map<number, Flow>()
        const last = new Map<number, Flow>()
        for (const [k, id] of [7, 4103, 4294967295].entries()) lives.set(id, { ...(firsts[k] as Flow), id })
        for (const [drawn, { id, change, mutations, where }] of steps) {
          const life = lives.get(id) as Flow
          const flow: Flow =
            change === "other"
              ? { ...drawn, id }
              : { ...drawn, id, family: life.family, original: life.original, reply: life.reply }
          const printed = formatEventLine(flow, { extended: drawn.timeout !== undefined && drawn.timeout % 2 === 0 })
          const line = change === "mutated" ? mutations.reduce(mutate, printed).replaceAll("\n", " ") : printed
          if (change === "other") lives.set(id, flow)
          if (!agreesWith(reader, line, "events", where)) continue
          const got = readWith(reader, line, "events", true, where) as Flow
          read++
          const before = last.get(got.id ?? -1)
          if (before !== undefined && got.original === before.original) taken++
          if (got.id !== undefined) last.set(got.id, got)
        }
      }),
      { numRuns: 2000 }
    )
    // About one line in seven repeats the tuples its id's last line had (a flag between them or a mutation changes
    // them; a DESTROY ends what is kept): those are the cases that test the taking.
    expect(taken).toBeGreaterThan(read / 10)
  })

  it("after a flood of connections that print one event each, takes the tuples of connections that print more again", () => {
    reader.reset()
    const line = (n: number, type: "NEW" | "UPDATE" | "DESTROY", state: string) =>
      formatEventLine({
        type,
        family: "ipv4",
        proto: "tcp",
        protonum: 6,
        timeout: 120,
        state,
        original: { src: `127.1.${n >> 8}.${n & 255}`, dst: "127.0.0.1", sport: 1024 + (n % 60000), dport: 80 },
        reply: { src: "127.0.0.1", dst: `127.1.${n >> 8}.${n & 255}`, sport: 80, dport: 1024 + (n % 60000) },
        id: (2654435761 * (n + 1)) >>> 0
      })
    // Each line is checked against the string parser first (as read compact, mostly while one line in 16 is kept).
    const read = (text: string) => {
      expect(agreesWith(reader, text, "events")).toBe(true)
      return readWith(reader, text, "events", true, { before: "", after: "\n" }) as Flow
    }
    // 5,000 connections seen once: nothing is taken again, and keeping them stops paying.
    for (let n = 0; n < 5000; n++) expect(read(line(n, "NEW", "SYN_SENT"))).not.toBe(FALLBACK)
    // Then connections living their lives: each NEW, then three UPDATEs, interleaved 10 at a time.
    let taken = 0
    let updates = 0
    for (let first = 10_000; first < 12_000; first += 10) {
      const news = new Map<number, Flow>()
      for (let n = first; n < first + 10; n++) news.set(n, read(line(n, "NEW", "SYN_SENT")))
      for (const state of ["SYN_RECV", "ESTABLISHED", "FIN_WAIT"]) {
        for (let n = first; n < first + 10; n++) {
          const update = read(line(n, "UPDATE", state))
          expect(update.original).toStrictEqual(news.get(n)?.original)
          if (first >= 11_000) {
            updates++
            if (update.original === news.get(n)?.original) taken++
          }
        }
      }
    }
    // Once keeping pays again, most updates take their connection's tuples.
    expect(taken).toBeGreaterThan(updates * 0.9)
  })

  it("reads a connection's next event as the string parser does, whatever changed around its tuples", () => {
    const tuples = "src=127.0.0.1 dst=127.0.0.2 sport=1024 dport=80 src=127.0.0.2 dst=127.0.0.1 sport=80 dport=1024"
    const v6 = "src=::1 dst=::2 sport=1024 dport=80 src=::2 dst=::1 sport=80 dport=1024"
    const cases: ReadonlyArray<readonly [string, string, boolean]> = [
      // [the connection's last event, the next one, whether the next one is a flow]
      [`[NEW] tcp 6 120 SYN_SENT ${tuples} id=7`, `[UPDATE] ipv6 10 tcp 6 60 SYN_RECV ${tuples} id=7`, false],
      [`[NEW] tcp 6 120 SYN_SENT ${v6} id=7`, `[UPDATE] ipv4 2 tcp 6 60 SYN_RECV ${v6} id=7`, false],
      [`[NEW] tcp 6 120 SYN_SENT ${v6} id=7`, `[UPDATE] ipv6 10 tcp 6 60 SYN_RECV ${v6} id=7`, true],
      [
        `[NEW] tcp 6 120 SYN_SENT ${tuples.replace(" src=127.0.0.2", " [UNREPLIED] src=127.0.0.2")} id=7`,
        `[UPDATE] tcp 6 60 SYN_RECV ${tuples.replace(" src=127.0.0.2", " [UNREPLIED] src=127.0.0.2")} id=7`,
        true
      ],
      [`[NEW] tcp 6 120 SYN_SENT ${tuples} [UNREPLIED] id=7`, `[UPDATE] tcp 6 60 SYN_RECV ${tuples} id=7`, true],
      [`[NEW] tcp 6 120 SYN_SENT ${tuples} zone-reply=3 id=7`, `[UPDATE] tcp 6 60 SYN_RECV ${tuples} id=7`, true],
      [`[NEW] tcp 6 120 SYN_SENT ${tuples} id=7`, `[UPDATE] tcp 6 60 SYN_RECV ${tuples} packets=2 bytes=3 id=7`, true],
      [
        `[NEW] tcp 6 120 SYN_SENT ${tuples} zone-reply=3 id=7`,
        `[UPDATE] tcp 6 60 SYN_RECV ${tuples} zone-reply=4 id=7`,
        true
      ],
      [`[DESTROY] tcp 6 ${tuples} id=7`, `[NEW] tcp 6 120 SYN_SENT ${tuples} id=7`, true],
      [`[NEW] tcp 6 120 SYN_SENT ${tuples}`, `[UPDATE] tcp 6 60 SYN_RECV ${tuples}`, true],
      [
        `[NEW] tcp 6 120 SYN_SENT ${tuples} id=7`,
        `[UPDATE] tcp 6 60 SYN_RECV ${tuples.replace("dport=1024", "dport=10240")} id=7`,
        true
      ],
      // One byte changed, the length the same: the last of the tuples, the original's sport, its src.
      ...[
        ["dport=1024", "dport=1025"],
        ["sport=1024", "sport=1025"],
        ["src=127.0.0.1", "src=127.0.0.3"]
      ].map(
        ([from, to]) =>
          [
            `[NEW] tcp 6 120 SYN_SENT ${tuples} id=7`,
            `[UPDATE] tcp 6 60 SYN_RECV ${tuples.replace(from as string, to as string)} id=7`,
            true
          ] as const
      ),
      [
        `[NEW] tcp 6 120 SYN_SENT ${tuples} id=7`,
        `[UPDATE] tcp 6 60 SYN_RECV ${tuples.replace("dport=1024", "dport=1024x")} id=7`,
        false
      ]
    ]
    for (const [last, next, isFlow] of cases) {
      reader.reset()
      expect(agreesWith(reader, last, "events")).toBe(true)
      expect(agreesWith(reader, next, "events")).toBe(isFlow)
    }
  })
})
