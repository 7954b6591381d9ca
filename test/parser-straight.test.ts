// The straight reader (src/internal/straight.ts) and the line scanner (src/internal/lineScanner.ts, WebAssembly),
// which read the common TCP and UDP lines before the general reader gets to them, against the string parser
// (src/internal/reference.ts): whatever line they accept, the string parser accepts and makes the same flow (the same
// JSON, key order included); both take the same lines; the lines conntrack prints most are the ones they take.
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as fc from "effect/FastCheck"
import type { Flow } from "../src/Flow.js"
import { formatDumpLine, formatEventLine } from "../src/Format.js"
import * as eventTuples from "../src/internal/eventTuples.js"
import * as lineScanner from "../src/internal/lineScanner.js"
import { parseReference } from "../src/internal/reference.js"
import { STATES } from "../src/internal/states.js"
import { FALLBACK, readStraight } from "../src/internal/straight.js"
import { MAX_FLOW_TEXT } from "../src/Parser.js"

type Format = "dump" | "events"

/** A fast reader of common lines: its flow for b[start, end), or FALLBACK; `reset` empties its kept tuples. */
interface Reader {
  readonly name: string
  readonly read: (b: Buffer, start: number, end: number, events: boolean, compact: boolean) => Flow | typeof FALLBACK
  readonly reset: () => void
}
const scanned = (b: Buffer, start: number, end: number, events: boolean, compact: boolean, ticket: number) =>
  lineScanner.scan(b, start, end, events, ticket, events && compact) === 1
    ? lineScanner.scannedFlow(b, start, end, compact, events && compact)
    : FALLBACK
const readers: ReadonlyArray<Reader> = [
  { name: "the straight reader", read: readStraight, reset: eventTuples.reset },
  {
    // As a decoder reads: the chunk (here the line and the bytes around it) copied into the scanner's memory.
    name: "the line scanner, in its chunk",
    read: (b, start, end, events, compact) => scanned(b, start, end, events, compact, lineScanner.load(b)),
    reset: lineScanner.resetKept
  },
  {
    name: "the line scanner, the line copied alone",
    read: (b, start, end, events, compact) => scanned(b, start, end, events, compact, 0),
    reset: lineScanner.resetKept
  }
]

/** Bytes around the line in its buffer: the reader must read none of them (they may carry on its last field). */
interface Around {
  readonly before: string
  readonly after: string
}
const around: fc.Arbitrary<Around> = fc.record({
  before: fc.constantFrom("", "x", "7", "src=1.2.3.4 "),
  after: fc.constantFrom("\n", "7", "0", "9 x", ".1", "=1", ":1", "]", " [ASSURED]", "\n src=1.2.3.4 id=7")
})
const arounds: ReadonlyArray<Around> = [
  { before: "", after: "\n" },
  { before: "7", after: "9 x" },
  { before: "x", after: ".1" },
  { before: "", after: ":1" },
  { before: "", after: "]" }
]

/** A reader's flow for `line`, or FALLBACK; the line is written into a buffer between other bytes. */
const readWith = (
  reader: Reader,
  line: string,
  format: Format,
  compact: boolean,
  { before, after }: Around
): Flow | typeof FALLBACK => {
  const bytes = Buffer.from(`${before}${line}${after}`, "utf8")
  const start = Buffer.byteLength(before)
  return reader.read(bytes, start, start + Buffer.byteLength(line), format === "events", compact)
}

/** Whether the fast readers accept `line` (all or none of them); if they do, the string parser made the same flow. */
const agrees = (line: string, format: Format, where: Around = arounds[0] as Around): boolean => {
  const decisions: Array<boolean> = []
  for (const reader of readers) {
    for (const compact of [false, true]) {
      const flow = readWith(reader, line, format, compact, where)
      decisions.push(flow !== FALLBACK)
      if (flow === FALLBACK) continue
      const expected = parseReference(line, format === "events", compact)
      expect(typeof expected === "string" ? `rejected: ${expected}` : expected).toStrictEqual(flow)
      expect(JSON.stringify(flow)).toBe(JSON.stringify(expected))
    }
  }
  // Both readers take the same lines, and sharing strings or not changes no decision.
  expect(new Set(decisions).size).toBe(1)
  return decisions[0] === true
}

