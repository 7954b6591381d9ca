// `effect-conntrack serve` scraped by a real Prometheus, in a network namespace of its own (loopback only): the
// series Prometheus stores match the kernel, the page passes `promtool check metrics`, the flow log holds each closed
// connection of a burst once, and SIGTERM stops it cleanly. Needs Debian's `prometheus` package (prometheus and
// promtool) on top of the kernel suite's tools; skipped with one line saying why, unless
// CONNTRACK_KERNEL_TESTS=require.
import * as child from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { bin, burst, exited, lines, type Namespace, namespace, serve, traffic, unavailable, waitFor } from "./netns.js"

const missingPrometheus = (): string | undefined => {
  for (const tool of ["prometheus", "promtool"]) {
    const r = child.spawnSync(tool, ["--version"], { stdio: "ignore" })
    if (r.error !== undefined) return `no ${tool} (install prometheus)`
  }
  return undefined
}

const why = unavailable() ?? missingPrometheus()
const required = process.env.CONNTRACK_KERNEL_TESTS === "require"
if (why !== undefined && !required) console.warn(`skip: fleet suite: ${why}`)

const METRICS = "127.0.0.1:9464"
const PROMETHEUS = "127.0.0.1:9090"

/** An HTTP GET from inside the namespace: status and body. */
const get = (ns: Namespace, url: string): { status: number; body: string } => {
  const script =
    "fetch(process.argv[1]).then(async (r) => process.stdout.write(JSON.stringify({ status: r.status, body: await r.text() })), () => process.stdout.write(JSON.stringify({ status: 0, body: '' })))"
  return JSON.parse(ns.run(["node", "-e", script, url]))
}

/** One instant query through Prometheus' HTTP API: the samples' values by their labels (as JSON). */
const query = (ns: Namespace, promql: string): Map<string, number> => {
  const r = get(ns, `http://${PROMETHEUS}/api/v1/query?query=${encodeURIComponent(promql)}`)
  const out = new Map<string, number>()
  if (r.status !== 200) return out
  const data = JSON.parse(r.body) as {
    data: { result: ReadonlyArray<{ metric: Record<string, string>; value: [number, string] }> }
  }
  for (const s of data.data.result) out.set(JSON.stringify(s.metric), Number(s.value[1]))
  return out
}

const scalar = (ns: Namespace, promql: string): number | undefined => {
  const values = [...query(ns, promql).values()]
  return values.length === 1 ? values[0] : undefined
}

