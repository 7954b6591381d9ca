// The real walker, the real Node executor and the real conntrack against the real kernel, each test in a network
// namespace of its own (tracking on, loopback only). Runs as root with conntrack, nftables, iproute2 and util-linux;
// elsewhere it is skipped with one line saying why, unless CONNTRACK_KERNEL_TESTS=require makes that a failure.
import type * as child from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { plainEnv } from "../support/plainEnv.js"
import { bin, burst, exited, lines, type Namespace, namespace, serve, traffic, unavailable, waitFor } from "./netns.js"

const why = unavailable()
const required = process.env.CONNTRACK_KERNEL_TESTS === "require"
if (why !== undefined && !required) console.warn(`skip: kernel suite: ${why}`)

interface Walked {
  readonly walk: number
  readonly active: boolean
  readonly flow: {
    readonly id: number
    readonly state?: string
    readonly family: string
    readonly original: { src: string; dst: string; sport: number; dport: number }
    readonly reply: { src: string; dst: string; sport: number; dport: number }
  }
}

/** `effect-conntrack watch --json` running inside the namespace. */
const watch = (ns: Namespace, args: ReadonlyArray<string> = [], interval = "200 millis") => {
  const proc = ns.spawn(["node", bin, "--log-level", "debug", "watch", "--json", "--interval", interval, ...args])
  const out = lines(proc.stdout)
  const err = lines(proc.stderr)
  const walked = () => out.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Walked)
  const syncs = () => err.filter((l) => l.includes("conntrack walker synced")).length
  return { proc, walked, err, syncs, synced: (n = 1) => waitFor(`walker sync #${n}`, () => syncs() >= n) }
}

/** A held connection: its local port, and a function that closes it. */
const hold = async (ns: Namespace, host: string, port: number) => {
  const p = ns.spawn(["node", traffic, "hold", host, String(port)])
  const out = lines(p.stdout)
  const local = await waitFor(`a connection to ${host}:${port}`, () => {
    const m = out.map((l) => /^port (\d+)$/.exec(l)).find((m) => m !== null)
    return m ? Number(m[1]) : undefined
  })
  return {
    port: local,
    close: async () => {
      p.stdin?.end()
      await exited(p)
    }
  }
}

const bySport = (walked: ReadonlyArray<Walked>, sport: number, dport: number) =>
  walked.filter((w) => w.flow.original.sport === sport && w.flow.original.dport === dport)

// conntrack, or the event helper that runs in its place (eventSource auto, when it is built).
const conntrackPids = (ns: Namespace) => ns.pids(/(^|\/)conntrack(-events)? /)