const u16 = fc.integer({ min: 0, max: 65535 })
const u32 = fc.integer({ min: 0, max: 0xffffffff })
const counter = fc.oneof(fc.nat({ max: 100_000 }), fc.integer({ min: 0, max: 999_999_999_999_999 }))
const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join("."))
const ipv6 = fc.oneof(fc.ipV6(), fc.constantFrom("::1", "fe80::1", "2001:db8::dead:beef", "::ffff:127.0.0.1"))

const tuple = (address: fc.Arbitrary<string>) =>
  fc
    .record({
      ports: fc.record({ src: address, dst: address, sport: u16, dport: u16 }),
      zone: fc.option(u16, { nil: undefined }),
      counters: fc.option(fc.tuple(counter, counter), { nil: undefined })
    })
    .map(({ ports, zone, counters }) => ({
      ...ports,
      ...(zone === undefined ? {} : { zone }),
      ...(counters === undefined ? {} : { packets: counters[0], bytes: counters[1] })
    }))

const tuples = { ipv4: tuple(ipv4), ipv6: tuple(ipv6) }
const rest = fc.record(
  {
    timeout: fc.nat({ max: 432_000 }),
    state: fc.constantFrom(...STATES),
    unreplied: fc.constant(true),
    assured: fc.constant(true),
    offload: fc.constant(true),
    hwOffload: fc.constant(true),
    mark: u32,
    secmark: u32,
    secctx: fc.stringMatching(/^[a-z][a-z0-9_:.-]{0,30}$/),
    zone: u16,
    deltaTime: u32,
    use: u32,
    id: u32
  },
  { requiredKeys: [] }
)

/** TCP and UDP flows as conntrack prints them, replies mirrored (no NAT) or not. */
const commonFlow = (type: fc.Arbitrary<Flow["type"]>): fc.Arbitrary<Flow> =>
  fc
    .record({
      type,
      family: fc.constantFrom("ipv4", "ipv6") as fc.Arbitrary<"ipv4" | "ipv6">,
      proto: fc.constantFrom("tcp", "udp") as fc.Arbitrary<"tcp" | "udp">,
      mirrored: fc.boolean()
    })
    .chain(({ type, family, proto, mirrored }) =>
      fc.record({ original: tuples[family], reply: tuples[family], rest }).map(({ original, reply, rest }) => {
        const f: Record<string, unknown> = {
          family,
          proto,
          protonum: proto === "tcp" ? 6 : 17,
          original,
          reply,
          ...rest
        }
        if (proto === "udp") delete f.state
        if (type !== undefined) f.type = type
        if (mirrored) f.reply = { ...reply, src: original.dst, dst: original.src }
        return f as unknown as Flow
      })
    )
const commonLine = fc.oneof(
  commonFlow(fc.constant(undefined)).chain((flow) =>
    fc.boolean().map((extended) => ({ line: formatDumpLine(flow, { extended }), format: "dump" as Format }))
  ),
  commonFlow(fc.constantFrom("NEW", "UPDATE", "DESTROY")).chain((flow) =>
    fc.boolean().map((extended) => ({ line: formatEventLine(flow, { extended }), format: "events" as Format }))
  )
)

