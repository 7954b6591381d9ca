// Benchmark 1: parse speed in-process and as a whole process, the new byte parser next to the old string parser
// (src/internal/reference.ts) and to reading+splitting the same file, all in the same run; and heap bytes per flow
// held.
import * as child from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Either from "effect/Either"
import { LineParseError } from "../src/Errors.js"
import type { Flow } from "../src/Flow.js"
import { parseReference } from "../src/internal/reference.js"
import { type LineFormat, makeDecoder } from "../src/Parser.js"
import { writeCorpus } from "./corpus.js"
import { fmt, gc, median, type Row, seconds } from "./stats.js"

// Each way reads as its command did: `parse` reads 1 MiB chunks (a stream of 64 KiB chunks costs the byte parser
// about 0.2 µs a line more here); the old command read 64 KiB chunks (1 MiB ones slow its decode+split 2-3x).
const CHUNK = 1 << 20
const OLD_CHUNK = 1 << 16

/** Reads `file` in 64 KiB chunks, decodes and splits it into lines, handing each to `onLine` (the old way). */
const eachLine = async (file: string, onLine: (line: string) => void): Promise<void> => {
  const decoder = new TextDecoder()
  let rest = ""
  for await (const chunk of fs.createReadStream(file, { highWaterMark: OLD_CHUNK })) {
    const text = rest + decoder.decode(chunk as Buffer, { stream: true })
    let start = 0
    let nl = text.indexOf("\n")
    while (nl !== -1) {
      onLine(text.slice(start, nl))
      start = nl + 1
      nl = text.indexOf("\n", start)
    }
    rest = text.slice(start)
  }
  if (rest !== "") onLine(rest)
}

/** Reads `file` in 1 MiB chunks (as `parse` does) and hands each to `onChunk`. */
const eachChunk = async (file: string, onChunk: (chunk: Buffer) => void): Promise<void> => {
  for await (const chunk of fs.createReadStream(file, { highWaterMark: CHUNK })) onChunk(chunk as Buffer)
}

/** The old `parseLine`: the string parser, its result as an Either. */
const referenceLine = (line: string, format: LineFormat, compact: boolean): Either.Either<Flow, LineParseError> => {
  const result = parseReference(line, format === "events", compact)
  return typeof result === "string" ? Either.left(new LineParseError({ line, reason: result })) : Either.right(result)
}

/** Parses `file` with the byte decoder; the number of flows and of errors. */
const decodeFile = async (file: string, format: LineFormat, onFlow: (flow: Flow) => void, compact = false) => {
  let failed = 0
  const decoder = makeDecoder(format, { flow: onFlow, error: () => failed++ }, { compact })
  await eachChunk(file, (chunk) => decoder.push(chunk))
  decoder.end()
  return failed
}

interface InProcess {
  readonly format: LineFormat
  readonly lines: number
  readonly split: number
  readonly byteSplit: number
  readonly reference: number
  readonly parser: number
}

const timed = async (runs: Array<number>, f: () => Promise<number>, lines: number, what: string) => {
  const start = process.hrtime.bigint()
  const n = await f()
  runs.push(seconds(start))
  if (n !== lines) throw new Error(`${what} saw ${n} good lines, expected ${lines}`)
}

const inProcess = async (file: string, format: LineFormat, lines: number, runs: number): Promise<InProcess> => {
  const split: Array<number> = []
  const byteSplit: Array<number> = []
  const reference: Array<number> = []
  const parser: Array<number> = []
  for (let r = 0; r < runs; r++) {
    await timed(
      split,
      async () => {
        let n = 0
        await eachLine(file, () => n++)
        return n
      },
      lines,
      "read+split"
    )
    await timed(
      byteSplit,
      async () => {
        let n = 0
        await eachChunk(file, (chunk) => {
          for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) n++
        })
        return n
      },
      lines,
      "read+indexOf"
    )
    await timed(
      reference,
      async () => {
        let n = 0
        await eachLine(file, (line) => {
          if (Either.isRight(referenceLine(line, format, false))) n++
        })
        return n
      },
      lines,
      "the reference parser"
    )
    await timed(
      parser,
      async () => {
        let n = 0
        const failed = await decodeFile(file, format, () => n++)
        return failed === 0 ? n : -failed
      },
      lines,
      "the byte parser"
    )
  }
  const perSecond = (xs: Array<number>) => lines / median(xs)
  return {
    format,
    lines,
    split: perSecond(split),
    byteSplit: perSecond(byteSplit),
    reference: perSecond(reference),
    parser: perSecond(parser)
  }
}

/** Seconds `node script args` takes as a whole process, checking what it prints. */
const processSeconds = (args: ReadonlyArray<string>, expected: string): number => {
  const start = process.hrtime.bigint()
  const run = child.spawnSync(process.execPath, args, { encoding: "utf8" })
  const took = seconds(start)
  if (run.stdout.trim() !== expected) throw new Error(`${args.join(" ")} printed ${run.stdout}${run.stderr}`)
  return took
}

const here = path.dirname(new URL(import.meta.url).pathname)
const bin = path.join(here, "..", "src", "bin.js")
const oldParse = path.join(here, "parse-reference.js")

