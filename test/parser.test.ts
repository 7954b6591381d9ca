import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as fc from "effect/FastCheck"
import { formatDumpLine, formatEventLine } from "../src/Format.js"
import { MAX_FLOW_TEXT, makeDecoder, parseDumpLine, parseEventLine, parseLine } from "../src/Parser.js"
import * as Arb from "./support/arbitraries.js"

const ok = (result: ReturnType<typeof parseDumpLine>) => {
  if (Either.isLeft(result)) throw new Error(`expected a flow, got: ${result.left.message}`)
  return result.right
}
const reason = (result: ReturnType<typeof parseDumpLine>) => {
  if (Either.isRight(result)) throw new Error(`expected an error, got a flow: ${JSON.stringify(result.right)}`)
  return result.left.reason
}

const recorded = path.join(import.meta.dirname, "..", "fixtures", "recorded")
const realLines = fs
  .readdirSync(recorded)
  .filter((f) => f.endsWith(".txt"))
  .flatMap((f) =>
    fs
      .readFileSync(path.join(recorded, f), "utf8")
      .split("\n")
      .filter((l) => l !== "")
      .map((line) => ({ line, format: f.startsWith("events-") ? ("events" as const) : ("dump" as const) }))
  )

describe("parseEventLine", () => {
  it("reads the example lines of CONNTRACK.md", () => {
    const syn = ok(
      parseEventLine(
        "    [NEW] tcp      6 120 SYN_SENT src=127.0.0.1 dst=127.0.0.1 sport=36082 dport=9001 [UNREPLIED] src=127.0.0.1 dst=127.0.0.1 sport=9001 dport=36082 id=2545611422"
      )
    )
    expect(syn).toStrictEqual({
      type: "NEW",
      proto: "tcp",
      protonum: 6,
      timeout: 120,
      state: "SYN_SENT",
      family: "ipv4",
      unreplied: true,
      id: 2545611422,
      original: { src: "127.0.0.1", dst: "127.0.0.1", sport: 36082, dport: 9001 },
      reply: { src: "127.0.0.1", dst: "127.0.0.1", sport: 9001, dport: 36082 }
    })
  })

  it("does not take the ICMP echo id for the conntrack id", () => {
    const flow = ok(
      parseEventLine(
        "    [NEW] icmp     1 2 src=127.0.0.1 dst=127.0.0.1 type=8 code=0 id=4660 [UNREPLIED] src=127.0.0.1 dst=127.0.0.1 type=0 code=0 id=4660 id=3019375629"
      )
    )
    expect(flow.id).toBe(3019375629)
    expect(flow.original.id).toBe(4660)
    expect(flow.reply.id).toBe(4660)
    expect(flow.original.type).toBe(8)
    expect(flow.reply.type).toBe(0)
  })

  it("reads a DESTROY with no timeout and no state (older kernels)", () => {
    const flow = ok(
      parseEventLine(
        "[DESTROY] tcp      6 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 [ASSURED] id=7"
      )
    )
    expect(flow.timeout).toBeUndefined()
    expect(flow.state).toBeUndefined()
    expect(flow.id).toBe(7)
  })

  it("reads a DESTROY with state but no timeout, counters and delta-time", () => {
    const flow = ok(
      parseEventLine(
        "[DESTROY] tcp      6 TIME_WAIT src=127.0.0.1 dst=127.0.0.1 sport=47742 dport=9001 packets=6 bytes=325 src=127.0.0.1 dst=127.0.0.1 sport=9001 dport=47742 packets=4 bytes=217 [ASSURED] delta-time=1 id=1975943579"
      )
    )
    expect(flow.timeout).toBeUndefined()
    expect(flow.state).toBe("TIME_WAIT")
    expect(flow.original).toMatchObject({ packets: 6, bytes: 325 })
    expect(flow.reply).toMatchObject({ packets: 4, bytes: 217 })
    expect(flow.deltaTime).toBe(1)
  })

  it("starts the reply tuple at the second src=, whatever the protocol", () => {
    const flow = ok(
      parseEventLine(
        "    [NEW] unknown  99 600 src=127.0.0.1 dst=127.0.0.2 [UNREPLIED] src=127.0.0.2 dst=127.0.0.1 mark=0 id=5"
      )
    )
    expect(flow.proto).toBe("unknown")
    expect(flow.protonum).toBe(99)
    expect(flow.original).toStrictEqual({ src: "127.0.0.1", dst: "127.0.0.2" })
    expect(flow.reply).toStrictEqual({ src: "127.0.0.2", dst: "127.0.0.1" })
  })

  it("shows DNAT in the reply tuple", () => {
    const flow = ok(
      parseEventLine(
        " [UPDATE] tcp      6 432000 ESTABLISHED src=127.0.0.1 dst=127.0.0.2 sport=47520 dport=9201 src=127.0.0.1 dst=127.0.0.1 sport=9401 dport=47520 [ASSURED] id=214873439"
      )
    )
    expect(flow.original).toMatchObject({ dst: "127.0.0.2", dport: 9201 })
    expect(flow.reply).toMatchObject({ src: "127.0.0.1", sport: 9401 })
  })

  it("accepts the -o extended and -o timestamp prefixes together", () => {
    const flow = ok(
      parseEventLine(
        "[1795597854.401955]\t    [NEW] ipv6     10 tcp      6 120 SYN_SENT src=::1 dst=::1 sport=1 dport=2 [UNREPLIED] src=::1 dst=::1 sport=2 dport=1 id=9"
      )
    )
    expect(flow.timestamp).toBe(1795597854.401955)
    expect(flow.family).toBe("ipv6")
  })

  it("reads [start=...] and [stop=...] fields, which hold spaces", () => {
    const flow = ok(
      parseEventLine(
        "[DESTROY] tcp      6 CLOSE src=127.0.0.1 dst=127.0.0.1 sport=1 dport=2 [UNREPLIED] src=127.0.0.1 dst=127.0.0.1 sport=2 dport=1 delta-time=0 [start=Wed Nov 25 10:37:14 2026] [stop=Wed Nov 25 10:37:15 2026] id=3"
      )
    )
    expect(flow.start).toBe("Wed Nov 25 10:37:14 2026")
    expect(flow.stop).toBe("Wed Nov 25 10:37:15 2026")
    expect(flow.id).toBe(3)
  })

  it("reads the [USERSPACE] suffix with and without progname, and the old bare form", () => {
    const base =
      "[DESTROY] udp      17 src=127.0.0.1 dst=127.0.0.2 sport=1 dport=2 src=127.0.0.2 dst=127.0.0.1 sport=2 dport=1 id=4"
    expect(ok(parseEventLine(`${base} [USERSPACE] portid=77 progname=conntrack`)).userspace).toStrictEqual({
      portid: 77,
      progname: "conntrack"
    })
    expect(ok(parseEventLine(`${base} [USERSPACE] portid=77`)).userspace).toStrictEqual({ portid: 77 })
    expect(ok(parseEventLine(`${base} [USERSPACE]`)).userspace).toStrictEqual({})
    expect(ok(parseEventLine(base)).userspace).toBeUndefined()
  })

  it("reads every optional field, and flags in any position", () => {
    const flow = ok(
      parseEventLine(
        " [UPDATE] tcp 6 10 ESTABLISHED [HW_OFFLOAD] src=::1 dst=::2 sport=1 dport=2 zone-orig=4 packets=1 bytes=2 src=::2 dst=::1 sport=2 dport=1 zone-reply=5 packets=3 bytes=4 mark=1 secmark=2 secctx=system_u:object_r:unlabeled_t:s0 zone=6 delta-time=7 helper=ftp use=8 id=9 labels=a,b newfield=whatever"
      )
    )
    expect(flow).toStrictEqual({
      type: "UPDATE",
      proto: "tcp",
      protonum: 6,
      timeout: 10,
      state: "ESTABLISHED",
      family: "ipv6",
      hwOffload: true,
      original: { src: "::1", dst: "::2", sport: 1, dport: 2, zone: 4, packets: 1, bytes: 2 },
      reply: { src: "::2", dst: "::1", sport: 2, dport: 1, zone: 5, packets: 3, bytes: 4 },
      mark: 1,
      secmark: 2,
      secctx: "system_u:object_r:unlabeled_t:s0",
      zone: 6,
      deltaTime: 7,
      helper: "ftp",
      use: 8,
      id: 9,
      labels: ["a", "b"]
    })
  })

  it("reads GRE keys", () => {
    const flow = ok(
      parseEventLine(
        "    [NEW] gre      47 600 src=127.0.0.1 dst=127.0.0.2 srckey=0x10 dstkey=0x20 [UNREPLIED] src=127.0.0.2 dst=127.0.0.1 srckey=0x20 dstkey=0x10 mark=0 id=3932767540"
      )
    )
    expect(flow.original).toMatchObject({ srckey: 16, dstkey: 32 })
    expect(flow.reply).toMatchObject({ srckey: 32, dstkey: 16 })
  })

  it("needs an event type, and the dump parser refuses one", () => {
    const line =
      "tcp      6 431999 ESTABLISHED src=::1 dst=::1 sport=37838 dport=8084 src=::1 dst=::1 sport=8084 dport=37838 [ASSURED] mark=0 use=1 id=1983568462"
    expect(reason(parseEventLine(line))).toMatch(/no event type/)
    expect(ok(parseDumpLine(line)).id).toBe(1983568462)
    expect(reason(parseDumpLine(`    [NEW] ${line}`))).toMatch(/event line/)
  })
})