// Words near the edges of what the straight reader takes.
const nearWords = fc.constantFrom(
  "mark=4294967295",
  "mark=4294967296",
  "mark=",
  "mark=1x",
  "zone=65535",
  "zone=65536",
  "zone-orig=1",
  "zone-reply=65536",
  "zone-orig=",
  "sport=65535",
  "dport=65536",
  "sport=01",
  "id=0",
  "id=4294967296",
  "use=",
  "[ASSURED]",
  "[ASSURED]]",
  "[ASSURED",
  "[OFFLOAD]",
  "[HW_OFFLOAD]",
  "[HW_OFFLOAD]x",
  "[UNREPLIED]",
  "[UNREPLIEDX]",
  "[USERSPACE]",
  "secctx=",
  "secctx=é",
  "secctx=a",
  "secmark=1",
  "delta-time=123456789012345",
  "delta-time=1234567890123456",
  "packets=1",
  "bytes=999999999999999",
  "bytes=9999999999999999",
  "src=127.0.0.1",
  "dst=127.0.0.1",
  "src=::1",
  "dst=1.2.3.256",
  "dst=1.2.3",
  "ipv4     2",
  "ipv6     10",
  "ipv4 02",
  "ESTABLISHED",
  "TIMEWAIT",
  "SYN_SENT2",
  "ESTABLISHE",
  "FOO",
  "[NEW]",
  "[DESTROY]",
  "[UPDATE]x",
  "tcp",
  "udp",
  "udplite",
  "6",
  "06",
  "17",
  "1234567890123456",
  "",
  "é",
  "\t",
  "x=1",
  "=",
  "[start=Wed]",
  "labels=a"
)

const mutation = fc.oneof(
  fc.record({ kind: fc.constant("replace" as const), at: fc.nat(), word: nearWords }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), word: nearWords }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("duplicate" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("join" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("swap" as const), at: fc.nat(), to: fc.nat() }),
  fc.record({
    kind: fc.constant("byte" as const),
    at: fc.nat(),
    to: fc.constantFrom(" ", "=", "[", "]", "0", "9", "a", "A", "_", ":", ".", "-", "\t", "\r", "é")
  })
)
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never

const mutate = (line: string, m: Mutation): string => {
  const words = line.split(" ")
  const k = m.at % words.length
  switch (m.kind) {
    case "replace":
      words[k] = m.word
      return words.join(" ")
    case "insert":
      words.splice(k, 0, m.word)
      return words.join(" ")
    case "delete":
      words.splice(k, 1)
      return words.join(" ")
    case "duplicate":
      words.splice(k, 0, words[k] ?? "")
      return words.join(" ")
    case "join":
      words.splice(k, 2, `${words[k] ?? ""}${words[k + 1] ?? ""}`)
      return words.join(" ")
    case "swap": {
      const j = m.to % words.length
      ;[words[k], words[j]] = [words[j] ?? "", words[k] ?? ""]
      return words.join(" ")
    }
    case "byte": {
      const at = m.at % (line.length + 1)
      return line.slice(0, at) + m.to + line.slice(at + 1)
    }
  }
}

const recorded = path.join(import.meta.dirname, "..", "fixtures", "recorded")
const realLines = (prefix: string) =>
  fs
    .readdirSync(recorded)
    .filter((f) => f.startsWith(prefix) && f.endsWith(".txt"))
    .flatMap((f) =>
      fs
        .readFileSync(path.join(recorded, f), "utf8")
        .split("\n")
        .filter((l) => l !== "")
    )

