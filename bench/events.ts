// Benchmark 5: events folded per second from a replayed event stream, against the pipe floor and against the
// fastest real conntrack -E seen here.
import * as child from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Metric from "effect/Metric"
import type { Flow } from "../src/Flow.js"
import * as FlowTable from "../src/FlowTable.js"
import * as Metrics from "../src/Metrics.js"
import { makeDecoder } from "../src/Parser.js"
import { burst, type Namespace, namespace, serve, waitFor } from "../test/kernel/netns.js"
import { writeLifecycleCorpus } from "./corpus.js"
import { bareEvents, counter, startWalker } from "./live.js"
import { fmt, gc, median, type Row, seconds } from "./stats.js"

/** A conntrack that dumps nothing and, as -E, says it listens and writes the corpus as fast as the pipe takes it. */
const fakeConntrack = (corpus: string) => {
  const file = path.join(os.tmpdir(), `effect-conntrack-bench-${process.pid}-fake.sh`)
  fs.writeFileSync(
    file,
    [
      "#!/bin/sh",
      'case " $* " in',
      '*" -E "*) echo "NOTICE: Netlink socket buffer size has been set to 8388608 bytes." >&2',
      `  cat ${corpus}`,
      "  exec sleep infinity ;;",
      '*) echo "conntrack v1.4.7 (conntrack-tools): 0 flow entries have been shown." >&2 ;;',
      "esac",
      ""
    ].join("\n"),
    { mode: 0o755 }
  )
  return file
}

/** The floor: this process reading the same corpus from the same kind of child through a pipe, counting lines. */
const pipeFloor = (corpus: string, count: number) =>
  new Promise<number>((resolve, reject) => {
    const start = process.hrtime.bigint()
    const p = child.spawn("cat", [corpus], { stdio: ["ignore", "pipe", "ignore"] })
    let n = 0
    p.stdout.on("data", (chunk: Buffer) => {
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) n++
    })
    p.on("close", () => (n === count ? resolve(seconds(start)) : reject(new Error(`read ${n} lines of ${count}`))))
  })

// The walker counts events by type. (Made once: a tagged metric made anew looks its key up in the registry at every
// read, which the polling below would pay.)
const eventCounters = (["NEW", "UPDATE", "DESTROY"] as const).map((type) => Metric.tagged(Metrics.events, "type", type))
const eventsFolded = () => eventCounters.reduce((n, c) => n + counter(c), 0)

/**
 * The walker's work split, in this process on the same corpus, as the walker meets it: each 64 KiB chunk parsed (the
 * decoder the walker uses), then its flows folded into the table (consumed, as the walker folds), each timed on its
 * own, in µs per event. GC lands in whichever was running when it struck.
 */
const split = (corpus: string, runs: number) => {
  const bytes = fs.readFileSync(corpus)
  const parse: Array<number> = []
  const fold: Array<number> = []
  for (let r = 0; r < runs; r++) {
    let flows: Array<Flow> = []
    const decoder = makeDecoder("events", { flow: (f) => flows.push(f), error: () => undefined }, { compact: true })
    let table = FlowTable.addReader(FlowTable.empty())[1]
    let parsing = 0n
    let folding = 0n
    let events = 0
    const foldParsed = () => {
      const start = process.hrtime.bigint()
      table = FlowTable.applyAll(table, flows, { now: Date.now(), changes: false, consume: true }).table
      folding += process.hrtime.bigint() - start
      events += flows.length
      flows = []
    }
    gc()
    const parsed = (read: () => void) => {
      const start = process.hrtime.bigint()
      read()
      parsing += process.hrtime.bigint() - start
      foldParsed()
    }
    for (let at = 0; at < bytes.length; at += 65536) parsed(() => decoder.push(bytes.subarray(at, at + 65536)))
    parsed(() => decoder.end())
    parse.push(Number(parsing) / 1e3 / events)
    fold.push(Number(folding) / 1e3 / events)
  }
  return { parse: median(parse), fold: median(fold) }
}

/** Events folded per second by the live walker, and CPU seconds it spent. */
const walkerRun = async (fake: string, count: number) => {
  const folded = eventsFolded()
  const errors = counter(Metrics.parseErrors)
  const cpu = process.cpuUsage()
  const start = process.hrtime.bigint()
  const walker = await startWalker({ binary: fake })
  try {
    await waitFor("the events folded", () => eventsFolded() - folded >= count, 600_000)
    const took = seconds(start)
    const used = process.cpuUsage(cpu)
    if (counter(Metrics.parseErrors) !== errors) throw new Error("replayed event lines failed to parse")
    return { took, cpu: (used.user + used.system) / 1e6 }
  } finally {
    await walker.close()
  }
}

/** Lines a bare conntrack -E in `ns` prints while `provoke` runs, and at what rate (first to last line). */
const eventRate = async (ns: Namespace, provoke: () => Promise<void>) => {
  const events = await bareEvents(ns)
  let n = 0
  let first = 0n
  let last = 0n
  events.proc.stdout?.on("data", (chunk: Buffer) => {
    last = process.hrtime.bigint()
    if (n === 0) first = last
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) n++
  })
  await provoke()
  let seen = -1
  await waitFor("the events to stop", () => {
    const quiet = n === seen
    seen = n
    return quiet
  })
  events.proc.kill("SIGTERM")
  return { events: n, perSecond: n / (Number(last - first) / 1e9), overflowed: events.overflowed() }
}

