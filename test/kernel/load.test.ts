// A real server under a real load generator: nginx (nginx-light) and ApacheBench (apache2-utils) in a namespace of
// our own, one connection per request (no keep-alive), as fast as the machine goes. Every connection (each request in
// nginx's access log has one; ab makes a few more that carry no request, which a reference recorder counts) must be
// reported closed by `effect-conntrack watch --json`, none twice, none left active.
// Runs as root with nginx and ab besides the kernel suite's tools; skipped with one line otherwise (a failure with
// CONNTRACK_KERNEL_TESTS=require). CONNTRACK_LOAD_REQUESTS sets the requests per family (default 20,000).
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { bin, exited, lines, type Namespace, namespace, unavailable, waitFor } from "./netns.js"
import { ab, loadTools, nginx } from "./nginx.js"

const helper = path.join(import.meta.dirname, "..", "..", "dist", "native", "conntrack-events")
const why =
  unavailable() ??
  loadTools() ??
  (fs.existsSync(helper) ? undefined : "the event helper is not built (it records the reference: npm run build)")
const required = process.env.CONNTRACK_KERNEL_TESTS === "require"
if (why !== undefined && !required) console.warn(`skip: load test: ${why}`)

const requests = Number(process.env.CONNTRACK_LOAD_REQUESTS ?? 20_000)

interface Walked {
  readonly walk: number
  readonly active: boolean
  readonly flow: {
    readonly id: number
    readonly state?: string
    readonly family: string
    readonly original: { src: string; dst: string; sport: number; dport: number }
  }
}

