// Network namespaces of our own for the kernel tests: tracking on, loopback up, removed afterwards with every
// process we started in them.
import * as child from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

// The project root: the nearest folder with a package.json (this file also runs compiled, from dist-bench).
const root = (() => {
  let dir = import.meta.dirname
  while (!fs.existsSync(path.join(dir, "package.json")) && path.dirname(dir) !== dir) dir = path.dirname(dir)
  return dir
})()
export const traffic = path.join(root, "test", "kernel", "traffic.mjs")
export const bin = path.join(root, "dist", "bin.js")

/** Why the kernel suite cannot run here, or undefined when it can. */
export const unavailable = (): string | undefined => {
  if (process.platform !== "linux") return "not Linux"
  if (process.getuid?.() !== 0) return "not root (the kernel suite makes network namespaces)"
  for (const [tool, pkg] of [
    ["conntrack", "conntrack"],
    ["nft", "nftables"],
    ["ip", "iproute2"],
    ["setpriv", "util-linux"],
    ["sysctl", "procps"]
  ] as const) {
    const r = child.spawnSync(tool, ["--version"], { stdio: "ignore" })
    if (r.error !== undefined) return `no ${tool} (install ${pkg})`
  }
  if (!fs.existsSync(bin)) return "dist/bin.js is missing (npm run build)"
  return undefined
}

const sh = (args: ReadonlyArray<string>, input?: string) => {
  const r = child.spawnSync(args[0] as string, args.slice(1), { input, encoding: "utf8", maxBuffer: 256 << 20 })
  if (r.status !== 0) throw new Error(`${args.join(" ")} failed: ${r.stderr}`)
  return r.stdout
}

let count = 0

export interface Namespace {
  readonly name: string
  /** Runs a command inside, waits for it, returns stdout. */
  readonly run: (args: ReadonlyArray<string>, input?: string) => string
  /** Starts a command inside. */
  readonly spawn: (args: ReadonlyArray<string>, options?: child.SpawnOptions) => child.ChildProcess
  /** Pids of the processes inside whose command line matches. */
  readonly pids: (match: RegExp) => ReadonlyArray<number>
  readonly close: () => void
}

export const namespace = (options: { dnat?: boolean; events?: boolean; prefix?: string } = {}): Namespace => {
  const name = `${options.prefix ?? "ect-test"}-${process.pid}-${count++}`
  sh(["ip", "netns", "add", name])
  const run = (args: ReadonlyArray<string>, input?: string) => sh(["ip", "netns", "exec", name, ...args], input)
  try {
    run(["ip", "link", "set", "lo", "up"])
    run(
      ["nft", "-f", "-"],
      [
        "table inet effect_conntrack_test {",
        "  chain out { type filter hook output priority filter; ct state new counter; }",
        "}",
        ...(options.dnat
          ? [
              "table ip effect_conntrack_test_nat {",
              "  chain out { type nat hook output priority -100; ip daddr 127.0.0.2 tcp dport 9201 dnat to 127.0.0.1:9401; }",
              "}"
            ]
          : [])
      ].join("\n")
    )
    run(["sysctl", "-qw", `net.netfilter.nf_conntrack_events=${options.events === false ? 0 : 1}`])
    // One conntrack entry per connection: loopback lets a new connection reuse a client port still in TIME_WAIT
    // (and so its entry), which would make two connections of a burst one.
    run(["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=0", "net.ipv4.ip_local_port_range=1024 65000"])
  } catch (e) {
    sh(["ip", "netns", "del", name])
    throw e
  }
  const spawned: Array<child.ChildProcess> = []
  const pids = (match: RegExp) =>
    sh(["ip", "netns", "pids", name])
      .split("\n")
      .filter((l) => l !== "")
      .map(Number)
      .filter((pid) => {
        try {
          return match.test(fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" "))
        } catch {
          return false
        }
      })
  return {
    name,
    run,
    spawn: (args, spawnOptions = {}) => {
      const p = child.spawn("ip", ["netns", "exec", name, ...args], {
        stdio: ["pipe", "pipe", "pipe"],
        ...spawnOptions
      })
      spawned.push(p)
      return p
    },
    pids,
    close: () => {
      for (const p of spawned) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL")
      // Anything left inside is ours: the namespace is.
      for (const pid of pids(/./)) {
        try {
          process.kill(pid, "SIGKILL")
        } catch {}
      }
      child.spawnSync("ip", ["netns", "del", name])
    }
  }
}

/** Lines of a child's stream, as they come. */
export const lines = (stream: NodeJS.ReadableStream | null): Array<string> => {
  const out: Array<string> = []
  let rest = ""
  stream?.on("data", (chunk: Buffer) => {
    const text = rest + chunk.toString("utf8")
    const parts = text.split("\n")
    rest = parts.pop() ?? ""
    out.push(...parts)
  })
  return out
}

export const waitFor = async <A>(what: string, check: () => A | undefined | false, ms = 10_000): Promise<A> => {
  const end = Date.now() + ms
  for (;;) {
    const value = check()
    if (value !== undefined && value !== false) return value
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

export const exited = (p: child.ChildProcess, ms = 10_000) =>
  new Promise<number | string>((resolve, reject) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve(p.exitCode ?? (p.signalCode as string))
    const timer = setTimeout(() => reject(new Error("the process did not exit")), ms)
    p.once("exit", (code, signal) => {
      clearTimeout(timer)
      resolve(code ?? (signal as string))
    })
  })

/** Echo servers on the given `host:port`s inside the namespace, once they listen. */
export const serve = async (ns: Namespace, ...endpoints: ReadonlyArray<string>) => {
  const p = ns.spawn(["node", traffic, "serve", ...endpoints])
  const out = lines(p.stdout)
  await waitFor("servers", () => out.includes("ready"))
  return p
}

/** `n` short connections, `parallel` at a time: their local ports, and how long they took in seconds. */
export const burst = async (ns: Namespace, host: string, port: number, n: number, parallel: number) => {
  const p = ns.spawn(["node", traffic, "burst", host, String(port), String(n), String(parallel)])
  const out = lines(p.stdout)
  const err = lines(p.stderr)
  await exited(p, 120_000)
  const took = Number(/burst took ([\d.e-]+) s/.exec(err.join("\n"))?.[1] ?? Number.NaN)
  return { ports: JSON.parse(out.join("")) as ReadonlyArray<number>, took }
}
