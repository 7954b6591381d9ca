// The byte API: conntrack's stdout in chunks, lines found and parsed in place, lines longer than conntrack prints cut
// off while reading; through the decoder, the `parse` command and the Conntrack stream.
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Metric from "effect/Metric"
import * as Stream from "effect/Stream"
import { run } from "../src/Cli.js"
import * as Conntrack from "../src/Conntrack.js"
import { Stdin } from "../src/cli/Input.js"
import type { Flow } from "../src/Flow.js"
import { formatDumpLine } from "../src/Format.js"
import { MAX_LINE_BYTES } from "../src/Lines.js"
import * as Metrics from "../src/Metrics.js"
import { type LineFormat, makeDecoder, parseLine } from "../src/Parser.js"
import * as Scripted from "../src/testing.js"
import { recordingConsole } from "./support/console.js"

const dumpLine =
  "tcp      6 431999 ESTABLISHED src=::1 dst=::1 sport=37838 dport=8084 src=::1 dst=::1 sport=8084 dport=37838 [ASSURED] mark=0 use=1 id=1983568462"

const decode = (chunks: Iterable<Uint8Array>, format: LineFormat = "dump") => {
  const out: Array<{ line: number; flow?: Flow; reason?: string; text?: string }> = []
  const decoder = makeDecoder(format, {
    flow: (flow, line) => out.push({ line, flow }),
    error: (error, line) => out.push({ line, reason: error.reason, text: error.line })
  })
  for (const chunk of chunks) decoder.push(chunk)
  decoder.end()
  return out
}

const encode = (s: string) => new TextEncoder().encode(s)

/** `size` bytes of "x" without a newline, as `count` chunks that are all the same buffer. */
function* hugeLine(size: number, chunk = 1 << 16): Generator<Uint8Array> {
  const bytes = new Uint8Array(chunk).fill(120)
  for (let sent = 0; sent < size; sent += chunk) yield bytes.subarray(0, Math.min(chunk, size - sent))
}

describe("makeDecoder", () => {
  it("gives the flows and errors of parseLine, with line numbers, blank lines skipped but counted", () => {
    const text = `${dumpLine}\nnot a flow\n\n   \n${dumpLine}\r\n    [NEW] ${dumpLine}`
    const out = decode([encode(text)])
    expect(out.map((o) => o.line)).toStrictEqual([1, 2, 5, 6])
    expect(out[0]?.flow).toStrictEqual(Either.getOrThrow(parseLine(dumpLine, "dump")))
    expect(out[1]).toMatchObject({ reason: "unknown protocol name: not", text: "not a flow" })
    expect(out[2]?.flow?.id).toBe(1983568462)
    expect(out[3]?.reason).toMatch(/an event line/)
  })

  it("reads a 20 MB line without a newline, split over many chunks, as one error saying it is too long", () => {
    const size = 20 * 1024 * 1024
    const out = decode([encode(`${dumpLine}\n`), ...hugeLine(size), encode(`\n${dumpLine}\n`)])
    expect(out).toHaveLength(3)
    expect(out[0]?.flow?.id).toBe(1983568462)
    expect(out[1]?.line).toBe(2)
    expect(out[1]?.reason).toBe(
      `line too long: ${size} bytes, more than conntrack prints (cut off after ${MAX_LINE_BYTES} bytes while reading)`
    )
    // The error keeps the start of the line only.
    expect(out[1]?.text).toBe("x".repeat(MAX_LINE_BYTES))
    expect(out[2]).toMatchObject({ line: 3, flow: { id: 1983568462 } })
  })

  it("reads the longest line conntrack prints whole: 1023 bytes, a timestamp and a [USERSPACE] suffix", () => {
    const head = `[1795597854.401955]\t    [NEW] tcp      6 120 SYN_SENT src=127.0.0.1 dst=127.0.0.1 sport=1 dport=2 [UNREPLIED] src=127.0.0.1 dst=127.0.0.1 sport=2 dport=1 secctx=`
    const body = head + "x".repeat(1023 + 21 - head.length - 5) + " id=1"
    const line = `${body} [USERSPACE] portid=4294967295 progname=conntrack-tools`
    const out = decode([encode(`${line}\n`)], "events")
    expect(out).toHaveLength(1)
    expect(out[0]?.flow).toMatchObject({ truncated: true, userspace: { portid: 4294967295 } })
  })

  it("decodes non-ASCII text as UTF-8, even when a chunk ends inside a character", () => {
    const line = `${dumpLine.replace("mark=0", "mark=0 secctx=système_u labels=é,\u{1F600}")}`
    const bytes = encode(`${line}\n`)
    const at = bytes.indexOf(0xc3) + 1
    const out = decode([bytes.subarray(0, at), bytes.subarray(at)])
    expect(out[0]?.flow).toStrictEqual(Either.getOrThrow(parseLine(line, "dump")))
    expect(out[0]?.flow).toMatchObject({ secctx: "système_u", labels: ["é", "\u{1F600}"] })
    const bad = decode([encode("tcp 6 1 é\n")])
    expect(bad[0]).toMatchObject({ reason: "bad state: é", text: "tcp 6 1 é" })
  })
})