describe("lines cut at 1023 bytes", () => {
  const head =
    "    [NEW] tcp      6 120 SYN_SENT src=127.0.0.1 dst=127.0.0.1 sport=1 dport=2 [UNREPLIED] src=127.0.0.1 dst=127.0.0.1 sport=2 dport=1 secctx="
  const cut = (tail: string) => {
    const line = head + "x".repeat(MAX_FLOW_TEXT - head.length - tail.length) + tail
    expect(line.length).toBe(MAX_FLOW_TEXT)
    return line
  }

  it("drops the cut last field and never invents an id", () => {
    const flow = ok(parseEventLine(cut(" id=12")))
    expect(flow.truncated).toBe(true)
    expect(flow.id).toBeUndefined()
    expect(flow.original).toMatchObject({ sport: 1, dport: 2 })
  })

  it("keeps what is complete, and the [USERSPACE] suffix printed after the cut", () => {
    const flow = ok(parseEventLine(`${cut(" mark=1 id=1")} [USERSPACE] portid=5`))
    expect(flow.mark).toBe(1)
    expect(flow.id).toBeUndefined()
    expect(flow.userspace).toStrictEqual({ portid: 5 })
  })

  it("fails clearly when the cut falls inside a tuple", () => {
    const line =
      `    [NEW] tcp      6 120 SYN_SENT src=127.0.0.1 dst=127.0.0.1 sport=1 dport=2 labels=${"a,".repeat(500)} src=127.0.0.1 dst=127.0.0.1 sport=2 dport=1 id=3`.slice(
        0,
        MAX_FLOW_TEXT
      )
    expect(reason(parseEventLine(line))).toMatch(/no reply tuple \(the line was cut at 1023 bytes\)/)
  })

  it("leaves a shorter line alone", () => {
    const line = cut(" id=12").slice(0, -10) + " id=12"
    expect(ok(parseEventLine(line)).id).toBe(12)
    expect(ok(parseEventLine(line)).truncated).toBeUndefined()
  })
})