describe.skipIf(why !== undefined && !required)("on a real kernel", () => {
  let spaces: Array<Namespace> = []
  const make = (options?: Parameters<typeof namespace>[0]) => {
    if (why !== undefined) throw new Error(`the kernel suite is required but cannot run: ${why}`)
    const ns = namespace(options)
    spaces.push(ns)
    return ns
  }
  afterEach(() => {
    for (const ns of spaces) ns.close()
    spaces = []
  })

  it("shows long-lived TCP connections over IPv4 and IPv6 as active and ESTABLISHED, with their tuples", async () => {
    const ns = make()
    await serve(ns, "127.0.0.1:9101", "[::1]:9102".replace(/[[\]]/g, ""))
    const w = watch(ns)
    await w.synced()
    const v4 = await hold(ns, "127.0.0.1", 9101)
    const v6 = await hold(ns, "::1", 9102)
    const seen = await waitFor("both connections in a walk", () => {
      const a = bySport(w.walked(), v4.port, 9101).find((x) => x.active)
      const b = bySport(w.walked(), v6.port, 9102).find((x) => x.active)
      return a && b ? [a, b] : undefined
    })
    expect(seen[0]?.flow).toMatchObject({
      state: "ESTABLISHED",
      family: "ipv4",
      original: { src: "127.0.0.1", dst: "127.0.0.1", sport: v4.port, dport: 9101 },
      reply: { src: "127.0.0.1", dst: "127.0.0.1", sport: 9101, dport: v4.port }
    })
    expect(seen[1]?.flow).toMatchObject({
      state: "ESTABLISHED",
      family: "ipv6",
      original: { src: "::1", dst: "::1", sport: v6.port, dport: 9102 },
      reply: { src: "::1", dst: "::1", sport: 9102, dport: v6.port }
    })
  })

  // The command line is one bundled file (dist/cli/Main.js): it must still find the helper the build made.
  const helperBuilt = fs.existsSync(path.join(path.dirname(bin), "native", "conntrack-events"))
  it.skipIf(!helperBuilt && !required)(
    "the bundled command line runs the event helper of its own package",
    async () => {
      const ns = make()
      const w = watch(ns)
      await w.synced()
      expect(ns.pids(/(^|\/)dist\/native\/conntrack-events /)).toHaveLength(1)
      expect(w.err.filter((l) => l.includes("using conntrack -E instead"))).toStrictEqual([])
    }
  )

  it("reports a connection closed between two walks dead exactly once, then never again", async () => {
    const ns = make()
    await serve(ns, "127.0.0.1:9101")
    const w = watch(ns)
    await w.synced()
    // A connection that stays open, so that every walk prints a line.
    const heartbeat = await hold(ns, "127.0.0.1", 9101)
    const c = await hold(ns, "127.0.0.1", 9101)
    await waitFor("the connection active", () => bySport(w.walked(), c.port, 9101).some((x) => x.active))
    await c.close()
    const dead = await waitFor("the connection dead", () => bySport(w.walked(), c.port, 9101).find((x) => !x.active))
    // A second after, nothing more about it.
    await new Promise((r) => setTimeout(r, 1000))
    const after = bySport(w.walked(), c.port, 9101).filter((x) => x.walk >= dead.walk)
    expect(after).toHaveLength(1)
    const laterWalks = new Set(
      bySport(w.walked(), heartbeat.port, 9101)
        .filter((x) => x.walk > dead.walk)
        .map((x) => x.walk)
    )
    expect(laterWalks.size).toBeGreaterThan(2)
  })

  it("reports every one of 2,000 short-lived connections opened and closed between two walks", async () => {
    const ns = make()
    await serve(ns, "127.0.0.1:9101")
    const w = watch(ns, [], "3 seconds")
    await w.synced()
    const { ports } = await burst(ns, "127.0.0.1", 9101, 2000, 50)
    expect(new Set(ports).size).toBe(2000)
    const reported = await waitFor(
      "every connection reported dead",
      () => {
        const dead = new Set(
          w
            .walked()
            .filter((x) => !x.active && x.flow.original.dport === 9101)
            .map((x) => x.flow.original.sport)
        )
        return ports.every((p) => dead.has(p)) ? dead : undefined
      },
      20_000
    )
    expect(ports.filter((p) => reported.has(p))).toHaveLength(2000)
    // Each once.
    const deadLines = w.walked().filter((x) => !x.active && x.flow.original.dport === 9101)
    expect(deadLines).toHaveLength(2000)
  }, 60_000)

  it("shows a DNAT'ed connection's translation in its reply tuple", async () => {
    const ns = make({ dnat: true })
    await serve(ns, "127.0.0.1:9401")
    const w = watch(ns)
    await w.synced()
    const c = await hold(ns, "127.0.0.2", 9201)
    const seen = await waitFor("the NAT'ed connection", () => bySport(w.walked(), c.port, 9201).find((x) => x.active))
    expect(seen.flow.original).toMatchObject({ src: "127.0.0.1", dst: "127.0.0.2", dport: 9201 })
    expect(seen.flow.reply).toMatchObject({ src: "127.0.0.1", sport: 9401, dst: "127.0.0.1", dport: c.port })
  })

  it("resyncs within about a second when conntrack -E is SIGKILLed, losing nothing", async () => {
    const ns = make()
    await serve(ns, "127.0.0.1:9101")
    const w = watch(ns)
    await w.synced()
    const before = await hold(ns, "127.0.0.1", 9101)
    await waitFor("the first connection", () => bySport(w.walked(), before.port, 9101).some((x) => x.active))
    const [events] = ns.pids(/conntrack .*-E|conntrack-events /)
    expect(events).toBeDefined()
    const killedAt = Date.now()
    process.kill(events as number, "SIGKILL")
    await w.synced(2)
    const took = Date.now() - killedAt
    expect(took).toBeLessThan(2500)
    expect(w.err.some((l) => l.includes("restarting") && l.includes("SIGKILL"))).toBe(true)
    const after = await hold(ns, "127.0.0.1", 9101)
    await waitFor("the connection made after the restart", () =>
      bySport(w.walked(), after.port, 9101).some((x) => x.active)
    )
    const lastWalk = Math.max(...w.walked().map((x) => x.walk))
    const last = w.walked().filter((x) => x.walk === lastWalk)
    expect(bySport(last, before.port, 9101).map((x) => x.active)).toStrictEqual([true])
    // Never reported dead while it was alive.
    expect(bySport(w.walked(), before.port, 9101).every((x) => x.active)).toBe(true)
  })

  it("notices ENOBUFS, resyncs, and ends up with the table conntrack -L shows", async () => {
    const ns = make()
    const w = watch(ns, ["--buffer-size", "4096"], "2 seconds")
    await w.synced()
    // 20,000 inserted entries (no traffic) come faster than conntrack -E can print them.
    const entries = Array.from({ length: 20_000 }, (_, i) => {
      const k = i + 1
      return `-I -p tcp -s 127.0.${k >> 8}.${k & 255} -d 127.1.0.1 --sport ${1024 + (k % 60000)} --dport 80 --state ESTABLISHED -t 600 -u SEEN_REPLY,ASSURED`
    })
    const file = path.join("/tmp", `${ns.name}-burst.txt`)
    ns.run(["sh", "-c", `cat > ${file}`], entries.join("\n"))
    ns.run(["conntrack", "-R", file])
    await waitFor("an ENOBUFS warning", () => w.err.some((l) => l.includes("We have hit ENOBUFS")), 15_000)
    await waitFor("a resync after the overflow", () => w.syncs() >= 2, 15_000)
    // A connection is its id and its tuple: among 20,000 entries two can share an id (ids are 32-bit hashes).
    const kernel = new Set(
      ns
        .run(["conntrack", "-L", "-o", "id", "-p", "tcp"])
        .split("\n")
        .map((l) => {
          const m = / src=(\S+) .*? sport=(\d+) .* id=(\d+)$/.exec(l)
          return m ? `${m[3]} ${m[1]}:${m[2]}` : undefined
        })
        .filter((key) => key !== undefined)
    )
    expect(kernel.size).toBe(20_000)
    const walkedKeys = await waitFor(
      "a walk that matches conntrack -L",
      () => {
        const all = w.walked()
        const lastWalk = Math.max(...all.map((x) => x.walk), 0)
        const keys = new Set(
          all
            .filter((x) => x.walk === lastWalk && x.active)
            .map((x) => `${x.flow.id} ${x.flow.original.src}:${x.flow.original.sport}`)
        )
        return keys.size === kernel.size ? keys : undefined
      },
      30_000
    )
    expect([...kernel].every((key) => walkedKeys.has(key))).toBe(true)
    expect(w.err.some((l) => l.includes("restarting") && l.includes("ENOBUFS"))).toBe(true)
    ns.run(["rm", "-f", file])
  }, 90_000)

  it("leaves no conntrack behind when it stops on SIGTERM", async () => {
    const ns = make()
    const w = watch(ns)
    await w.synced()
    expect(conntrackPids(ns).length).toBe(1)
    w.proc.kill("SIGTERM")
    await exited(w.proc)
    await waitFor("no conntrack in the namespace", () => conntrackPids(ns).length === 0, 5000)
  })

  it("leaves no conntrack behind when it is SIGKILLed", async () => {
    const ns = make()
    const w = watch(ns)
    await w.synced()
    const [pid] = ns.pids(/dist\/bin\.js/)
    expect(conntrackPids(ns).length).toBe(1)
    process.kill(pid as number, "SIGKILL")
    await exited(w.proc)
    await waitFor("no conntrack in the namespace", () => conntrackPids(ns).length === 0, 5000)
  })

  it("run as an unprivileged user with only CAP_NET_ADMIN (ambient), it works and leaves no conntrack when SIGKILLed", async () => {
    // The set-up the README recommends for a daemon (systemd's AmbientCapabilities does the same). File capabilities on
    // conntrack (setcap) would clear the parent-death signal at exec: measured, the child then outlives us.
    const ns = make()
    await serve(ns, "127.0.0.1:9101")
    const proc = ns.spawn([
      "setpriv",
      "--reuid=nobody",
      "--regid=nogroup",
      "--clear-groups",
      "--inh-caps=+net_admin",
      "--ambient-caps=+net_admin",
      "--",
      "node",
      bin,
      "--log-level",
      "debug",
      "watch",
      "--json",
      "--interval",
      "200 millis"
    ])
    const out = lines(proc.stdout)
    const err = lines(proc.stderr)
    await waitFor("walker sync", () => err.some((l) => l.includes("conntrack walker synced")))
    const c = await hold(ns, "127.0.0.1", 9101)
    await waitFor("the connection, seen without root", () =>
      out.some((l) => l.includes(`"sport":${c.port},"dport":9101`) && l.includes('"active":true'))
    )
    const [pid] = ns.pids(/dist\/bin\.js/)
    expect(conntrackPids(ns).length).toBe(1)
    process.kill(pid as number, "SIGKILL")
    await exited(proc)
    await waitFor("no conntrack in the namespace", () => conntrackPids(ns).length === 0, 5000)
    await c.close()
  })

  it("dump --count counts what conntrack -L lists, started without Effect; without privilege it hands over", async () => {
    const ns = make()
    const insert = (k: number, state: string, timeout: number) =>
      ns.run(
        ["conntrack", "-I", "-p", "tcp", "-s", "127.0.0.1", "-d", "127.0.0.2", "--sport", String(20000 + k)].concat([
          "--dport",
          "80",
          "--state",
          state,
          "-t",
          String(timeout),
          "-u",
          "SEEN_REPLY,ASSURED"
        ])
      )
    for (let k = 0; k < 5; k++) insert(k, "ESTABLISHED", 600)
    for (let k = 5; k < 8; k++) insert(k, "TIME_WAIT", 120)
    // conntrack through a wrapper that counts its runs (readable and writable by nobody too).
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-conntrack-dump-"))
    fs.chmodSync(dir, 0o755)
    const runs = path.join(dir, "runs")
    fs.writeFileSync(runs, "", { mode: 0o666 })
    fs.chmodSync(runs, 0o666)
    const wrapper = path.join(dir, "conntrack")
    fs.writeFileSync(wrapper, `#!/bin/sh\necho run >>${runs}\nexec conntrack "$@"\n`, { mode: 0o755 })
    const ran = () =>
      fs
        .readFileSync(runs, "utf8")
        .split("\n")
        .filter((l) => l !== "").length
    // Without the test's own CONNTRACK_* variables: with any set, the fast start leaves the count to the full one.
    const env = plainEnv()
    const main = path.join(path.dirname(bin), "cli", "Main.js")
    const run = async (prefix: ReadonlyArray<string>, script: string, json: boolean) => {
      const before = ran()
      const p = ns.spawn(
        [...prefix, "node", script, "dump", "--count", ...(json ? ["--json"] : []), "--conntrack", wrapper],
        {
          env
        }
      )
      const out = lines(p.stdout)
      const err = lines(p.stderr)
      // Its output read to the end ('close', not 'exit').
      const code = await new Promise<number | null>((resolve) => p.once("close", resolve))
      return { code, out, err: err.map((l) => l.replace(/timestamp=\S+ /, "")), runs: ran() - before }
    }
    try {
      const fast = await run([], bin, false)
      expect(fast).toStrictEqual({ code: 0, out: ["8 flows", "ESTABLISHED 5", "TIME_WAIT 3"], err: [], runs: 1 })
      expect(await run([], main, false)).toStrictEqual(fast)
      const json = await run([], bin, true)
      expect(json.runs).toBe(1)
      expect(JSON.parse(json.out.join(""))).toStrictEqual({ total: 8, byState: { ESTABLISHED: 5, TIME_WAIT: 3 } })

      // As nobody, without CAP_NET_ADMIN: conntrack refuses; the fast start hands over, and the full command line
      // runs it again and says why.
      const nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]
      const denied = await run(nobody, bin, false)
      const deniedFull = await run(nobody, main, false)
      expect(denied.code).toBe(1)
      expect(denied.runs).toBe(2)
      expect(deniedFull.runs).toBe(1)
      expect({ ...denied, runs: 1 }).toStrictEqual(deniedFull)
      expect(denied.err.join("\n")).toMatch(/CAP_NET_ADMIN/)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it("with events off in the namespace: the layer picks the no-op walker and says why; watch refuses", async () => {
    const ns = make({ events: false })
    const p = ns.spawn(["node", path.join(import.meta.dirname, "layer-child.mjs")])
    const out = lines(p.stdout)
    const err = lines(p.stderr)
    expect(await exited(p)).toBe(0)
    expect(out).toStrictEqual(["walked 0"])
    expect(err.filter((l) => l.includes("conntrack events are off"))).toHaveLength(1)
    expect(err.join("\n")).toMatch(/nf_conntrack_events reads 0 .*the walker will report no flows/)
    expect(conntrackPids(ns)).toStrictEqual([])

    const watcher = ns.spawn(["node", bin, "watch"]) as child.ChildProcess
    const watchErr = lines(watcher.stderr)
    expect(await exited(watcher)).toBe(1)
    expect(watchErr.join("\n")).toMatch(
      /^effect-conntrack: conntrack events are off: .* reads 0 \(turn them on with sysctl/
    )
  })
})
