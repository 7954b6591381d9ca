// The straight reader (src/internal/straight.ts) and the line scanner (src/internal/lineScanner.ts, WebAssembly),
// which read the common TCP and UDP lines before the general reader gets to them, against the string parser
// (src/internal/reference.ts): whatever line they accept, the string parser accepts and makes the same flow (the same
// JSON, key order included); both take the same lines; the lines conntrack prints most are the ones they take.
import { describe, expect, it } from "@effect/vitest"
import * as fc from "effect/FastCheck"
import { formatDumpLine } from "../src/Format.js"
import * as lineScanner from "../src/internal/lineScanner.js"
import { parseReference } from "../src/internal/reference.js"
import { STATES } from "../src/internal/states.js"
import { FALLBACK } from "../src/internal/straight.js"
import { MAX_FLOW_TEXT } from "../src/Parser.js"
import {
  agrees,
  around,
  arounds,
  commonFlow,
  commonLine,
  type Format,
  mutate,
  mutation,
  readers,
  readWith,
  realLines
} from "./support/fastReaders.js"

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
