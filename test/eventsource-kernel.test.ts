// The real helper on the real kernel, in a network namespace of our own (no traffic is sent): given file
// capabilities (setcap cap_net_admin+ep) and run by a user that is not root, it listens, and it dies when its parent
// is SIGKILLed, although the kernel clears a parent-death signal set before exec (setpriv --pdeathsig) for a binary
// with file capabilities. Needs root, setcap (libcap2-bin), setpriv, iproute2 and a built helper.
import * as child from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { burst, exited, lines, namespace, serve, unavailable } from "./kernel/netns.js"

const helper = path.join(import.meta.dirname, "..", "dist", "native", "conntrack-events")

const why = (() => {
  if (process.platform !== "linux") return "not Linux"
  if (process.getuid?.() !== 0) return "not root"
  if (!fs.existsSync(helper)) return "the helper is not built (npm run build with libnetfilter-conntrack-dev)"
  for (const [tool, pkg] of [
    ["setcap", "libcap2-bin"],
    ["setpriv", "util-linux"],
    ["ip", "iproute2"]
  ] as const) {
    if (child.spawnSync(tool, ["--help"], { stdio: "ignore" }).error !== undefined) return `no ${tool} (${pkg})`
  }
  return undefined
})()
const required = process.env.CONNTRACK_KERNEL_TESTS === "require"
if (why !== undefined && !required) console.warn(`skip: helper with file capabilities: ${why}`)

/** Running (a zombie waiting for its reaper counts as gone). */
const alive = (pid: number) => {
  try {
    return !/^\S+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"))
  } catch {
    return false
  }
}

const until = async (check: () => boolean, ms: number) => {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (check()) return true
    await new Promise((r) => setTimeout(r, 25))
  }
  return check()
}

// The parent, as the unprivileged user: starts the helper as the walker does (setpriv --pdeathsig KILL, fixed argv),
// prints the helper's pid once the helper says it listens, then waits to be killed.
const parentScript = `
const child = require("node:child_process")
const helper = process.argv[1]
const p = child.spawn("setpriv", ["--pdeathsig", "KILL", "--", helper, "-p", "tcp", "--buffer-size", "1048576", "--parent-pid", String(process.pid)], { stdio: ["ignore", "ignore", "pipe"] })
let err = ""
p.stderr.on("data", (d) => {
  err += d
  if (err.includes("NOTICE: Netlink socket buffer size")) console.log("helper " + p.pid)
})
p.on("exit", (code) => { console.log("helper exited " + code + ": " + err.trim()); process.exit(1) })
setInterval(() => {}, 1000)
`

describe.skipIf(why !== undefined && !required)(
  "the helper with file capabilities, run by a user that is not root",
  () => {
    const cleanup: Array<() => void> = []
    afterEach(() => {
      for (const f of cleanup.splice(0).reverse()) f()
    })

    it("listens, and dies when its parent is SIGKILLed", async () => {
      if (why !== undefined) throw new Error(`required but cannot run: ${why}`)
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ect-native-caps-"))
      cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }))
      fs.chmodSync(dir, 0o755)
      const copy = path.join(dir, "conntrack-events")
      fs.copyFileSync(helper, copy)
      fs.chmodSync(copy, 0o755)
      expect(child.spawnSync("setcap", ["cap_net_admin+ep", copy], { encoding: "utf8" }).status).toBe(0)
      const ns = `ect-native-caps-${process.pid}`
      expect(child.spawnSync("ip", ["netns", "add", ns]).status).toBe(0)
      cleanup.push(() => child.spawnSync("ip", ["netns", "del", ns]))

      const parent = child.spawn(
        "ip",
        [
          "netns",
          "exec",
          ns,
          "setpriv",
          "--reuid=nobody",
          "--regid=nogroup",
          "--clear-groups",
          "--",
          process.execPath,
          "-e",
          parentScript,
          copy
        ],
        { stdio: ["ignore", "pipe", "pipe"] }
      )
      cleanup.push(() => {
        if (parent.exitCode === null && parent.signalCode === null) parent.kill("SIGKILL")
      })
      let out = ""
      parent.stdout.on("data", (d) => {
        out += d
      })
      let err = ""
      parent.stderr.on("data", (d) => {
        err += d
      })
      expect(await until(() => /helper (\d+)\n/.test(out) || parent.exitCode !== null, 10_000)).toBe(true)
      const pid = Number(/helper (\d+)\n/.exec(out)?.[1])
      expect({ pid: Number.isInteger(pid), out, err }).toStrictEqual({ pid: true, out: `helper ${pid}\n`, err: "" })
      cleanup.push(() => {
        if (alive(pid)) process.kill(pid, "SIGKILL")
      })
      // It runs as nobody, with CAP_NET_ADMIN from the file only.
      const status = fs.readFileSync(`/proc/${pid}/status`, "utf8")
      expect(/^Uid:\s+65534\s/m.test(status)).toBe(true)
      expect(alive(pid)).toBe(true)

      parent.kill("SIGKILL")
      expect(await until(() => !alive(pid), 3000)).toBe(true)
    })
  }
)

const kernelWhy = why ?? unavailable()