describe("the straight reader and the line scanner", () => {
  it("the line scanner runs here (WebAssembly)", () => {
    expect(lineScanner.available).toBe(true)
  })

  it("reads every common TCP and UDP line, and makes the string parser's flow", () => {
    fc.assert(
      fc.property(commonLine, around, ({ line, format }, where) => {
        expect(agrees(line, format, where)).toBe(true)
      }),
      { numRuns: 3000 }
    )
  })

  it("on real lines: reads the plain TCP and UDP ones, and agrees on all it reads", () => {
    let read = 0
    for (const [prefix, format] of [
      ["dump-", "dump"],
      ["events-", "events"]
    ] as const) {
      for (const line of realLines(prefix)) {
        const decisions = arounds.map((where) => agrees(line, format, where))
        expect(new Set(decisions).size).toBe(1)
        if (decisions[0]) read++
      }
    }
    // The recorded -o id lines of TCP and UDP flows are the common shape; timestamps, ICMP and the rest are not.
    expect(read).toBeGreaterThanOrEqual(50)
  })

  it("on mutated lines: whatever it accepts, the string parser accepts as the same flow", () => {
    let accepted = 0
    let runs = 0
    fc.assert(
      fc.property(
        commonLine,
        fc.array(mutation, { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
        around,
        ({ line, format }, mutations, otherFormat, where) => {
          runs++
          const mutated = mutations.reduce(mutate, line).replaceAll("\n", " ")
          // In the other format a line can only fall back: a tenth of the runs check that.
          const f: Format = otherFormat ? (format === "dump" ? "events" : "dump") : format
          if (agrees(mutated, f, where)) accepted++
        }
      ),
      { numRuns: 10_000 }
    )
    // Some mutations leave a line it still reads (a changed number, a repeated flag, a field moved): those are the
    // cases that test it (about 5% of them).
    expect(accepted).toBeGreaterThan(runs / 50)
  })
  it("takes each number up to its limit and no further, and only addresses the string parser takes", () => {
    const base =
      "tcp      6 431999 ESTABLISHED src=127.0.0.1 dst=127.0.0.2 sport=1024 dport=80 zone-orig=1 packets=2 bytes=3 src=127.0.0.2 dst=127.0.0.1 sport=80 dport=1024 zone-reply=4 packets=5 bytes=6 [ASSURED] mark=7 secmark=8 zone=9 delta-time=10 use=11 id=12"
    const limits: ReadonlyArray<readonly [string, number]> = [
      ["sport=1024", 65535],
      ["dport=80", 65535],
      ["sport=80", 65535],
      ["dport=1024", 65535],
      ["zone-orig=1", 65535],
      ["zone-reply=4", 65535],
      ["zone=9", 65535],
      ["mark=7", 4294967295],
      ["secmark=8", 4294967295],
      ["use=11", 4294967295],
      ["id=12", 4294967295],
      ["packets=2", Number.MAX_SAFE_INTEGER],
      ["bytes=6", Number.MAX_SAFE_INTEGER],
      ["delta-time=10", Number.MAX_SAFE_INTEGER],
      ["431999", Number.MAX_SAFE_INTEGER]
    ]
    expect(agrees(base, "dump")).toBe(true)
    for (const [field, limit] of limits) {
      const key = field.includes("=") ? field.slice(0, field.indexOf("=") + 1) : ""
      for (const [value, taken] of [
        [`${limit}`, true],
        [`${limit + 1}`, false],
        [`0${limit}`, `0${limit}`.length <= 16],
        ["00000000000000001", false],
        // A timeout may be left out; no other number may.
        ["", key === ""],
        ["-1", false]
      ] as const) {
        const line = `${base} `.replace(` ${field} `, ` ${key}${value} `).trimEnd()
        expect(line).not.toBe(base)
        expect(agrees(line, "dump"), line).toBe(taken)
      }
    }
    // Every state conntrack prints, and words close to them.
    for (const state of STATES) {
      expect(agrees(base.replace("ESTABLISHED", state), "dump"), state).toBe(true)
      for (const near of [`${state}S`, state.slice(0, -1), `${state.slice(0, -1)}X`, `X${state.slice(1)}`]) {
        if (!STATES.includes(near)) expect(agrees(base.replace("ESTABLISHED", near), "dump"), near).toBe(false)
      }
    }
    const addresses: ReadonlyArray<readonly [string, boolean]> = [
      ["127.0.0.255", true],
      ["127.0.0.256", false],
      ["127.0.0", false],
      ["127.0.0.1.1", false],
      ["127.0..1", false],
      ["0127.0.0.1", false],
      ["::1", true],
      ["::", true],
      ["1:2:3:4:5:6:7:8", true],
      ["1:2:3:4:5:6:7:8:9", false],
      ["1::2::3", false],
      ["12345::1", false],
      ["::ffff:127.0.0.1", true],
      ["::ffff:127.0.0.256", false],
      ["1:2:3:4:5:6:127.0.0.1", true],
      ["1:2:3:4:5:6:7:127.0.0.1", false],
      ["fe80::g", false],
      [":1", false],
      ["1:", false]
    ]
    for (const [address, taken] of addresses) {
      const v6 = address.includes(":")
      const other = v6 ? "::2" : "127.0.0.2"
      const line = `tcp      6 120 SYN_SENT src=${address} dst=${other} sport=1 dport=2 src=${other} dst=${address} sport=2 dport=1 mark=0 use=1 id=3`
      expect(agrees(line, "dump"), line).toBe(taken)
      // The other family's address in the original's dst, the reply's src or the reply's dst.
      const foreign = v6 ? "127.0.0.2" : "::2"
      for (const mixed of [
        line.replace(` dst=${other} `, ` dst=${foreign} `),
        line.replace(`src=${other} dst=${address}`, `src=${foreign} dst=${address}`),
        line.replace(`src=${other} dst=${address}`, `src=${other} dst=${foreign}`)
      ]) {
        expect(mixed).not.toBe(line)
        expect(agrees(mixed, "dump"), mixed).toBe(false)
      }
    }
  })

  it("falls back on a header that names the other family, and the string parser rejects it", () => {
    const extended = commonFlow(fc.constant(undefined)).map((flow) => formatDumpLine(flow, { extended: true }))
    fc.assert(
      fc.property(extended, (line) => {
        const wrong = line.startsWith("ipv4")
          ? line.replace(/^ipv4 +2 /, "ipv6     10 ")
          : line.replace(/^ipv6 +10 /, "ipv4     2 ")
        expect(wrong).not.toBe(line)
        expect(agrees(line, "dump")).toBe(true)
        expect(agrees(wrong, "dump")).toBe(false)
        expect(typeof parseReference(wrong, false, false)).toBe("string")
      }),
      { numRuns: 500 }
    )
  })

  it("leaves lines near conntrack's 1023-byte cut to the general reader, or reads them as it does", () => {
    const near = fc.tuple(commonLine, fc.integer({ min: 990, max: 1040 })).map(([{ line, format }, length]) => {
      // A long secctx before the id brings the line to `length` bytes.
      const at = line.lastIndexOf(" id=")
      const pad = Math.max(1, length - line.length - 8)
      const cut = at === -1 ? line.length : at
      return { line: `${line.slice(0, cut)} secctx=${"s".repeat(pad)}${line.slice(cut)}`, format }
    })
    fc.assert(
      fc.property(near, around, ({ line, format }, where) => {
        agrees(line, format, where)
        // Longer lines may have been cut: they are the general reader's.
        if (Buffer.byteLength(line) >= MAX_FLOW_TEXT) {
          for (const reader of readers) expect(readWith(reader, line, format, true, where)).toBe(FALLBACK)
        }
      }),
      { numRuns: 1000 }
    )
  })
})

describe.each(readers)("$name, reading events compact", (reader) => {
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
      for (const line of lines) expect(agrees(line, "events")).toBe(true)
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
          if (!agrees(line, "events", where)) continue
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
      expect(agrees(text, "events")).toBe(true)
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
      [
        `[NEW] tcp 6 120 SYN_SENT ${tuples} id=7`,
        `[UPDATE] tcp 6 60 SYN_RECV ${tuples.replace("dport=1024", "dport=1025")} id=7`,
        true
      ],
      [
        `[NEW] tcp 6 120 SYN_SENT ${tuples} id=7`,
        `[UPDATE] tcp 6 60 SYN_RECV ${tuples.replace("sport=1024", "sport=1025")} id=7`,
        true
      ],
      [
        `[NEW] tcp 6 120 SYN_SENT ${tuples} id=7`,
        `[UPDATE] tcp 6 60 SYN_RECV ${tuples.replace("src=127.0.0.1", "src=127.0.0.3")} id=7`,
        true
      ],
      [
        `[NEW] tcp 6 120 SYN_SENT ${tuples} id=7`,
        `[UPDATE] tcp 6 60 SYN_RECV ${tuples.replace("dport=1024", "dport=1024x")} id=7`,
        false
      ]
    ]
    for (const [last, next, isFlow] of cases) {
      reader.reset()
      expect(agrees(last, "events")).toBe(true)
      expect(agrees(next, "events")).toBe(isFlow)
    }
  })
})
