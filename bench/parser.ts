// Benchmark 1: parse speed against reading and splitting the same file, and heap bytes per retained flow.

import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Either from "effect/Either"
import type { Flow } from "../src/Flow.js"
import { type LineFormat, parseLine } from "../src/Parser.js"
import { writeCorpus } from "./corpus.js"
import { fmt, gc, median, type Row, seconds } from "./stats.js"

/** Reads `file` in 64 KiB chunks, decodes and splits it into lines, handing each to `onLine`. */
const eachLine = async (file: string, onLine: (line: string) => void): Promise<void> => {
  const decoder = new TextDecoder()
  let rest = ""
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 16 })) {
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

export interface ParserFigures {
  readonly format: LineFormat
  readonly lines: number
  readonly splitPerSecond: number
  readonly parsePerSecond: number
  readonly ratio: number
}

const runFormat = async (format: LineFormat, lines: number, runs: number): Promise<ParserFigures> => {
  const file = path.join(os.tmpdir(), `effect-conntrack-bench-${process.pid}-${format}.txt`)
  writeCorpus(file, format, lines)
  try {
    const split: Array<number> = []
    const parse: Array<number> = []
    for (let r = 0; r < runs; r++) {
      let n = 0
      let start = process.hrtime.bigint()
      await eachLine(file, () => {
        n++
      })
      split.push(seconds(start))
      if (n !== lines) throw new Error(`split saw ${n} lines, expected ${lines}`)
      let failed = 0
      start = process.hrtime.bigint()
      await eachLine(file, (line) => {
        if (Either.isLeft(parseLine(line, format))) failed++
      })
      parse.push(seconds(start))
      if (failed > 0) throw new Error(`${failed} generated lines failed to parse`)
    }
    const splitPerSecond = lines / median(split)
    const parsePerSecond = lines / median(parse)
    return { format, lines, splitPerSecond, parsePerSecond, ratio: median(parse) / median(split) }
  } finally {
    fs.rmSync(file, { force: true })
  }
}

/** Heap bytes per flow for `count` parsed dump flows held in an array (after GC). */
export const heapPerFlow = async (count: number, compact: boolean): Promise<number> => {
  const file = path.join(os.tmpdir(), `effect-conntrack-bench-${process.pid}-heap.txt`)
  writeCorpus(file, "dump", count)
  try {
    gc()
    const before = process.memoryUsage().heapUsed
    const flows: Array<Flow> = []
    await eachLine(file, (line) => {
      const result = parseLine(line, "dump", { compact })
      if (Either.isRight(result)) flows.push(result.right)
    })
    gc()
    const after = process.memoryUsage().heapUsed
    if (flows.length !== count) throw new Error(`kept ${flows.length} flows, expected ${count}`)
    return (after - before) / count
  } finally {
    fs.rmSync(file, { force: true })
  }
}

export const parserBenchmark = async (lines: number, runs: number): Promise<ReadonlyArray<Row>> => {
  const results: Array<ParserFigures> = []
  for (const format of ["dump", "events"] as const) {
    const r = await runFormat(format, lines, runs)
    results.push(r)
    console.log(
      `parser ${format.padEnd(6)}: ${fmt(r.parsePerSecond)} lines/s parsed (file read included) vs ${fmt(r.splitPerSecond)} lines/s read+split baseline: ${fmt(r.ratio, 2)}x (target <= 2x) [median of ${runs}, ${fmt(lines)} lines]`
    )
  }
  const raw = await heapPerFlow(262_144, false)
  const compact = await heapPerFlow(262_144, true)
  console.log(
    `parser heap: ${fmt(compact)} bytes per retained flow parsed with { compact: true } (as the walker keeps them), ${fmt(raw)} bytes parsed without (strings still slices of the read chunks) [262,144 dump flows, after GC]`
  )
  const rows: Array<Row> = results.map((r) => ({
    benchmark: `1. Parser, ${fmt(r.lines)} rich ${r.format} lines`,
    figure: `${fmt(r.parsePerSecond)} lines/s (file read included)`,
    baseline: `read+split ${fmt(r.splitPerSecond)} lines/s: ${fmt(r.ratio, 2)}x`,
    target: "<= 2x",
    met: r.ratio <= 2
  }))
  rows.push({
    benchmark: "1. Parser, heap per retained flow (262,144 dump flows)",
    figure: `${fmt(compact)} B with { compact: true }`,
    baseline: `${fmt(raw)} B without`,
    target: "compact (no target)",
    met: compact < raw
  })
  return rows
}
