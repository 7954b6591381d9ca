// The byte parser against the string parser it replaces (kept in src/internal/reference.ts): on any line, the same
// decision, the same reason, the same flow (the same JSON, key order included).
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as fc from "effect/FastCheck"
import type { Flow } from "../src/Flow.js"
import { formatDumpLine, formatEventLine } from "../src/Format.js"
import { parseReference } from "../src/internal/reference.js"
import { type LineFormat, MAX_FLOW_TEXT, makeDecoder } from "../src/Parser.js"
import * as Arb from "./support/arbitraries.js"

const recorded = path.join(import.meta.dirname, "..", "fixtures", "recorded")
const realLines = fs
  .readdirSync(recorded)
  .filter((f) => f.endsWith(".txt"))
  .flatMap((f) =>
    fs
      .readFileSync(path.join(recorded, f), "utf8")
      .split("\n")
      .filter((l) => l !== "")
  )

type Outcome = { readonly flow: Flow } | { readonly reason: string } | "skipped"

/** What the byte decoder makes of one line given as bytes (followed by a newline), in chunks cut at `cuts`. */
const fast = (bytes: Uint8Array, format: LineFormat, compact: boolean, cuts: ReadonlyArray<number> = []): Outcome => {
  const outcomes: Array<Outcome> = []
  const decoder = makeDecoder(
    format,
    { flow: (flow) => outcomes.push({ flow }), error: (e) => outcomes.push({ reason: e.reason }) },
    { compact }
  )
  const all = new Uint8Array(bytes.length + 1)
  all.set(bytes)
  all[bytes.length] = 10
  let from = 0
  for (const cut of [...new Set(cuts.map((c) => c % (all.length + 1)))].sort((a, b) => a - b)) {
    decoder.push(all.subarray(from, cut))
    from = cut
  }
  decoder.push(all.subarray(from))
  decoder.end()
  expect(outcomes.length).toBeLessThanOrEqual(1)
  return outcomes[0] ?? "skipped"
}

/** What the string parser makes of the same line, decoded as the old line splitter decoded it. */
const reference = (bytes: Uint8Array, format: LineFormat, compact: boolean): Outcome => {
  let line = new TextDecoder().decode(bytes)
  if (line.endsWith("\r")) line = line.slice(0, -1)
  if (line.trim() === "") return "skipped"
  const result = parseReference(line, format === "events", compact)
  return typeof result === "string" ? { reason: result } : { flow: result }
}

const agree = (bytes: Uint8Array, format: LineFormat, cuts: ReadonlyArray<number> = []) => {
  for (const compact of [false, true]) {
    const expected = reference(bytes, format, compact)
    const actual = fast(bytes, format, compact, cuts)
    expect(actual).toStrictEqual(expected)
    if (typeof actual === "object" && "flow" in actual && typeof expected === "object" && "flow" in expected) {
      expect(JSON.stringify(actual.flow)).toBe(JSON.stringify(expected.flow))
    }
  }
}

const encode = (s: string) => new TextEncoder().encode(s)
const withoutNewlines = (bytes: Uint8Array) => bytes.map((b) => (b === 10 ? 32 : b))
const format = fc.constantFrom<LineFormat>("dump", "events")

const validLine = fc.oneof(
  Arb.flow(fc.constant(undefined)).chain((flow) =>
    fc.boolean().map((extended) => ({ line: formatDumpLine(flow, { extended }), format: "dump" as const }))
  ),
  Arb.flow(fc.constantFrom("NEW", "UPDATE", "DESTROY")).chain((flow) =>
    fc.boolean().map((extended) => ({ line: formatEventLine(flow, { extended }), format: "events" as const }))
  )
)

const mutation = fc.oneof(
  fc.record({ kind: fc.constant("cut" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("duplicate" as const), at: fc.nat(), len: fc.nat({ max: 80 }) }),
  fc.record({ kind: fc.constant("swap" as const), a: fc.nat(), b: fc.nat() }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), len: fc.nat({ max: 12 }) }),
  fc.record({
    kind: fc.constant("insert" as const),
    at: fc.nat(),
    text: fc.oneof(
      fc.string({ unit: "binary", maxLength: 12 }),
      fc.constantFrom(
        "[ASSURED]",
        "[UNREPLIED] ",
        " [USERSPACE] portid=1 progname=x",
        "zone-orig=1 ",
        "zone-origé=2 ",
        "dé!key=0x1 ",
        "[start=é",
        " id=4",
        "=",
        "  ",
        "\t",
        "\r",
        "é",
        "\ud83d\ude00",
        "\ufeff",
        "[1.5]\t",
        "src=::1 ",
        "src=1.2.3.4 ",
        "type=1 code=2 id=3 "
      )
    )
  }),
  fc.record({
    kind: fc.constant("field" as const),
    at: fc.nat(),
    text: fc.constantFrom(
      "zone-origé=2",
      "zone-orig\u20ac=3",
      "zone-orig\ud83d\ude00=4",
      "dé!key=0x1",
      "d\u20ackey=0x2",
      "sé=1",
      "[start=Wed é",
      "[stop=é]",
      "secctx=é",
      "labels=é,a",
      "helper=\u00a0",
      "x\u00e9=1",
      "[USERSPACE] progname=é"
    )
  }),
  fc.record({ kind: fc.constant("pad" as const), to: fc.integer({ min: MAX_FLOW_TEXT - 30, max: MAX_FLOW_TEXT + 60 }) })
)
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never

