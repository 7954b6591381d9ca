// The fast readers of common lines (the straight reader and the line scanner) and the lines to test them with: shared
// by test/parser-straight.test.ts and test/parser-kept-tuples.test.ts.
import * as fs from "node:fs"
import * as path from "node:path"
import { expect } from "@effect/vitest"
import * as fc from "effect/FastCheck"
import type { Flow } from "../../src/Flow.js"
import { formatDumpLine, formatEventLine } from "../../src/Format.js"
import * as eventTuples from "../../src/internal/eventTuples.js"
import * as lineScanner from "../../src/internal/lineScanner.js"
import { parseReference } from "../../src/internal/reference.js"
import { STATES } from "../../src/internal/states.js"
import { FALLBACK, readStraight } from "../../src/internal/straight.js"

export type Format = "dump" | "events"

/** A fast reader of common lines: its flow for b[start, end), or FALLBACK; `reset` empties its kept tuples. */
export interface Reader {
  readonly name: string
  readonly read: (b: Buffer, start: number, end: number, events: boolean, compact: boolean) => Flow | typeof FALLBACK
  readonly reset: () => void
}
const scanned = (b: Buffer, start: number, end: number, events: boolean, compact: boolean, ticket: number) =>
  lineScanner.scan(b, start, end, events, ticket, events && compact) === 1
    ? lineScanner.scannedFlow(b, start, end, compact, events && compact)
    : FALLBACK
export const readers: ReadonlyArray<Reader> = [
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
export interface Around {
  readonly before: string
  readonly after: string
}
export const around: fc.Arbitrary<Around> = fc.record({
  before: fc.constantFrom("", "x", "7", "src=1.2.3.4 "),
  after: fc.constantFrom("\n", "7", "0", "9 x", ".1", "=1", ":1", "]", " [ASSURED]", "\n src=1.2.3.4 id=7")
})
export const arounds: ReadonlyArray<Around> = [
  { before: "", after: "\n" },
  { before: "7", after: "9 x" },
  { before: "x", after: ".1" },
  { before: "", after: ":1" },
  { before: "", after: "]" }
]

/** A reader's flow for `line`, or FALLBACK; the line is written into a buffer between other bytes. */
export const readWith = (
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
export const agrees = (line: string, format: Format, where: Around = arounds[0] as Around): boolean => {
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

/**
 * Whether `reader` accepts `line`, compact or not, as the straight reader (not compact, so that its kept tuples stay
 * as they are) decides; if it does, the string parser made the same flow.
 */
export const agreesWith = (
  reader: Reader,
  line: string,
  format: Format,
  where: Around = arounds[0] as Around
): boolean => {
  const taken = readWith(readers[0] as Reader, line, format, false, where) !== FALLBACK
  for (const compact of [false, true]) {
    const flow = readWith(reader, line, format, compact, where)
    expect(flow !== FALLBACK).toBe(taken)
    if (flow === FALLBACK) continue
    const expected = parseReference(line, format === "events", compact)
    expect(typeof expected === "string" ? `rejected: ${expected}` : expected).toStrictEqual(flow)
    expect(JSON.stringify(flow)).toBe(JSON.stringify(expected))
  }
  return taken
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
export const commonFlow = (type: fc.Arbitrary<Flow["type"]>): fc.Arbitrary<Flow> =>
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
export const commonLine = fc.oneof(
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

export const mutation = fc.oneof(
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
export type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never

export const mutate = (line: string, m: Mutation): string => {
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

const recorded = path.join(import.meta.dirname, "..", "..", "fixtures", "recorded")
export const realLines = (prefix: string) =>
  fs
    .readdirSync(recorded)
    .filter((f) => f.startsWith(prefix) && f.endsWith(".txt"))
    .flatMap((f) =>
      fs
        .readFileSync(path.join(recorded, f), "utf8")
        .split("\n")
        .filter((l) => l !== "")
    )