describe.skipIf(why !== undefined && !required)("under a real load (nginx + ab)", () => {
  let spaces: Array<Namespace> = []
  let dirs: Array<string> = []
  afterEach(() => {
    for (const ns of spaces) ns.close()
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true })
    spaces = []
    dirs = []
  })

  it("reports every request nginx served closed exactly once and none left active, over IPv4 and IPv6", async () => {
    if (why !== undefined) throw new Error(`the load test is required but cannot run: ${why}`)
    const ns = namespace()
    spaces.push(ns)
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ect-native-load-"))
    dirs.push(dir)
    const server = await nginx(ns, dir, 9601, 9602)

    // The reference: every connection's life as the kernel reports it (a [NEW] event each), from a helper of its own
    // that writes to a file (ab makes a few connections on which it sends no request: nginx logs nothing for them).
    const reference = path.join(dir, "events.txt")
    const fd = fs.openSync(reference, "w")
    const recorder = ns.spawn([helper, "-p", "tcp", "--buffer-size", "67108864"], { stdio: ["ignore", fd, "pipe"] })
    fs.closeSync(fd)
    const recorderErr = lines(recorder.stderr)
    await waitFor("the reference recorder", () => recorderErr.some((l) => l.startsWith("NOTICE")))

    const watch = ns.spawn(["node", bin, "--log-level", "debug", "watch", "--json", "--interval", "500 millis"])
    const out = lines(watch.stdout)
    const err = lines(watch.stderr)
    await waitFor("the walker's first sync", () => err.some((l) => l.includes("conntrack walker synced")), 20_000)

    err.push(`test: ab starts at ${new Date().toISOString()}`)
    const v4 = await ab(ns, "http://127.0.0.1:9601/", requests, 50)
    err.push(`test: IPv6 ab starts at ${new Date().toISOString()}`)
    const v6 = await ab(ns, "http://[::1]:9602/", requests, 50)
    console.log(
      `load: ${requests} requests per family, ${v4.rate} connections/s over IPv4, ${v6.rate} over IPv6 ` +
        `(ab counted ${v4.failed} and ${v6.failed} failed); ` +
        `event source: ${err.find((l) => l.includes("events from"))?.replace(/.*events from /, "") ?? "?"}`
    )
    err.push(`test: ab ends at ${new Date().toISOString()}`)
    // ab counts a reply of another length as failed; what matters here is what nginx logged.
    await new Promise((r) => setTimeout(r, 300))
    const served = server.served()
    const total = [...served.values()].reduce((a, b) => a + b, 0)
    expect(total).toBeGreaterThanOrEqual(requests * 2 * 0.99)
    recorder.kill("SIGTERM")
    await exited(recorder)
    const lives = new Map<string, number>()
    for (const line of fs.readFileSync(reference, "latin1").split("\n")) {
      const m = /^ {4}\[NEW\] tcp .*? src=(\S+) dst=\S+ sport=(\d+) dport=(9601|9602) /.exec(line)
      if (m === null) continue
      const key = `${m[1]?.includes(":") ? "ipv6" : "ipv4"} ${m[2]} ${m[3]}`
      lives.set(key, (lives.get(key) ?? 0) + 1)
    }
    // The reference itself must have seen every request's connection, and lost nothing.
    expect(recorderErr.filter((l) => l.includes("ENOBUFS") || l.includes("behind"))).toStrictEqual([])
    expect([...served].filter(([key, n]) => (lives.get(key) ?? 0) < n)).toStrictEqual([])
    const connections = [...lives.values()].reduce((a, b) => a + b, 0)

    const closed = new Map<string, number>()
    const lastActive = new Map<string, boolean>()
    const history = new Map<string, Array<string>>()
    let seen = 0
    const fold = () => {
      const walked = out.slice(seen)
      seen = out.length
      for (const line of walked) {
        if (!line.startsWith("{")) continue
        const w = JSON.parse(line) as Walked
        if (w.flow.original.dport !== 9601 && w.flow.original.dport !== 9602) continue
        const key = `${w.flow.family} ${w.flow.original.sport} ${w.flow.original.dport}`
        lastActive.set(key, w.active)
        const h = history.get(key) ?? []
        h.push(`walk ${w.walk} ${w.active ? "active" : "closed"} id=${w.flow.id} ${w.flow.state ?? ""}`)
        history.set(key, h)
        if (!w.active) closed.set(key, (closed.get(key) ?? 0) + 1)
      }
    }
    // A connection is reported closed once when its entry reaches TIME_WAIT or CLOSE, or is destroyed.
    await waitFor(
      "every connection reported closed",
      () => {
        fold()
        for (const [key, n] of lives) if ((closed.get(key) ?? 0) < n) return false
        return true
      },
      60_000
    ).catch(() => undefined)
    fold()

    const missing: Array<string> = []
    const twice: Array<string> = []
    for (const [key, n] of lives) {
      const c = closed.get(key) ?? 0
      if (c < n) missing.push(`${key} (${n} connections, ${served.get(key) ?? 0} requests, ${c} closed)`)
    }
    for (const [key, c] of closed) {
      const n = lives.get(key) ?? 0
      if (c > n) twice.push(`${key} (${n} connections, ${served.get(key) ?? 0} requests, ${c} closed)`)
    }
    const stillActive = [...lastActive].filter(([, active]) => active).map(([key]) => key)
    const overflows = err.filter((l) => l.includes("ENOBUFS")).length
    const summary = `${total} requests served on ${connections} connections, ${missing.length} never reported closed, ${twice.length} reported closed too often, ${stillActive.length} left active, ${overflows} ENOBUFS lines`
    console.log(`load: ${summary}`)
    for (const l of err.filter((l) => l.includes("ENOBUFS")).slice(0, 3)) console.log(`load: walker said: ${l}`)
    for (const l of err.filter((l) => l.includes("level=ERROR")).slice(0, 3)) console.log(`load: walker said: ${l}`)
    for (const key of [...missing.slice(0, 3), ...twice.slice(0, 3)]) {
      const k = key.replace(/ \(.*$/, "")
      console.log(`load: ${key}: ${(history.get(k) ?? []).filter((h) => !h.includes(" active ")).join("; ")}`)
    }
    watch.kill("SIGTERM")
    await exited(watch)
    // For a closer look: CONNTRACK_LOAD_LOG=file keeps the walker's stderr.
    if (process.env.CONNTRACK_LOAD_LOG) fs.writeFileSync(process.env.CONNTRACK_LOAD_LOG, `${err.join("\n")}\n`)
    expect({ missing: missing.slice(0, 5), twice: twice.slice(0, 5), stillActive: stillActive.slice(0, 5) }).toEqual({
      missing: [],
      twice: [],
      stillActive: []
    })
  }, 600_000)
})
