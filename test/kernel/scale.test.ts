// The walker at the scale and load the correct-under-load issue names, on the real kernel: 100,000 TIME_WAIT entries
// across a forced resync, and a flood of short connections over a 100,000-entry table. Each test in a namespace of its
// own (loopback only); entries are inserted with `conntrack -R` (127.x addresses, no traffic).
import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { bin, burst, lines, type Namespace, namespace, serve, unavailable, waitFor } from "./netns.js"

const why = unavailable()
const required = process.env.CONNTRACK_KERNEL_TESTS === "require"

interface Walked {
  readonly walk: number
  readonly active: boolean
  readonly flow: {
    readonly id: number
    readonly state?: string
    readonly original: { src: string; dst: string; sport: number; dport: number }
  }
}

/** `watch --json`, its lines parsed as they come (a walk of 100,000 flows is too many to parse again and again). */
const watch = (ns: Namespace, interval: string) => {
  const proc = ns.spawn(["node", bin, "--log-level", "debug", "watch", "--json", "--interval", interval])
  const out = lines(proc.stdout)
  const err = lines(proc.stderr)
  const walked: Array<Walked> = []
  let read = 0
  const update = () => {
    for (; read < out.length; read++) {
      const line = out[read] as string
      if (line.startsWith("{")) walked.push(JSON.parse(line) as Walked)
    }
    return walked
  }
  const syncs = () => err.filter((l) => l.includes("conntrack walker synced")).length
  const restarts = () => err.filter((l) => l.includes("conntrack walker restarting")).length
  return { proc, err, update, syncs, restarts }
}

/** Inserts `count` entries, `-I` lines made by `line(k)` for k = 1..count, with `conntrack -R`. */
const insert = (ns: Namespace, count: number, line: (k: number) => string) => {
  const file = path.join("/tmp", `${ns.name}-${count}.txt`)
  fs.writeFileSync(file, Array.from({ length: count }, (_, i) => line(i + 1)).join("\n"))
  try {
    ns.run(["conntrack", "-R", file])
  } finally {
    fs.rmSync(file, { force: true })
  }
}

/** The highest walk number (a spread of 100,000 numbers would overflow the stack). */
const lastOf = (walked: ReadonlyArray<Walked>) => walked.reduce((m, x) => Math.max(m, x.walk), 0)

const address = (k: number) => `127.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`