describe("malformed lines are errors that name the reason", () => {
  const cases: ReadonlyArray<[string, RegExp]> = [
    ["", /empty line/],
    ["   ", /empty line/],
    ["conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.", /unknown protocol name: conntrack/],
    ["tcp 17 1 src=1.2.3.4 dst=1.2.3.4 sport=1 dport=2 src=1.2.3.4 dst=1.2.3.4 sport=2 dport=1", /number 6, not 17/],
    ["tcp 6 1 src=1.2.3.4 dst=1.2.3.4 sport=1 dport=2", /no reply tuple/],
    ["tcp 6 1 src=1.2.3.4 dst=1.2.3.4 src=1.2.3.4 dst=1.2.3.4", /no sport=\/dport= in the original tuple/],
    ["tcp 6 1 src=1.2.3.999 dst=1.2.3.4 sport=1 dport=2 src=1.2.3.4 dst=1.2.3.4 sport=2 dport=1", /bad address/],
    ["tcp 6 1 src=1.2.3.4 dst=::1 sport=1 dport=2 src=1.2.3.4 dst=1.2.3.4 sport=2 dport=1", /bad address in dst/],
    [
      "tcp 6 1 src=1.2.3.4 dst=1.2.3.4 sport=70000 dport=2 src=1.2.3.4 dst=1.2.3.4 sport=2 dport=1",
      /port out of range/
    ],
    [
      "tcp 6 1 src=1.2.3.4 dst=1.2.3.4 sport=1 dport=2 src=1.2.3.4 dst=1.2.3.4 sport=2 dport=1 id=x",
      /bad number in id=x/
    ],
    ["tcp 6 1 sport=1 src=1.2.3.4 dst=1.2.3.4 dport=2 src=1.2.3.4 dst=1.2.3.4 sport=2 dport=1", /sport= before src=/],
    [
      "udp 17 1 src=1.2.3.4 dst=1.2.3.4 sport=1 dport=2 src=1.2.3.4 dst=1.2.3.4 sport=2 dport=1 src=1.1.1.1",
      /third src=/
    ],
    [
      "ipv6     10 udp 17 1 src=1.2.3.4 dst=1.2.3.4 sport=1 dport=2 src=1.2.3.4 dst=1.2.3.4 sport=2 dport=1",
      /says ipv6/
    ],
    ["tcp 6 1 established src=1.2.3.4", /bad state/],
    ["tcp 6 1 ESTABLISHED garbage src=1.2.3.4", /unexpected word: garbage/]
  ]
  for (const [line, expected] of cases) {
    it(JSON.stringify(line.slice(0, 60)), () => {
      expect(reason(parseDumpLine(line))).toMatch(expected)
    })
  }

  it("carries the line in the error", () => {
    const result = parseDumpLine("nonsense")
    expect(Either.isLeft(result) && result.left.line).toBe("nonsense")
    expect(Either.isLeft(result) && result.left._tag).toBe("LineParseError")
  })
})

