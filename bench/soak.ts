// Soak: memory of the real `effect-conntrack watch --json` under steady loopback churn, in a network namespace of
// its own. A client makes SOAK_RATE short connections a second (default 300; at most 256 open at once) for
// SOAK_MINUTES (default 10) and stops by itself; the watcher's RSS is sampled every 10 seconds and printed as a table.
// Judged flat when RSS grows less than 5% over the last half of the run (the last 5 minutes of 10): the median of
// the last minute against the median of the minute that starts that half (the baseline, measured in the same run),
// and the live heap too. A probe loaded into the watcher (node --import) reports at each sample its heap (total,
// used, and used just after the last major GC: the live heap), external memory and major GC count; SOAK_GC=1 forces
// a full GC before each sample instead (diagnostic: it changes how RSS behaves).
// With SOAK_HEAP=1 the watcher writes a heap snapshot at SOAK_HEAP_AT seconds (default a quarter of the run) and at
// the end, and the object kinds that grew most between them are printed (snapshots inflate RSS: not for figures).
//
//   npm run build && tsc -p tsconfig.bench.json && node dist-bench/bench/soak.js     (or BENCH_ONLY=soak npm run bench)
import * as child from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as url from "node:url"
import { bin, lines, traffic, unavailable, waitFor } from "../test/kernel/netns.js"
import { fmt, median, type Row } from "./stats.js"

const sh = (args: ReadonlyArray<string>, input?: string) => {
  const r = child.spawnSync(args[0] as string, args.slice(1), { input, encoding: "utf8" })
  if (r.status !== 0) throw new Error(`${args.join(" ")} failed: ${r.stderr}`)
  return r.stdout
}

// Short connections at a steady rate, bounded in flight; prints {"made","failed"} every 10 s and at the end.
const client = `
const net = require("node:net")
const [rate, seconds, port] = process.argv.slice(1).map(Number)
let made = 0, failed = 0, open = 0, credit = 0
const end = Date.now() + seconds * 1000
const report = () => console.log(JSON.stringify({ made, failed }))
const connect = () => {
  open++
  const s = net.connect({ host: "127.0.0.1", port })
  s.on("connect", () => s.write("x"))
  s.once("data", () => s.end())
  s.on("error", () => { failed++ })
  s.on("close", () => { open--; made++ })
}
const tick = setInterval(() => {
  if (Date.now() >= end) {
    clearInterval(tick)
    clearInterval(progress)
    const done = setInterval(() => { if (open === 0) { clearInterval(done); report() } }, 50)
    return
  }
  credit = Math.min(credit + rate / 100, rate)
  while (credit >= 1 && open < 256) { credit--; connect() }
}, 10)
const progress = setInterval(report, 10000)
`

// Loaded into the watcher (node --import): at each SIGWINCH it appends one JSON line of its memory to
// SOAK_PROBE_FILE, with the heap in use just after the last major (mark-compact) GC V8 chose to run: the live heap,
// seen without forcing anything. With SOAK_GC=1 it also forces a full GC first (diagnostic: changes RSS dynamics).
const probe = `
import * as fs from "node:fs"
import { PerformanceObserver, constants } from "node:perf_hooks"
import * as v8 from "node:v8"
const file = process.env.SOAK_PROBE_FILE
let majors = 0, afterMajor = Number.NaN
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (e.detail?.kind !== constants.NODE_PERFORMANCE_GC_MAJOR) continue
    majors++
    afterMajor = process.memoryUsage().heapUsed
  }
}).observe({ entryTypes: ["gc"] })
process.on("SIGWINCH", () => {
  const m = process.memoryUsage()
  let forced = Number.NaN
  if (process.env.SOAK_GC === "1" && typeof globalThis.gc === "function") {
    globalThis.gc()
    forced = process.memoryUsage().heapUsed
  }
  const spaces = {}
  for (const x of v8.getHeapSpaceStatistics()) spaces[x.space_name] = [x.space_size, x.space_used_size]
  const status = {}
  for (const [, k, v] of fs.readFileSync("/proc/self/status", "utf8").matchAll(/^(Rss\\w+):\\s+(\\d+) kB/gm)) status[k] = Number(v) * 1024
  fs.appendFileSync(file, JSON.stringify({ ...m, majors, afterMajor, forced, spaces, status }) + "\\n")
})
`

interface Probe {
  readonly rss: number
  readonly heapTotal: number
  readonly heapUsed: number
  readonly external: number
  readonly arrayBuffers: number
  readonly majors: number
  readonly afterMajor: number
  readonly forced: number
}