/** A held connection (the local port) that ends when its stdin does. */
const hold = async (ns: Namespace, host: string, port: number) => {
  const p = ns.spawn(["node", traffic, "hold", host, String(port)])
  const out = lines(p.stdout)
  const local = await waitFor(`a connection to ${host}:${port}`, () => {
    const m = out.map((l) => /^port (\d+)$/.exec(l)).find((m) => m !== null)
    return m ? Number(m[1]) : undefined
  })
  return { port: local, proc: p }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Polls (in the namespace, so slowly) until `check` holds; fails with the last value seen. */
const eventually = async <A>(what: string, read: () => A, check: (a: A) => boolean, ms = 30_000): Promise<A> => {
  const end = Date.now() + ms
  let last = read()
  while (!check(last)) {
    if (Date.now() > end)
      throw new Error(`timed out after ${ms} ms waiting for ${what}; last seen: ${JSON.stringify(last)}`)
    await sleep(250)
    last = read()
  }
  return last
}

describe.skipIf(why !== undefined && !required)("serve, scraped by a real Prometheus", () => {
  let spaces: Array<Namespace> = []
  const dirs: Array<string> = []
  afterEach(() => {
    // Closing the namespace kills by pid what we started in it (serve, Prometheus, servers), then deletes it.
    for (const ns of spaces) ns.close()
    spaces = []
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true })
  })

  it("matches the kernel's ESTABLISHED count, counts the burst's closed flows, logs each once, stops cleanly", async () => {
    if (why !== undefined) throw new Error(`the fleet suite is required but cannot run: ${why}`)
    const ns = namespace({ prefix: "ect-fleet" })
    spaces.push(ns)
    ns.run(["sysctl", "-qw", "net.netfilter.nf_conntrack_acct=1"])
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-conntrack-fleet-"))
    dirs.push(dir)
    const flowLog = path.join(dir, "flows.jsonl")

    await serve(ns, "127.0.0.1:9301", "::1:9302")
    const daemon = ns.spawn(["node", bin, "serve", "--listen", METRICS, "--flow-log", flowLog])
    const daemonErr = lines(daemon.stderr)
    await eventually(
      "/readyz 200",
      () => get(ns, `http://${METRICS}/readyz`).status,
      (s) => s === 200
    )
    expect(get(ns, `http://${METRICS}/healthz`).status).toBe(200)

    fs.writeFileSync(
      path.join(dir, "prometheus.yml"),
      [
        "global:",
        "  scrape_interval: 1s",
        "  evaluation_interval: 1s",
        "scrape_configs:",
        "  - job_name: conntrack",
        "    static_configs:",
        `      - targets: ["${METRICS}"]`,
        ""
      ].join("\n")
    )
    const prometheus = ns.spawn([
      "prometheus",
      `--config.file=${path.join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${path.join(dir, "data")}`,
      `--web.listen-address=${PROMETHEUS}`
    ])
    const prometheusErr = lines(prometheus.stderr)
    try {
      await eventually(
        "Prometheus ready",
        () => get(ns, `http://${PROMETHEUS}/-/ready`).status,
        (s) => s === 200
      )

      const v4 = await hold(ns, "127.0.0.1", 9301)
      const v6 = await hold(ns, "::1", 9302)
      const shot = await burst(ns, "127.0.0.1", 9301, 300, 10)
      expect(shot.ports).toHaveLength(300)

      // conntrack_flows{state="ESTABLISHED"} as Prometheus stored it, against `conntrack -L` counted at that moment
      // (the held connections, and Prometheus' own keep-alive scrape connection).
      const kernelEstablished = () =>
        ns
          .run(["conntrack", "-L", "-p", "tcp", "--state", "ESTABLISHED"])
          .split("\n")
          .filter((l) => l !== "").length
      const [stored, kernel] = await eventually(
        "Prometheus' ESTABLISHED count to match the kernel's",
        () => [scalar(ns, 'sum(conntrack_flows{state="ESTABLISHED"})'), kernelEstablished()] as const,
        ([s, k]) => s === k
      )
      expect(stored).toBe(kernel)
      expect(kernel).toBeGreaterThanOrEqual(3)
      const byFamily = query(ns, 'sum by (family) (conntrack_flows{state="ESTABLISHED",proto="tcp"})')
      expect(byFamily.get(JSON.stringify({ family: "ipv6" }))).toBe(1)

      await eventually(
        "conntrack_flows_closed_total to cover the burst",
        () => scalar(ns, "sum(conntrack_flows_closed_total)") ?? 0,
        (n) => n >= 300
      )
      expect(scalar(ns, 'up{job="conntrack"}')).toBe(1)
      expect(scalar(ns, "conntrack_walker_ready")).toBe(1)
      expect(scalar(ns, "conntrack_table_limit")).toBeGreaterThan(0)

      // The page itself passes promtool's checks.
      const page = get(ns, `http://${METRICS}/metrics`)
      expect(page.status).toBe(200)
      const check = child.spawnSync("promtool", ["check", "metrics"], { input: page.body, encoding: "utf8" })
      expect(`${check.stdout}${check.stderr}`).toBe("")
      expect(check.status).toBe(0)
      expect(page.body).toMatch(/^# TYPE conntrack_flows_closed_total counter$/m)

      v4.proc.stdin?.end()
      v6.proc.stdin?.end()
      await Promise.all([exited(v4.proc), exited(v6.proc)])

      // SIGTERM: the server closes, the flow log is flushed, no conntrack is left.
      daemon.kill("SIGTERM")
      expect(await exited(daemon, 15_000)).toBe(0)
      expect(ns.pids(/(^|\/)conntrack(-events)? /)).toEqual([])
      expect(get(ns, `http://${METRICS}/healthz`).status).toBe(0)

      const records = fs
        .readFileSync(flowLog, "utf8")
        .split("\n")
        .filter((l) => l !== "")
        .map(
          (l) =>
            JSON.parse(l) as {
              firstSeen: string
              lastSeen: string
              original: { sport: number; dport: number }
            }
        )
      const burstPorts = new Set(shot.ports)
      const ofBurst = records.filter((r) => r.original.dport === 9301 && burstPorts.has(r.original.sport))
      const counts = new Map<number, number>()
      for (const r of ofBurst) counts.set(r.original.sport, (counts.get(r.original.sport) ?? 0) + 1)
      expect([...counts.values()].filter((n) => n > 1)).toEqual([])
      expect(counts.size).toBe(300)
      for (const r of ofBurst) expect(Date.parse(r.lastSeen)).toBeGreaterThanOrEqual(Date.parse(r.firstSeen))
      // The held connections closed just before the stop: the flush wrote them too.
      expect(records.filter((r) => r.original.sport === v4.port && r.original.dport === 9301)).toHaveLength(1)
    } catch (e) {
      console.error(
        `serve stderr:\n${daemonErr.join("\n")}\nprometheus stderr (tail):\n${prometheusErr.slice(-20).join("\n")}`
      )
      throw e
    } finally {
      prometheus.kill("SIGTERM")
      await exited(prometheus, 15_000).catch(() => prometheus.kill("SIGKILL"))
    }
  }, 120_000)
})
