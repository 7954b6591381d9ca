// 7. A real server under load: nginx and ApacheBench (one connection per request) in a fresh namespace per run, at
// paced connection rates and at the machine's maximum. For each rate: the share of served connections that the walker
// reported closed, with the event helper and with `conntrack -E`, and the share a bare `conntrack -E` and a bare helper
// saw (NEW events of served connections: ab opens a few connections it sends nothing on); events per second; and the CPU seconds per 100,000 events of the bare helper against
// the bare conntrack (at the maximum rate). BENCH_LOAD_SECONDS sets each run's length (default 4), BENCH_LOAD_RATES
// the paced rates (default 1000,5000,10000).
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Metrics from "../src/Metrics.js"
import { exited, lines, type Namespace, namespace, unavailable, waitFor } from "../test/kernel/netns.js"
import { ab, loadTools, nginx } from "../test/kernel/nginx.js"
import { conntrackIn, counter, overflows, removedAtExit, startWalker } from "./live.js"
import { fmt, type Row } from "./stats.js"

const root = (() => {
  let dir = import.meta.dirname
  while (!fs.existsSync(path.join(dir, "package.json")) && path.dirname(dir) !== dir) dir = path.dirname(dir)
  return dir
})()
const helper = path.join(root, "dist", "native", "conntrack-events")
const PORT = 9601
const bufferSize = 32 * 1024 * 1024

type Config = "walker+helper" | "walker+conntrack" | "bare conntrack -E" | "bare helper"
const configs: ReadonlyArray<Config> = ["walker+helper", "walker+conntrack", "bare conntrack -E", "bare helper"]

interface Result {
  readonly served: number
  readonly reported: number
  readonly events: number
  readonly took: number
  readonly overflows: number
  readonly cpu?: number
}

/** The helper run inside the namespace (the walker runs it through this script, as it does conntrack). */
const helperIn = (ns: string) => {
  const file = path.join(os.tmpdir(), `effect-conntrack-bench-helper-${ns}.sh`)
  fs.writeFileSync(file, `#!/bin/sh\nexec ip netns exec ${ns} ${helper} "$@"\n`, { mode: 0o755 })
  removedAtExit(file)
  return file
}

/** CPU seconds a process used so far (user + system). */
const cpuSeconds = (pid: number): number => {
  const fields = fs
    .readFileSync(`/proc/${pid}/stat`, "utf8")
    .replace(/^.*\) /, "")
    .split(" ")
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** `rate` connections a second for `seconds` (ab in quarter-second slices), or as fast as ab goes (`max`). */
const drive = async (ns: Namespace, rate: number | "max", seconds: number) => {
  const url = `http://127.0.0.1:${PORT}/`
  const start = Date.now()
  if (rate === "max") {
    await ab(ns, url, 20_000, 50)
  } else {
    const slice = Math.max(1, Math.round(rate / 4))
    for (let i = 0; i < seconds * 4; i++) {
      const due = start + i * 250
      if (Date.now() < due) await new Promise((r) => setTimeout(r, due - Date.now()))
      await ab(ns, url, slice, Math.min(50, slice))
    }
  }
  return (Date.now() - start) / 1000
}

/** nginx's requests keyed as the flows are: `127.0.0.1 sport`. */
const servedKeys = (served: Map<string, number>) => {
  const keys = new Map<string, number>()
  for (const [key, n] of served) keys.set(key.replace(/^ipv[46] (\d+) \d+$/, "127.0.0.1 $1"), n)
  return keys
}

/** Served connections matched by what was seen (closed reports, or NEW events), each at most as often as served. */
const closedReported = (served: Map<string, number>, closed: Map<string, number>) => {
  let reported = 0
  for (const [key, n] of served) reported += Math.min(n, closed.get(key) ?? 0)
  return reported
}