/** How fast the real conntrack -E writes: during a burst of loopback connections, and during a flood of inserts. */
const realEventRates = async (connections: number, inserts: number) => {
  const ns = namespace()
  try {
    await serve(ns, "127.0.0.1:9501")
    const traffic = await eventRate(ns, async () => {
      await burst(ns, "127.0.0.1", 9501, connections, 200)
    })
    const file = path.join(os.tmpdir(), `effect-conntrack-bench-${ns.name}-inserts.txt`)
    fs.writeFileSync(
      file,
      Array.from(
        { length: inserts },
        (_, i) =>
          `-I -p tcp -s 127.3.${i >> 8}.${i & 255} -d 127.4.0.1 --sport ${1024 + (i % 60000)} --dport 80 --state ESTABLISHED -t 600 -u SEEN_REPLY,ASSURED\n`
      ).join("")
    )
    try {
      // The best of three floods: how fast conntrack -E can write at most.
      let flood = await eventRate(ns, async () => {
        ns.run(["conntrack", "-R", file])
      })
      for (let k = 0; k < 2; k++) {
        ns.run(["conntrack", "-F"])
        const next = await eventRate(ns, async () => {
          ns.run(["conntrack", "-R", file])
        })
        if (next.perSecond > flood.perSecond) flood = next
      }
      return { traffic, flood }
    } finally {
      fs.rmSync(file, { force: true })
    }
  } finally {
    ns.close()
  }
}

export const eventsBenchmark = async (count: number, runs: number, kernel: boolean): Promise<ReadonlyArray<Row>> => {
  const corpus = path.join(os.tmpdir(), `effect-conntrack-bench-${process.pid}-events.txt`)
  writeLifecycleCorpus(corpus, count)
  const fake = fakeConntrack(corpus)
  try {
    const floors: Array<number> = []
    const took: Array<number> = []
    const cpu: Array<number> = []
    for (let r = 0; r < runs; r++) {
      floors.push(await pipeFloor(corpus, count))
      const run = await walkerRun(fake, count)
      took.push(run.took)
      cpu.push(run.cpu)
    }
    const perSecond = count / median(took)
    const floor = count / median(floors)
    const cpuPer100k = median(cpu) / (count / 100_000)
    const alone = split(corpus, runs)
    console.log(
      `events: the walker folds ${fmt(perSecond)} events/s replayed from a fake conntrack -E (${fmt(count)} rich lines, whole connection lives) vs ${fmt(floor)} lines/s for this process only counting the lines of the same pipe: ${fmt(floor / perSecond, 1)}x slower than the pipe; ${fmt(cpuPer100k, 2)} CPU s per 100,000 events [median of ${runs}]`
    )
    console.log(
      `events: of the walker's ${fmt(cpuPer100k * 10, 2)} CPU µs an event, in this process on the same corpus: parsing ${fmt(alone.parse, 2)} µs, the fold ${fmt(alone.fold, 2)} µs (each 64 KiB chunk parsed, then folded; no reader walks: the deaths stay in the log), the rest (pipe, Effect, GC of what they keep) ${fmt(cpuPer100k * 10 - alone.parse - alone.fold, 2)} µs [median of ${runs}]`
    )
    let real: Awaited<ReturnType<typeof realEventRates>> | undefined
    if (kernel) {
      real = await realEventRates(10_000, 50_000)
      const { traffic: t, flood: f } = real
      console.log(
        `events: the real conntrack -E wrote ${fmt(t.perSecond)} events/s during a burst of 10,000 loopback connections${t.overflowed ? " (hit ENOBUFS)" : ""} and ${fmt(f.perSecond)} events/s at most (best of 3 floods of 50,000 entries inserted with conntrack -R)${f.overflowed ? " (hit ENOBUFS)" : ""}: the walker folds ${fmt(perSecond / t.perSecond, 1)}x and ${fmt(perSecond / f.perSecond, 2)}x those (target: faster than conntrack writes)`
      )
    }
    return [
      {
        benchmark: "5. Event throughput (fake conntrack -E, 1M lines)",
        figure: `${fmt(perSecond)} events/s folded; ${fmt(cpuPer100k, 2)} CPU s per 100k events (in-process, chunk by chunk: parse ${fmt(alone.parse, 2)} µs, fold ${fmt(alone.fold, 2)} µs an event)`,
        baseline:
          `pipe floor ${fmt(floor)} lines/s (${fmt(floor / perSecond, 1)}x)` +
          (real === undefined
            ? ""
            : `; real conntrack -E wrote ${fmt(real.traffic.perSecond)} events/s in a 10,000-connection burst, ${fmt(real.flood.perSecond)} events/s at most (insert flood)`),
        target: "drain faster than conntrack writes",
        met: real !== undefined && perSecond > real.flood.perSecond
      }
    ]
  } finally {
    fs.rmSync(corpus, { force: true })
    fs.rmSync(fake, { force: true })
  }
}