describe.skipIf(kernelWhy !== undefined && !required)("the helper when its reader stops reading", () => {
  const cleanup: Array<() => void> = []
  afterEach(() => {
    for (const f of cleanup.splice(0).reverse()) f()
  })

  // A 1 MiB socket buffer (2 MiB from the kernel) holds about 2,000 events, and 1,500 connections make about 10,000:
  // more than the socket and the pipe hold, while the helper itself has time to read (tests run side by side).
  const stalled = async (extra: ReadonlyArray<string>) => {
    if (kernelWhy !== undefined) throw new Error(`required but cannot run: ${kernelWhy}`)
    const ns = namespace()
    cleanup.push(() => ns.close())
    await serve(ns, "127.0.0.1:9651")
    const proc = ns.spawn([helper, "-p", "tcp", "--buffer-size", "1048576", ...extra])
    const err = lines(proc.stderr)
    const listening = () => err.some((l) => l.startsWith("NOTICE"))
    expect(await until(listening, 10_000)).toBe(true)
    proc.stdout?.pause() // nobody reads: the pipe fills (64 KiB, about 250 lines)
    const { ports } = await burst(ns, "127.0.0.1", 9651, 1500, 20)
    await new Promise((r) => setTimeout(r, 500))
    const out = lines(proc.stdout)
    proc.stdout?.resume()
    const news = () =>
      new Set(out.filter((l) => l.startsWith("    [NEW] ")).map((l) => Number(/ sport=(\d+)/.exec(l)?.[1])))
    await until(() => ports.every((p) => news().has(p)), 5000)
    proc.kill("SIGTERM")
    await exited(proc)
    return {
      missing: ports.filter((p) => !news().has(p)).length,
      enobufs: err.filter((l) => l.includes("ENOBUFS")).length
    }
  }

  it("keeps reading the socket and loses nothing: the lines wait in its queue", async () => {
    expect(await stalled([])).toStrictEqual({ missing: 0, enobufs: 0 })
  })

  it("without the queue (--queue-size 0) the same burst overflows the socket and loses events", async () => {
    const r = await stalled(["--queue-size", "0"])
    expect(r.enobufs).toBeGreaterThan(0)
    expect(r.missing).toBeGreaterThan(0)
  })
})

describe.skipIf(kernelWhy !== undefined && !required)("the helper next to conntrack -E", () => {
  const cleanup: Array<() => void> = []
  afterEach(() => {
    for (const f of cleanup.splice(0).reverse()) f()
  })

  it("prints the same bytes as conntrack -E -o id for the same events, over IPv4 and IPv6", async () => {
    if (kernelWhy !== undefined) throw new Error(`required but cannot run: ${kernelWhy}`)
    const ns = namespace()
    cleanup.push(() => ns.close())
    await serve(ns, "127.0.0.1:9661", "::1:9662")
    const start = (args: ReadonlyArray<string>) => {
      const proc = ns.spawn(args)
      return { proc, out: lines(proc.stdout), err: lines(proc.stderr) }
    }
    const conntrack = start(["conntrack", "-E", "-o", "id", "-p", "tcp"])
    const ours = start([helper, "-p", "tcp"])
    expect(await until(() => ours.err.some((l) => l.startsWith("NOTICE")), 10_000)).toBe(true)
    await new Promise((r) => setTimeout(r, 300)) // conntrack -E prints nothing when it listens
    await burst(ns, "127.0.0.1", 9661, 20, 4)
    await burst(ns, "::1", 9662, 20, 4)
    ns.run(["conntrack", "-F"]) // DESTROY events, from user space: [USERSPACE] portid=...
    await until(() => conntrack.out.length >= 280 && ours.out.length >= conntrack.out.length, 5000)
    await new Promise((r) => setTimeout(r, 300))
    for (const p of [conntrack.proc, ours.proc]) p.kill("SIGTERM")
    await Promise.all([exited(conntrack.proc), exited(ours.proc)])
    // progname= is looked up after the event arrives, in both, and the process may be gone by then.
    const comparable = (ls: ReadonlyArray<string>) => ls.map((l) => l.replace(/ progname=\S+$/, ""))
    expect(conntrack.out.length).toBeGreaterThanOrEqual(280)
    expect(conntrack.out.some((l) => l.startsWith("[DESTROY] ") && l.includes(" [USERSPACE] portid="))).toBe(true)
    // Each connection's events, in order. The two sockets get the events of one connection in the same order, but
    // events of different connections made at once on different CPUs may reach them in either order (seen in a CI
    // run: a TIME_WAIT of one connection after the NEW of another in one socket, before it in the other).
    const byConnection = (ls: ReadonlyArray<string>) => {
      const events = new Map<string, Array<string>>()
      for (const l of comparable(ls)) {
        const id = / id=(\d+)/.exec(l)?.[1] ?? l
        const known = events.get(id)
        if (known === undefined) events.set(id, [l])
        else known.push(l)
      }
      return [...events].sort(([a], [b]) => a.localeCompare(b))
    }
    expect(ours.out.length).toBe(conntrack.out.length)
    expect(byConnection(ours.out)).toStrictEqual(byConnection(conntrack.out))
    expect(ours.err.at(-1)).toBe(
      `conntrack-events v1.0.0 (effect-conntrack): ${ours.out.length} flow events have been shown.`
    )
  })
})