describe.skipIf(why !== undefined && !required)("on a real kernel, at scale", () => {
  let spaces: Array<Namespace> = []
  const make = () => {
    if (why !== undefined) throw new Error(`the kernel suite is required but cannot run: ${why}`)
    const ns = namespace()
    spaces.push(ns)
    return ns
  }
  afterEach(() => {
    for (const ns of spaces) ns.close()
    spaces = []
  })

  it("reports each of 100,000 TIME_WAIT entries dead exactly once, across a forced resync", async () => {
    const ns = make()
    insert(
      ns,
      100_000,
      (k) =>
        `-I -p tcp -s ${address(k)} -d 127.200.0.1 --sport ${1024 + (k % 60000)} --dport 80 --state TIME_WAIT -t 86400 -u SEEN_REPLY,ASSURED`
    )
    insert(
      ns,
      2_000,
      (k) =>
        `-I -p tcp -s ${address(k)} -d 127.201.0.1 --sport ${1024 + k} --dport 80 --state ESTABLISHED -t 86400 -u SEEN_REPLY,ASSURED`
    )
    const w = watch(ns, "2 seconds")
    const key = (x: Walked) => `${x.flow.original.src}:${x.flow.original.sport}`
    const closed = (x: Walked) => x.flow.original.dst === "127.200.0.1"
    await waitFor(
      "the 100,000 TIME_WAIT entries reported dead",
      () => w.update().filter((x) => !x.active && closed(x)).length >= 100_000,
      60_000
    )
    const [events] = ns.pids(/conntrack .*-E|conntrack-events /)
    expect(events).toBeDefined()
    process.kill(events as number, "SIGKILL")
    await waitFor("a resync after the kill", () => w.syncs() >= 2, 30_000)
    // Two more walks after the resync.
    const resyncedAt = lastOf(w.update())
    await waitFor("two walks after the resync", () => lastOf(w.update()) >= resyncedAt + 2, 30_000)
    const all = w.update()
    const deaths = new Map<string, number>()
    for (const x of all) if (!x.active && closed(x)) deaths.set(key(x), (deaths.get(key(x)) ?? 0) + 1)
    expect(deaths.size).toBe(100_000)
    expect([...deaths.values()].filter((n) => n !== 1)).toStrictEqual([])
    expect(all.filter((x) => x.active && closed(x))).toStrictEqual([])
    // The walk before the last: the last may still be printing.
    const lastWalk = lastOf(all) - 1
    expect(all.filter((x) => x.walk === lastWalk && x.active && x.flow.original.dst === "127.201.0.1")).toHaveLength(
      2_000
    )
    expect(all.filter((x) => !x.active && x.flow.original.dst === "127.201.0.1")).toStrictEqual([])
  }, 180_000)

  it("under a flood of short connections over a 100,000-entry table it does not loop on resyncs, and recovers", async () => {
    const ns = make()
    insert(
      ns,
      100_000,
      (k) =>
        `-I -p tcp -s ${address(k)} -d 127.202.0.1 --sport ${1024 + (k % 60000)} --dport 80 --state ESTABLISHED -t 86400 -u SEEN_REPLY,ASSURED`
    )
    await serve(ns, "127.0.0.1:9101")
    // Walks every 5 seconds: each prints the 100,000 active flows.
    const w = watch(ns, "5 seconds")
    await waitFor("the first sync", () => w.syncs() >= 1, 60_000)
    const seconds = 20
    const started = Date.now()
    let connections = 0
    while (Date.now() - started < seconds * 1000) {
      const { ports } = await burst(ns, "127.0.0.1", 9101, 2000, 100)
      connections += ports.length
    }
    const flooded = (Date.now() - started) / 1000
    const during = w.restarts()
    // After the flood: it settles, and stays settled.
    await new Promise((r) => setTimeout(r, 5000))
    const settled = w.restarts()
    await new Promise((r) => setTimeout(r, 11_000))
    const after = w.restarts() - settled
    console.log(
      `flood: ${connections} connections in ${flooded.toFixed(1)} s (${Math.round(connections / flooded)}/s) over 100,000 entries; ` +
        `restarts during: ${during} (${((during * 60) / flooded).toFixed(1)}/min), in the 10 s after it settled: ${after}`
    )
    expect(after).toBe(0)
    // The walker's active set is the kernel's: every entry not closed (nor seen only as NEW), by id and tuple.
    const kernel = new Map<string, string>()
    for (const line of ns.run(["conntrack", "-L", "-o", "id", "-p", "tcp"]).split("\n")) {
      const m = /^tcp +6 \d+ (\S+) src=(\S+) .*?sport=(\d+) .* id=(\d+)$/.exec(line)
      if (m === null || m[1] === "TIME_WAIT" || m[1] === "CLOSE" || line.includes("[UNREPLIED]")) continue
      kernel.set(`${m[4]} ${m[2]}:${m[3]}`, m[1] as string)
    }
    const all = w.update()
    // The walk before the last: the last may still be printing.
    const lastWalk = lastOf(all) - 1
    const walker = new Map<string, string>(
      all
        .filter((x) => x.walk === lastWalk && x.active)
        .map((x) => [`${x.flow.id} ${x.flow.original.src}:${x.flow.original.sport}`, x.flow.state ?? "-"] as const)
    )
    const extra = [...walker].filter(([key]) => !kernel.has(key))
    const missing = [...kernel].filter(([key]) => !walker.has(key))
    expect({
      extra: extra.slice(0, 5),
      extras: extra.length,
      missing: missing.slice(0, 5),
      missings: missing.length
    }).toStrictEqual({
      extra: [],
      extras: 0,
      missing: [],
      missings: 0
    })
  }, 240_000)
})