const probeOf = async (pid: number, file: string): Promise<Probe> => {
  const count = () =>
    fs.existsSync(file)
      ? fs
          .readFileSync(file, "utf8")
          .split("\n")
          .filter((l) => l !== "")
      : []
  const before = count().length
  process.kill(pid, "SIGWINCH")
  const line = await waitFor("the probe", () => count()[before], 10_000)
  const mb = (n: number | null) => (n === null ? Number.NaN : n / 1024 / 1024)
  const p = JSON.parse(line) as Record<keyof Probe, number | null>
  return {
    rss: mb(p.rss),
    heapTotal: mb(p.heapTotal),
    heapUsed: mb(p.heapUsed),
    external: mb(p.external),
    arrayBuffers: mb(p.arrayBuffers),
    majors: p.majors ?? 0,
    afterMajor: mb(p.afterMajor),
    forced: mb(p.forced)
  }
}

/** CPU seconds (user + system) a process used so far: /proc/PID/stat counts clock ticks, 100 a second here. */
const cpuOf = (pid: number): number => {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return (Number(fields[11]) + Number(fields[12])) / 100
}

const rssOf = (pid: number): number => {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8")
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN) / 1024
}

/** Total self size and count by object kind (constructor or type) in a V8 heap snapshot. */
const heapByKind = (file: string): Map<string, { size: number; count: number }> => {
  const snapshot = JSON.parse(fs.readFileSync(file, "utf8")) as {
    snapshot: { meta: { node_fields: Array<string>; node_types: [Array<string>] } }
    nodes: Array<number>
    strings: Array<string>
  }
  const fields = snapshot.snapshot.meta.node_fields
  const types = snapshot.snapshot.meta.node_types[0]
  const width = fields.length
  const [type, name, size] = [fields.indexOf("type"), fields.indexOf("name"), fields.indexOf("self_size")]
  const out = new Map<string, { size: number; count: number }>()
  for (let k = 0; k < snapshot.nodes.length; k += width) {
    const t = types[snapshot.nodes[k + type] as number] as string
    const kind = t === "object" || t === "closure" ? `${t} ${snapshot.strings[snapshot.nodes[k + name] as number]}` : t
    const was = out.get(kind) ?? { size: 0, count: 0 }
    out.set(kind, { size: was.size + (snapshot.nodes[k + size] as number), count: was.count + 1 })
  }
  return out
}

const snapshotOf = async (pid: number, dir: string, count: number): Promise<string> => {
  process.kill(pid, "SIGUSR2")
  return waitFor(
    "a heap snapshot",
    () => {
      const files = fs.readdirSync(dir).filter((f) => f.endsWith(".heapsnapshot"))
      if (files.length < count) return undefined
      const file = path.join(dir, files.sort()[count - 1] as string)
      // Written when its size stops changing.
      const a = fs.statSync(file).size
      const b = child.spawnSync("sleep", ["1"]) && fs.statSync(file).size
      return a === b && a > 0 ? file : undefined
    },
    120_000
  )
}