describe("effect-conntrack parse", () => {
  it.effect("reports a 20 MB line as one bad line and parses the next", () =>
    Effect.gen(function* () {
      const recorded = recordingConsole()
      const input = Stream.fromIterable([
        encode(`${dumpLine}\n`),
        ...hugeLine(20 * 1024 * 1024),
        encode(`\n${dumpLine}\n`)
      ])
      const exit = yield* run(["node", "effect-conntrack", "parse", "--format", "dump"]).pipe(
        Effect.withConsole(recorded.console),
        Effect.provideService(Stdin, input),
        Effect.provide(NodeContext.layer),
        Effect.exit
      )
      expect(Exit.isFailure(exit)).toBe(true)
      expect(recorded.stdout().trim().split("\n")).toHaveLength(2)
      expect(recorded.stderr()).toBe(
        `line 2: line too long: ${20 * 1024 * 1024} bytes, more than conntrack prints (cut off after ${MAX_LINE_BYTES} bytes while reading)\n` +
          "effect-conntrack: 1 of 3 lines could not be parsed\n"
      )
    })
  )
})

describe("Conntrack.dump", () => {
  it.effect("skips a line longer than conntrack prints, logs and counts it, and gives the next flow", () =>
    Effect.gen(function* () {
      const flow = Scripted.tcpFlow({ id: 7, sport: 40001, dport: 80 })
      const logs: Array<string> = []
      const logger = Logger.make(({ message }) => logs.push(String(message)))
      const before = (yield* Metric.value(Metrics.parseErrors)).count
      const flows = yield* Conntrack.dump({ dieWithParent: false }).pipe(
        Stream.runCollect,
        Effect.provide(
          Layer.merge(
            Scripted.layer({ dump: [Scripted.dumpRun(["x".repeat(3 * MAX_LINE_BYTES), formatDumpLine(flow)])] }),
            Logger.replace(Logger.defaultLogger, logger)
          )
        )
      )
      expect(Chunk.toReadonlyArray(flows).map((f) => f.id)).toStrictEqual([7])
      expect((yield* Metric.value(Metrics.parseErrors)).count - before).toBe(1)
      expect(logs.filter((l) => l.includes("skipped a line"))).toHaveLength(1)
      expect(logs.find((l) => l.includes("skipped a line"))).toMatch(/line too long: 6144 bytes/)
    })
  )

  it.effect("hands on the flows a dump printed before it was killed, then fails with the signal", () =>
    Effect.gen(function* () {
      const ids: Array<number | undefined> = []
      const lines = Array.from({ length: 100 }, (_, k) => ({
        stdout: formatDumpLine(Scripted.tcpFlow({ id: k + 1, sport: 1024 + k, dport: 80 }))
      }))
      const error = yield* Conntrack.dump({ dieWithParent: false }).pipe(
        Stream.runForEach((f) => Effect.sync(() => ids.push(f.id))),
        Effect.flip,
        Effect.provide(Scripted.layer({ dump: [{ steps: [...lines, { killedBy: "SIGKILL" }] }] }))
      )
      expect(ids).toStrictEqual(Array.from({ length: 100 }, (_, k) => k + 1))
      expect(error).toMatchObject({ _tag: "ConntrackExited", signal: "SIGKILL" })
    })
  )
})