describe("properties", () => {
  it("parse(formatDumpLine(flow)) is the flow, for every protocol and field", () => {
    fc.assert(
      fc.property(Arb.flow(fc.constant(undefined)), (flow) => {
        expect(ok(parseDumpLine(formatDumpLine(flow)))).toStrictEqual(flow)
        expect(ok(parseDumpLine(formatDumpLine(flow, { extended: true })))).toStrictEqual(flow)
      }),
      { numRuns: 2000 }
    )
  })

  it("parse(formatEventLine(flow)) is the flow, for every event type", () => {
    fc.assert(
      fc.property(Arb.flow(fc.constantFrom("NEW", "UPDATE", "DESTROY")), (flow) => {
        expect(ok(parseEventLine(formatEventLine(flow)))).toStrictEqual(flow)
      }),
      { numRuns: 2000 }
    )
  })

  it("gives the same flow with { compact: true }", () => {
    fc.assert(
      fc.property(Arb.flow(fc.constant(undefined)), (flow) => {
        const line = formatDumpLine(flow)
        expect(ok(parseLine(line, "dump", { compact: true }))).toStrictEqual(ok(parseLine(line, "dump")))
      }),
      { numRuns: 500 }
    )
  })

  it("formats the real lines back as conntrack printed them", () => {
    for (const { line, format } of realLines.filter((l) => !l.line.includes("ipv4") && !l.line.includes("ipv6"))) {
      const flow = ok(parseLine(line, format))
      expect(format === "dump" ? formatDumpLine(flow) : formatEventLine(flow)).toBe(line)
    }
  })

  const mutation = fc.oneof(
    fc.record({ kind: fc.constant("cut" as const), at: fc.nat() }),
    fc.record({ kind: fc.constant("duplicate" as const), at: fc.nat(), len: fc.nat({ max: 80 }) }),
    fc.record({ kind: fc.constant("swap" as const), a: fc.nat(), b: fc.nat() }),
    fc.record({
      kind: fc.constant("garbage" as const),
      at: fc.nat(),
      bytes: fc.string({ unit: "binary", maxLength: 20 })
    }),
    fc.record({ kind: fc.constant("huge" as const), times: fc.integer({ min: 2, max: 400 }) })
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
      case "garbage": {
        const at = m.at % (line.length + 1)
        return line.slice(0, at) + m.bytes + line.slice(at)
      }
      case "huge":
        return line.length > 20_000 ? line : line.repeat(m.times)
    }
  }

  // parseLine turns anything the parser throws into an "internal parser failure" reason: none may appear.
  const noInternalFailure = (result: ReturnType<typeof parseLine>) => {
    if (Either.isLeft(result)) expect(result.left.reason).not.toMatch(/internal parser failure/)
  }

  it("mutated real lines get a flow or a reason of their own, never an internal failure or an id the line does not hold", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...realLines),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        ({ line, format }, mutations) => {
          const mutated = mutations.reduce(mutate, line)
          const result = parseLine(mutated, format)
          noInternalFailure(result)
          if (Either.isRight(result) && result.right.id !== undefined) {
            expect(mutated).toContain(`id=${result.right.id}`)
          }
        }
      ),
      { numRuns: 5000 }
    )
  })

  it("arbitrary strings and bytes get a reason of their own, never an internal failure", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 2000 }), fc.boolean(), (s, events) => {
        noInternalFailure(parseLine(s, events ? "events" : "dump"))
      }),
      { numRuns: 5000 }
    )
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.boolean(), (bytes, events) => {
        const reasons: Array<string> = []
        const decoder = makeDecoder(events ? "events" : "dump", {
          flow: () => {},
          error: (e) => reasons.push(e.reason)
        })
        decoder.push(bytes)
        decoder.end()
        for (const reason of reasons) expect(reason).not.toMatch(/internal parser failure/)
      }),
      { numRuns: 5000 }
    )
  })
})