export const soakBenchmark = async (
  minutes = Number(process.env.SOAK_MINUTES ?? 10),
  rate = Number(process.env.SOAK_RATE ?? 300)
): Promise<ReadonlyArray<Row>> => {
  const name = `ect-hostile-soak-${process.pid}`
  const seconds = Math.round(minutes * 60)
  const heap = process.env.SOAK_HEAP === "1"
  // More node flags for the watcher, e.g. SOAK_NODE_ARGS=--max-old-space-size=64 to tell V8's headroom from growth.
  const nodeArgs = (process.env.SOAK_NODE_ARGS ?? "").split(/\s+/).filter((a) => a !== "")
  const heapAt = Number(process.env.SOAK_HEAP_AT ?? Math.round(seconds / 4 / 10) * 10)
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "effect-conntrack-soak-"))
  console.log(
    `\n## soak: watch --json under ${rate} connections/s for ${minutes} min (namespace ${name})${nodeArgs.length > 0 ? `, node ${nodeArgs.join(" ")}` : ""}, CONNTRACK_HEAP_GROWTH_PERCENT ${process.env.CONNTRACK_HEAP_GROWTH_PERCENT ?? "unset (the CLI's default)"}`
  )
  sh(["ip", "netns", "add", name])
  const spawned: Array<child.ChildProcess> = []
  const spawn = (args: ReadonlyArray<string>, options: child.SpawnOptions = {}) => {
    const p = child.spawn("ip", ["netns", "exec", name, ...args], { stdio: ["ignore", "pipe", "pipe"], ...options })
    spawned.push(p)
    return p
  }
  try {
    const run = (args: ReadonlyArray<string>, input?: string) => sh(["ip", "netns", "exec", name, ...args], input)
    run(["ip", "link", "set", "lo", "up"])
    run(
      ["nft", "-f", "-"],
      "table inet effect_conntrack_soak {\n  chain out { type filter hook output priority filter; ct state new counter; }\n}\n"
    )
    run(["sysctl", "-qw", "net.netfilter.nf_conntrack_events=1", "net.ipv4.ip_local_port_range=1024 65000"])

    const server = spawn(["node", traffic, "serve", "127.0.0.1:9300"])
    const serverOut = lines(server.stdout)
    await waitFor("the server", () => serverOut.includes("ready"))

    const probeModule = path.join(work, "probe.mjs")
    const probeFile = path.join(work, "probe.jsonl")
    fs.writeFileSync(probeModule, probe)
    const forceGc = process.env.SOAK_GC === "1"
    const watcher = spawn(
      [
        "node",
        ...nodeArgs,
        ...(heap ? ["--heapsnapshot-signal=SIGUSR2"] : []),
        ...(forceGc ? ["--expose-gc"] : []),
        "--import",
        url.pathToFileURL(probeModule).href,
        bin,
        "watch",
        "--json",
        "--interval",
        "1 second"
      ],
      { cwd: work, env: { ...process.env, SOAK_PROBE_FILE: probeFile } }
    )
    let walkedLines = 0
    watcher.stdout?.on("data", (b: Buffer) => {
      for (const c of b) if (c === 10) walkedLines++
    })
    const watcherErr = lines(watcher.stderr)
    await waitFor("the watcher's first walk", () => walkedLines > 0 || watcher.exitCode !== null, 30_000).catch(
      () => undefined
    )
    // `ip netns exec` execs the command: the pid is the watcher's.
    const pid = watcher.pid as number

    const churn = spawn(["node", "-e", client, String(rate), String(seconds), "9300"])
    const progress = lines(churn.stdout)
    const made = () => (JSON.parse(progress.at(-1) ?? '{"made":0}') as { made: number }).made

    const samples: Array<{ t: number; rss: number; live: number; made: number; entries: number }> = []
    const cpuAtStart = cpuOf(pid)
    let cpuAtEnd = cpuAtStart
    let majorsAtEnd = 0
    const started = Date.now()
    const snapshots: Array<string> = []
    const liveName = forceGc ? "heap after a forced GC" : "heap after the last major GC"
    console.log(
      `| t (s) | RSS (MB) | heap total (MB) | heap used (MB) | ${liveName} (MB) | major GCs | external (MB) | array buffers (MB) | connections made | conntrack entries |`
    )
    console.log("|---|---|---|---|---|---|---|---|---|---|")
    for (let t = 10; t <= seconds; t += 10) {
      await new Promise((r) => setTimeout(r, started + t * 1000 - Date.now()))
      if (watcher.exitCode !== null) throw new Error(`the watcher exited: ${watcherErr.slice(-5).join(" / ")}`)
      const entries = Number(run(["cat", "/proc/sys/net/netfilter/nf_conntrack_count"]).trim())
      const rss = rssOf(pid)
      const p = await probeOf(pid, probeFile)
      const sample = { t, rss, live: forceGc ? p.forced : p.afterMajor, made: made(), entries }
      samples.push(sample)
      cpuAtEnd = cpuOf(pid)
      majorsAtEnd = p.majors
      console.log(
        `| ${t} | ${fmt(rss, 1)} | ${fmt(p.heapTotal, 1)} | ${fmt(p.heapUsed, 1)} | ${fmt(sample.live, 1)} | ${p.majors} | ${fmt(p.external, 1)} | ${fmt(p.arrayBuffers, 1)} | ${fmt(sample.made)} | ${fmt(entries)} |`
      )
      if (heap && t === heapAt) snapshots.push(await snapshotOf(pid, work, 1))
    }
    if (heap) snapshots.push(await snapshotOf(pid, work, 2))
    await waitFor("the client to stop", () => churn.exitCode !== null, 60_000)

    // One sample swings by a few MB with garbage collections: compare the median of the minute that starts the
    // last half (the baseline) with the median of the last minute.
    const halfAt = samples.findIndex((s) => s.t >= seconds / 2)
    const baseline = median(samples.slice(halfAt, halfAt + 6).map((s) => s.rss))
    const end = median(samples.slice(-6).map((s) => s.rss))
    const last = samples.at(-1)
    const half = samples[halfAt]
    if (half === undefined || last === undefined) throw new Error("no samples")
    const growth = (end - baseline) / baseline
    const single = (last.rss - half.rss) / half.rss
    console.log(
      `RSS median ${fmt(baseline, 1)} MB over ${half.t}-${half.t + 50} s (baseline) -> median ${fmt(end, 1)} MB over the last minute: ${growth >= 0 ? "+" : ""}${fmt(growth * 100, 1)}% (single samples: ${fmt(half.rss, 1)} MB at ${half.t} s -> ${fmt(last.rss, 1)} MB at ${last.t} s, ${single >= 0 ? "+" : ""}${fmt(single * 100, 1)}%); first sample ${fmt(samples[0]?.rss ?? 0, 1)} MB; ${fmt(last.made)} connections, ${walkedLines} walked lines`
    )
    // The live heap: what the process keeps. Its growth is growth of our own objects, whatever V8's headroom does.
    const liveBase = median(samples.slice(halfAt, halfAt + 6).map((s) => s.live))
    const liveEnd = median(samples.slice(-6).map((s) => s.live))
    const liveGrowth = (liveEnd - liveBase) / liveBase
    console.log(
      `${liveName}: median ${fmt(liveBase, 1)} MB over ${half.t}-${half.t + 50} s -> median ${fmt(liveEnd, 1)} MB over the last minute: ${liveGrowth >= 0 ? "+" : ""}${fmt(liveGrowth * 100, 1)}%; first sample ${fmt(samples[0]?.live ?? 0, 1)} MB`
    )
    console.log(
      `watcher CPU: ${fmt(cpuAtEnd - cpuAtStart, 1)} s over ${seconds} s of churn (${fmt(((cpuAtEnd - cpuAtStart) / seconds) * 100, 1)}% of one CPU), ${majorsAtEnd} major GCs since it started`
    )
    const warnings = watcherErr.filter((l) => l.includes("level=WARN") || l.includes("level=ERROR"))
    console.log(`watcher log lines at warning or above: ${warnings.length}`)
    for (const line of warnings.slice(0, 8)) console.log(`  ${line.slice(0, 240)}`)

    if (heap && snapshots.length === 2) {
      const [a, b] = [heapByKind(snapshots[0] as string), heapByKind(snapshots[1] as string)]
      const total = (m: Map<string, { size: number }>) => [...m.values()].reduce((n, v) => n + v.size, 0)
      const grew = [...b]
        .map(([kind, now]) => {
          const was = a.get(kind) ?? { size: 0, count: 0 }
          return { kind, delta: now.size - was.size, counted: now.count - was.count, now }
        })
        .sort((x, y) => y.delta - x.delta)
        .slice(0, 15)
      console.log(
        `heap snapshots: ${fmt(total(a) / 1024 / 1024, 1)} MB at ${heapAt} s, ${fmt(total(b) / 1024 / 1024, 1)} MB at the end; growth by kind (self size, count):`
      )
      for (const { kind, delta, counted, now } of grew) {
        console.log(
          `  ${kind.slice(0, 60).padEnd(60)} ${delta >= 0 ? "+" : ""}${fmt(delta / 1024)} KiB, ${counted >= 0 ? "+" : ""}${fmt(counted)} objects (now ${fmt(now.size / 1024)} KiB, ${fmt(now.count)})`
        )
      }
    }
    return [
      {
        benchmark: `soak: watch --json RSS, ${rate} connections/s for ${minutes} min`,
        figure: `RSS median ${fmt(end, 1)} MB in the last minute (${growth >= 0 ? "+" : ""}${fmt(growth * 100, 1)}%), live heap ${fmt(liveEnd, 1)} MB (${liveGrowth >= 0 ? "+" : ""}${fmt(liveGrowth * 100, 1)}%)`,
        baseline: `RSS median ${fmt(baseline, 1)} MB, live heap ${fmt(liveBase, 1)} MB at ${half.t}-${half.t + 50} s`,
        target: "< 5% growth of RSS and of the live heap over the last half",
        met: growth < 0.05 && liveGrowth < 0.05
      }
    ]
  } finally {
    for (const p of spawned) if (p.exitCode === null && p.signalCode === null) p.kill("SIGTERM")
    await new Promise((r) => setTimeout(r, 500))
    for (const p of spawned) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL")
    // Anything still inside is ours: the namespace is.
    const left = child.spawnSync("ip", ["netns", "pids", name], { encoding: "utf8" }).stdout ?? ""
    for (const pid of left.split("\n").filter((l) => l !== "")) {
      try {
        process.kill(Number(pid), "SIGKILL")
      } catch {}
    }
    child.spawnSync("ip", ["netns", "del", name])
    // SOAK_KEEP=DIR keeps the heap snapshots and the probe's lines there, to study further.
    const keep = process.env.SOAK_KEEP
    if (keep !== undefined && keep !== "") fs.cpSync(work, keep, { recursive: true })
    fs.rmSync(work, { recursive: true, force: true })
  }
}

// Run on its own: `node dist-bench/bench/soak.js`.
if (process.argv[1] !== undefined && import.meta.filename === fs.realpathSync(process.argv[1])) {
  const why = unavailable()
  if (why !== undefined) {
    console.log(`skipping the soak: ${why}`)
  } else {
    const [row] = await soakBenchmark()
    if (row !== undefined)
      console.log(`\n${row.benchmark}: ${row.figure}, baseline ${row.baseline}: ${row.met ? "flat" : "**growing**"}`)
  }
}