const mutate = (line: string, m: Mutation): string => {
  switch (m.kind) {
    case "cut":
      return line.slice(0, m.at % (line.length + 1))
    case "duplicate": {
      const at = m.at % (line.length + 1)
      return line.slice(0, at) + line.slice(at, at + m.len) + line.slice(at)
    }
    case "swap": {
      const words = line.split(" ")
      const a = m.a % words.length
      const b = m.b % words.length
      ;[words[a], words[b]] = [words[b] ?? "", words[a] ?? ""]
      return words.join(" ")
    }
    case "delete": {
      const at = m.at % (line.length + 1)
      return line.slice(0, at) + line.slice(at + m.len)
    }
    case "insert": {
      const at = m.at % (line.length + 1)
      return line.slice(0, at) + m.text + line.slice(at)
    }
    case "field": {
      // A field inserted at a space, where fields start.
      const spaces = [...line.matchAll(/ /g)].map((m) => m.index)
      const at = spaces[m.at % (spaces.length + 1)] ?? line.length
      return `${line.slice(0, at)} ${m.text}${line.slice(at)}`
    }
    case "pad": {
      // Around conntrack's 1023-byte cut, with a long field before the id.
      const pad = Math.max(0, m.to - line.length)
      const at = line.lastIndexOf(" id=")
      return at === -1
        ? line + " x=".padEnd(pad, "y")
        : `${line.slice(0, at)} secctx=${"s".repeat(pad)}${line.slice(at)}`
    }
  }
}

describe("the byte parser agrees with the string parser", () => {
  it("on every real line", () => {
    for (const line of realLines) {
      for (const f of ["dump", "events"] as const) agree(encode(line), f)
    }
  })

  it("on generated valid lines, however the bytes are chunked", () => {
    fc.assert(
      fc.property(validLine, fc.array(fc.nat(), { maxLength: 6 }), ({ line, format }, cuts) => {
        agree(encode(line), format, cuts)
      }),
      { numRuns: 1000 }
    )
  })

  it("on mutated real and generated lines (non-ASCII, cuts at 1023 bytes, odd fields)", () => {
    const base = fc.oneof(
      fc.constantFrom(...realLines).map((line) => ({ line })),
      validLine.map(({ line }) => ({ line }))
    )
    fc.assert(
      fc.property(base, fc.array(mutation, { minLength: 1, maxLength: 3 }), format, ({ line }, mutations, f) => {
        const mutated = mutations.reduce(mutate, line).replaceAll("\n", " ")
        if (Buffer.byteLength(mutated) < 2000) agree(encode(mutated), f)
      }),
      { numRuns: 10_000 }
    )
  })

  it("on the rare shapes where bytes and characters differ", () => {
    const tcp = "tcp      6 1 src=1.2.3.4 dst=1.2.3.4 sport=1 dport=2 src=1.2.3.4 dst=1.2.3.4 sport=2 dport=1"
    const lines = [
      "[1.5]\t",
      "[1.5]\t \t",
      `${tcp} [start=é`,
      `${tcp} [stop=Wed \u20ac`,
      `${tcp} zone-reply=1 zone-origé=2`,
      `${tcp} dé!key=0x1`,
      `${tcp} dékey=0x1`,
      `[UPDATE] ${tcp} sé=1 d\u20ackey=0x2`,
      `${tcp} secctx=${"é".repeat(480)} id=3`,
      `${tcp} secctx=${"é".repeat(480)} id=3 [USERSPACE] portid=1 progname=\u00e9t\u00e9`
    ]
    for (const line of lines) for (const f of ["dump", "events"] as const) agree(encode(line), f)
  })

  it("on replies that mirror the original's addresses, or nearly (the reply reuses the original's strings)", () => {
    const address = fc.constantFrom(
      "1.2.3.4",
      "1.2.3.45",
      "1.2.3.",
      "::1",
      "::12",
      "2001:db8::1",
      "",
      "1.2.3.4x",
      "::1 "
    )
    const near = (a: string) =>
      fc.constantFrom(a, `${a}5`, a.slice(0, -1), `${a}:`, `${a}.1`, `${a}é`, `x${a}`, `${a} `)
    const line = address.chain((s) =>
      address.chain((d) =>
        fc
          .tuple(near(d), near(s), fc.constantFrom("dump", "events") as fc.Arbitrary<LineFormat>)
          .map(([rs, rd, f]) => ({
            line: `${f === "events" ? "[UPDATE] " : ""}tcp      6 5 ESTABLISHED src=${s} dst=${d} sport=1 dport=2 src=${rs} dst=${rd} sport=2 dport=1 [ASSURED] id=7`,
            format: f
          }))
      )
    )
    fc.assert(
      fc.property(line, ({ line, format }) => {
        agree(encode(line), format)
      }),
      { numRuns: 3000 }
    )
  })

  it("on random bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), format, (bytes, f) => {
        agree(withoutNewlines(bytes), f)
      }),
      { numRuns: 10_000 }
    )
  })

  it("on random text, valid UTF-8 or not", () => {
    const piece = fc.oneof(
      fc.constantFrom("src=", "dst=", "sport=", "=", " ", "[", "]", "tcp 6 ", "1", ":", ".", "é", "\u00a0", "\r", "\t"),
      fc.string({ unit: "binary", maxLength: 4 }),
      fc.uint8Array({ maxLength: 3 }).map((b) => Buffer.from(b).toString("latin1"))
    )
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 40 }), format, (pieces, f) => {
        agree(withoutNewlines(encode(pieces.join(""))), f)
      }),
      { numRuns: 10_000 }
    )
  })
})