const run = async (config: Config, rate: number | "max", seconds: number): Promise<Result> => {
  const ns = namespace()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ect-native-bench-"))
  try {
    const server = await nginx(ns, dir, PORT, PORT + 1)
    if (config === "bare conntrack -E" || config === "bare helper") {
      const proc = ns.spawn(
        config === "bare helper"
          ? [helper, "-p", "tcp", "--buffer-size", String(bufferSize)]
          : ["conntrack", "--buffer-size", String(bufferSize), "-E", "-o", "id", "-p", "tcp"]
      )
      const err = lines(proc.stderr)
      const news = new Map<string, number>()
      let events = 0
      let rest = ""
      proc.stdout?.on("data", (chunk: Buffer) => {
        const text = rest + chunk.toString("latin1")
        const parts = text.split("\n")
        rest = parts.pop() ?? ""
        events += parts.length
        for (const p of parts) {
          const m = /^ {4}\[NEW\] tcp .*? src=(\S+) dst=\S+ sport=(\d+) dport=(\d+)/.exec(p)
          if (m !== null && Number(m[3]) === PORT) news.set(`${m[1]} ${m[2]}`, (news.get(`${m[1]} ${m[2]}`) ?? 0) + 1)
        }
      })
      await waitFor("the listener", () => err.some((l) => l.startsWith("NOTICE")))
      const took = await drive(ns, rate, seconds)
      await new Promise((r) => setTimeout(r, 1000))
      const cpu = cpuSeconds(proc.pid as number)
      proc.kill("SIGTERM")
      await exited(proc)
      const served = servedKeys(server.served())
      return {
        served: [...served.values()].reduce((a, b) => a + b, 0),
        reported: closedReported(served, news),
        events,
        took,
        overflows: err.filter((l) => l.includes("ENOBUFS")).length,
        cpu
      }
    }
    const before = { events: counter(Metrics.events), overflows: overflows() }
    const walker = await startWalker({
      binary: conntrackIn(ns.name),
      eventSource: config === "walker+helper" ? "helper" : "conntrack",
      helperPath: helperIn(ns.name),
      bufferSize
    })
    const closed = new Map<string, number>()
    const collect = async () => {
      for (const w of await walker.walk()) {
        if (w.active || w.flow.original.dport !== PORT) continue
        const key = `${w.flow.original.src} ${w.flow.original.sport}`
        closed.set(key, (closed.get(key) ?? 0) + 1)
      }
    }
    let driving = true
    const walking = (async () => {
      while (driving) {
        await collect()
        await new Promise((r) => setTimeout(r, 250))
      }
    })()
    const took = await drive(ns, rate, seconds)
    await new Promise((r) => setTimeout(r, 300))
    const served = servedKeys(server.served())
    const total = [...served.values()].reduce((a, b) => a + b, 0)
    // Give the walker up to 10 s to catch up.
    const end = Date.now() + 10_000
    while (Date.now() < end && closedReported(served, closed) < total) await new Promise((r) => setTimeout(r, 250))
    driving = false
    await walking
    await collect()
    const events = counter(Metrics.events) - before.events
    await walker.close()
    return {
      served: total,
      reported: closedReported(served, closed),
      events,
      took,
      overflows: overflows() - before.overflows
    }
  } finally {
    ns.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

const pct = (r: Result) => `${fmt((100 * r.reported) / Math.max(1, r.served), 1)}%`
const describe = (r: Result) =>
  `${pct(r)} of ${fmt(r.served)} (${fmt(r.events / r.took)} events/s, ${r.overflows} ENOBUFS)`

export const loadBenchmark = async (): Promise<ReadonlyArray<Row>> => {
  const why = unavailable() ?? loadTools() ?? (fs.existsSync(helper) ? undefined : "the helper is not built")
  if (why !== undefined) {
    console.log(`skipping the load benchmark: ${why}`)
    return []
  }
  const seconds = Number(process.env.BENCH_LOAD_SECONDS ?? 4)
  const rates: ReadonlyArray<number | "max"> = [
    ...(process.env.BENCH_LOAD_RATES ?? "1000,5000,10000").split(",").map(Number),
    "max"
  ]
  console.log(`7. load: nginx + ab, ${seconds} s a paced rate, 20,000 connections at the maximum (shared machine)`)
  const rows: Array<Row> = []
  let cpu: { helper?: Result; conntrack?: Result } = {}
  for (const rate of rates) {
    const results = new Map<Config, Result>()
    for (const config of configs) {
      const r = await run(config, rate, seconds)
      results.set(config, r)
      console.log(
        `  ${rate === "max" ? "max" : `${fmt(rate)}/s`} ${config}: ${describe(r)}, ${fmt(r.served / r.took)} connections/s achieved`
      )
    }
    const h = results.get("walker+helper") as Result
    const c = results.get("walker+conntrack") as Result
    const bare = results.get("bare conntrack -E") as Result
    const bareHelper = results.get("bare helper") as Result
    if (rate === "max") cpu = { helper: bareHelper, conntrack: bare }
    rows.push({
      benchmark: `7. Load, nginx+ab at ${rate === "max" ? "the maximum" : `${fmt(rate)}/s`} (achieved ${fmt(h.served / h.took)}/s): connections reported closed`,
      figure: `walker with the helper: ${describe(h)}`,
      baseline: `walker with conntrack -E: ${describe(c)}; bare conntrack -E: ${describe(bare)}; bare helper: ${describe(bareHelper)}`,
      target: "100%",
      met: h.reported >= h.served
    })
  }
  if (cpu.helper !== undefined && cpu.conntrack !== undefined) {
    const per = (r: Result) => ((r.cpu ?? 0) / Math.max(1, r.events)) * 100_000
    rows.push({
      benchmark: "7. Load at the maximum: CPU seconds per 100,000 events",
      figure: `helper: ${fmt(per(cpu.helper), 2)} s (${fmt(cpu.helper.events)} events)`,
      baseline: `conntrack -E: ${fmt(per(cpu.conntrack), 2)} s (${fmt(cpu.conntrack.events)} events)`,
      target: "no more than conntrack",
      met: per(cpu.helper) <= per(cpu.conntrack)
    })
  }
  return rows
}
