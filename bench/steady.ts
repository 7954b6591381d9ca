// Benchmark 5b: the walker's CPU per event under steady load, where conntrack -E writes each event as it happens and
// a read holds a few lines (the bulk replay of benchmark 5 folds hundreds of events a read). Next to it, in the same
// run: Node only reading the same writes, and what waking an idle Node process costs on this machine.
import * as child from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Metric from "effect/Metric"
import * as Metrics from "../src/Metrics.js"
import { writeLifecycleCorpus } from "./corpus.js"
import { counter, startWalker } from "./live.js"
import { fmt, type Row } from "./stats.js"

const writer = path.join(import.meta.dirname, "paced-writer.js")

/** CPU seconds of this process so far (all its threads). */
const cpuSeconds = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

const eventCounters = (["NEW", "UPDATE", "DESTROY"] as const).map((type) => Metric.tagged(Metrics.events, "type", type))
const eventsFolded = () => eventCounters.reduce((n, c) => n + counter(c), 0)

/**
 * CPU µs per line while `lines()` goes from a fifth of `count` (the warm-up) to all of it, polled every 100 ms (the
 * polling is part of what is measured, and costs the same on both sides).
 */
const measure = async (count: number, lines: () => number) => {
  await until(() => lines() >= count / 5)
  const from = lines()
  const cpu = cpuSeconds()
  await until(() => lines() >= count)
  return ((cpuSeconds() - cpu) * 1e6) / (lines() - from)
}

/** Polls `check` every 100 ms, for at most two minutes. */
const until = async (check: () => boolean) => {
  const end = Date.now() + 120_000
  while (!check()) {
    if (Date.now() > end) throw new Error("timed out waiting for the paced lines")
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** Node reading the paced writes and only counting the lines: CPU µs a line, and lines a read. */
const rawPipe = async (corpus: string, count: number, rate: number) => {
  const p = child.spawn(process.execPath, [writer, corpus, String(rate)], { stdio: ["ignore", "pipe", "ignore"] })
  let lines = 0
  let reads = 0
  p.stdout.on("data", (chunk: Buffer) => {
    reads++
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++
  })
  try {
    const perLine = await measure(count, () => lines)
    return { perLine, linesPerRead: lines / reads }
  } finally {
    p.kill()
  }
}

/** The walker folding the paced writes of a fake conntrack -E: CPU µs an event. */
const walker = async (corpus: string, count: number, rate: number) => {
  const fake = path.join(os.tmpdir(), `effect-conntrack-bench-${process.pid}-steady.sh`)
  try {
    fs.writeFileSync(
      fake,
      [
        "#!/bin/sh",
        'case " $* " in',
        '*" -E "*) echo "NOTICE: Netlink socket buffer size has been set to 8388608 bytes." >&2',
        `  '${process.execPath}' '${writer}' '${corpus}' ${rate}`,
        "  exec sleep infinity ;;",
        '*) echo "conntrack v1.4.7 (conntrack-tools): 0 flow entries have been shown." >&2 ;;',
        "esac",
        ""
      ].join("\n"),
      { mode: 0o755 }
    )
    // Counted from before the walker starts: events folded while it dumps count too.
    const start = eventsFolded()
    const w = await startWalker({ binary: fake })
    try {
      return await measure(count, () => eventsFolded() - start)
    } finally {
      await w.close()
    }
  } finally {
    fs.rmSync(fake, { force: true })
  }
}

/** CPU µs a Node process spends to wake on a timer every millisecond and do nothing (the machine's wakeup cost). */
const wakeupCost = () => {
  const script =
    "const n = 2000; let k = 0; const c = process.cpuUsage(); const h = setInterval(() => { if (++k === n) { " +
    "clearInterval(h); const u = process.cpuUsage(c); console.log((u.user + u.system) / n) } }, 1)"
  const run = child.spawnSync(process.execPath, ["-e", script], { encoding: "utf8" })
  return Number(run.stdout.trim())
}

export const steadyBenchmark = async (rate = 4000, seconds = 10): Promise<ReadonlyArray<Row>> => {
  const count = rate * seconds
  const corpus = path.join(os.tmpdir(), `effect-conntrack-bench-${process.pid}-steady.txt`)
  writeLifecycleCorpus(corpus, count)
  try {
    const raw = await rawPipe(corpus, count, rate)
    const folded = await walker(corpus, count, rate)
    const wakeup = wakeupCost()
    console.log(
      `steady: at ${fmt(rate)} events/s written a line at a time (${fmt(raw.linesPerRead, 1)} lines a read when Node alone reads them), the walker used ${fmt(folded, 1)} CPU µs an event; Node only reading the same pipe ${fmt(raw.perLine, 1)} µs a line; an idle Node process woken every millisecond spends ${fmt(wakeup)} µs a wakeup here`
    )
    return [
      {
        benchmark: `5b. Events at a steady ${fmt(rate)}/s, each written as it happens (${fmt(raw.linesPerRead, 1)} lines a read, as Node alone read them)`,
        figure: `${fmt(folded, 1)} CPU µs an event (${fmt((folded * rate) / 1e4, 1)}% of a CPU)`,
        baseline: `Node only reading the same pipe: ${fmt(raw.perLine, 1)} µs a line; waking an idle Node process: ${fmt(wakeup)} µs`,
        target: "",
        met: true
      }
    ]
  } finally {
    fs.rmSync(corpus, { force: true })
  }
}