const wholeProcess = (file: string, format: LineFormat, lines: number, runs: number) => {
  const expected = `parsed ${lines}, failed 0`
  const fresh: Array<number> = []
  const old: Array<number> = []
  // Startup and exit alone: the same commands on an empty file.
  const empty = `${file}.empty`
  fs.writeFileSync(empty, "")
  const freshEmpty: Array<number> = []
  const oldEmpty: Array<number> = []
  try {
    for (let r = 0; r < runs; r++) {
      fresh.push(processSeconds([bin, "parse", "--format", format, "--count", file], expected))
      old.push(processSeconds([oldParse, format, file], expected))
      freshEmpty.push(processSeconds([bin, "parse", "--format", format, "--count", empty], "parsed 0, failed 0"))
      oldEmpty.push(processSeconds([oldParse, format, empty], "parsed 0, failed 0"))
    }
  } finally {
    fs.rmSync(empty, { force: true })
  }
  return {
    fresh: lines / median(fresh),
    old: lines / median(old),
    freshSeconds: median(fresh),
    oldSeconds: median(old),
    freshStartup: median(freshEmpty),
    oldStartup: median(oldEmpty)
  }
}

/** Heap bytes per flow for `count` parsed dump flows held in an array (after GC). */
export const heapPerFlow = async (count: number, how: "byte" | "byte-compact" | "reference-compact") => {
  const file = path.join(os.tmpdir(), `effect-conntrack-bench-${process.pid}-heap.txt`)
  writeCorpus(file, "dump", count)
  try {
    gc()
    const before = process.memoryUsage().heapUsed
    const flows: Array<Flow> = []
    if (how === "reference-compact") {
      await eachLine(file, (line) => {
        const result = referenceLine(line, "dump", true)
        if (Either.isRight(result)) flows.push(result.right)
      })
    } else {
      await decodeFile(file, "dump", (flow) => flows.push(flow), how === "byte-compact")
    }
    gc()
    const after = process.memoryUsage().heapUsed
    if (flows.length !== count) throw new Error(`kept ${flows.length} flows, expected ${count}`)
    return { perFlow: (after - before) / count, rss: process.memoryUsage().rss }
  } finally {
    fs.rmSync(file, { force: true })
  }
}

const TARGET = 650_000
const HEAP_TARGET = 400

export const parserBenchmark = async (lines: number, runs: number): Promise<ReadonlyArray<Row>> => {
  const rows: Array<Row> = []
  console.log("parser: the machine is shared with other work; compare figures only within this run")
  for (const format of ["dump", "events"] as const) {
    const file = path.join(os.tmpdir(), `effect-conntrack-bench-${process.pid}-${format}.txt`)
    writeCorpus(file, format, lines)
    try {
      const r = await inProcess(file, format, lines, runs)
      console.log(
        `parser ${format.padEnd(6)}: byte parser ${fmt(r.parser)} lines/s, old string parser ${fmt(r.reference)} lines/s (${fmt(r.parser / r.reference, 2)}x), read+decode+split (64 KiB chunks) ${fmt(r.split)} lines/s, read+indexOf (1 MiB chunks) ${fmt(r.byteSplit)} lines/s (target >= ${fmt(TARGET)}) [in-process, file read included, median of ${runs}, ${fmt(lines)} rich lines]`
      )
      const processRuns = Math.min(runs, 3)
      const p = wholeProcess(file, format, lines, processRuns)
      console.log(
        `parser ${format.padEnd(6)}: whole process \`parse --count\`: ${fmt(p.fresh)} lines/s, the old decodeText+splitLines+string parser ${fmt(p.old)} lines/s (${fmt(p.fresh / p.old, 2)}x) [median of ${processRuns}]`
      )
      console.log(
        `parser ${format.padEnd(6)}: whole process, startup and exit (an empty file): ${fmt(p.freshStartup, 2)} s of ${fmt(p.freshSeconds, 2)} s; the old one ${fmt(p.oldStartup, 2)} s of ${fmt(p.oldSeconds, 2)} s [median of ${processRuns}]`
      )
      rows.push({
        benchmark: `1. Parser, ${fmt(lines)} rich ${format} lines, in-process`,
        figure: `${fmt(r.parser)} lines/s (file read included)`,
        baseline: `old parser ${fmt(r.reference)} lines/s (${fmt(r.parser / r.reference, 2)}x); read+split ${fmt(r.split)} lines/s`,
        target: `>= ${fmt(TARGET)} lines/s`,
        met: r.parser >= TARGET
      })
      rows.push({
        benchmark: `1. Parser, ${fmt(lines)} rich ${format} lines, \`parse --count\` as a process`,
        figure: `${fmt(p.fresh)} lines/s`,
        baseline: `old parser as a process ${fmt(p.old)} lines/s: ${fmt(p.fresh / p.old, 2)}x`,
        target: ">= 3x the Go decoder (about the old parser's figure)",
        met: p.fresh >= 3 * p.old
      })
    } finally {
      fs.rmSync(file, { force: true })
    }
  }
  const compact = await heapPerFlow(262_144, "byte-compact")
  const raw = await heapPerFlow(262_144, "byte")
  const old = await heapPerFlow(262_144, "reference-compact")
  console.log(
    `parser heap: ${fmt(compact.perFlow)} bytes per held flow with { compact: true } (as the walker keeps them), ${fmt(raw.perFlow)} without, old string parser with compact ${fmt(old.perFlow)} (target <= ${HEAP_TARGET}) [262,144 dump flows, after GC; RSS ${fmt(compact.rss / 2 ** 20)} MiB]`
  )
  rows.push({
    benchmark: "1. Parser, heap per held flow (262,144 dump flows)",
    figure: `${fmt(compact.perFlow)} B with { compact: true }`,
    baseline: `${fmt(raw.perFlow)} B without; old parser ${fmt(old.perFlow)} B`,
    target: `<= ${HEAP_TARGET} B`,
    met: compact.perFlow <= HEAP_TARGET
  })
  return rows
}
