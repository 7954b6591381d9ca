// The built command line (dist/bin.js) as a real process, against hostile surroundings: a reader that goes away, a
// signal in the middle of a dump, stdin that is a directory or not readable, a FIFO at the events path. conntrack is
// a small shell script (no root needed), which records its pid so that the test can tell none was left behind.
import * as child from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { plainEnv } from "./support/plainEnv.js"

const bin = path.join(import.meta.dirname, "..", "dist", "bin.js")
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-conntrack-hostile-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

const dumpLine = (k: number) =>
  `tcp      6 431999 ESTABLISHED src=127.0.0.1 dst=127.0.0.1 sport=${40000 + (k % 20000)} dport=80 src=127.0.0.1 dst=127.0.0.1 sport=80 dport=${40000 + (k % 20000)} [ASSURED] mark=0 use=1 id=${k + 1}`

// -L: FAKE_FLOWS lines, then (with FAKE_SLOW_DUMP) it hangs as a dump of a huge table would; -E: the NOTICE, then
// an UPDATE every 20 ms. Every process writes its pid into FAKE_PIDS.
const fake = path.join(dir, "conntrack")
fs.writeFileSync(
  fake,
  `#!/bin/sh
echo $$ >> "$FAKE_PIDS"
case " $* " in
*" -L "*)
  i=1
  while [ $i -le "\${FAKE_FLOWS:-3}" ]; do
    echo "tcp      6 431999 ESTABLISHED src=127.0.0.1 dst=127.0.0.1 sport=$((40000 + i)) dport=80 src=127.0.0.1 dst=127.0.0.1 sport=80 dport=$((40000 + i)) [ASSURED] mark=0 use=1 id=$i"
    i=$((i + 1))
  done
  [ -n "\${FAKE_SLOW_DUMP:-}" ] && exec sleep 60
  echo "conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown." >&2
  exit 0
  ;;
*" -E "*)
  echo "NOTICE: Netlink socket buffer size has been set to 8388608 bytes." >&2
  while :; do
    echo " [UPDATE] tcp      6 432000 ESTABLISHED src=127.0.0.1 dst=127.0.0.1 sport=40001 dport=80 src=127.0.0.1 dst=127.0.0.1 sport=80 dport=40001 [ASSURED] id=1"
    sleep 0.02
  done
  ;;
esac
exit 2
`,
  { mode: 0o755 }
)

let runs = 0
const procRoot = (content: "fifo" | string) => {
  const root = path.join(dir, `proc-${runs++}`)
  fs.mkdirSync(path.join(root, "sys/net/netfilter"), { recursive: true })
  const file = path.join(root, "sys/net/netfilter/nf_conntrack_events")
  if (content === "fifo") child.execFileSync("mkfifo", [file])
  else fs.writeFileSync(file, content)
  return root
}

interface Run {
  readonly proc: child.ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Pids of the fake conntracks it started. */
  readonly conntracks: () => ReadonlyArray<number>
  /** Whether it loaded Effect, once it has exited (undefined if it ended before its exit handlers ran). */
  readonly effect: () => boolean | undefined
}

/** Preloaded to tell whether Effect was loaded (see the file). */
const effectLoaded = path.join(import.meta.dirname, "support", "effect-loaded.mjs")

const start = (
  args: ReadonlyArray<string>,
  env: Record<string, string> = {},
  stdin: child.StdioNull | number = "ignore",
  base: NodeJS.ProcessEnv = { ...process.env, CONNTRACK_BINARY: fake }
): Run => {
  const pids = path.join(dir, `pids-${runs++}`)
  fs.writeFileSync(pids, "")
  const loaded = path.join(dir, `effect-${runs++}`)
  const proc = child.spawn(process.execPath, ["--import", effectLoaded, bin, ...args], {
    stdio: [stdin, "pipe", "pipe"],
    env: { ...base, FAKE_PIDS: pids, EFFECT_LOADED_FILE: loaded, ...env }
  })
  let out = ""
  let err = ""
  proc.stdout?.on("data", (b: Buffer) => {
    out += b.toString()
  })
  proc.stderr?.on("data", (b: Buffer) => {
    err += b.toString()
  })
  proc.stdout?.on("error", () => {})
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once("exit", (code, signal) => resolve({ code, signal }))
  )
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    exit,
    effect: () => (fs.existsSync(loaded) ? fs.readFileSync(loaded, "utf8") === "true" : undefined),
    conntracks: () =>
      fs
        .readFileSync(pids, "utf8")
        .split("\n")
        .filter((l) => l !== "")
        .map(Number)
  }
}

/** Alive and not a zombie. */
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"))
  } catch {
    return false
  }
}

const until = async (what: string, check: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** Bounded wait for the exit: a process that hangs fails the test instead of the run. */
const exited = async (run: Run, ms = 10_000) => {
  const timer = new Promise<"hung">((resolve) => setTimeout(() => resolve("hung"), ms))
  const result = await Promise.race([run.exit, timer])
  if (result === "hung") {
    run.proc.kill("SIGKILL")
    for (const pid of run.conntracks()) if (alive(pid)) process.kill(pid, "SIGKILL")
    throw new Error(`the process did not exit within ${ms} ms; stderr: ${run.stderr()}`)
  }
  return result
}

const noStackTrace = (stderr: string) => {
  expect(stderr).not.toMatch(/Unhandled|EPIPE|\n\s+at /)
}

describe("a reader that goes away (| head -1)", () => {
  it("parse --format dump FILE stops quietly: exit 141, no stack trace", async () => {
    const file = path.join(dir, "big-dump.txt")
    fs.writeFileSync(file, `${Array.from({ length: 100_000 }, (_, k) => dumpLine(k)).join("\n")}\n`)
    const run = start(["parse", "--format", "dump", file])
    await until("a first line", () => run.stdout().includes("\n"))
    run.proc.stdout?.destroy()
    const { code } = await exited(run)
    expect(code).toBe(141)
    noStackTrace(run.stderr())
    expect(run.stderr()).toBe("")
  })

  it("dump --json of 20,000 flows stops quietly: exit 141, though its output was written in one piece at the end", async () => {
    // The reader reads nothing: the flows (about 6 MB, printed at once when the dump is over) fill the pipe, and the
    // rest waits in the writer when the reader goes away. (A reader that kept reading could take all of it first:
    // then nothing fails and 0 is right.)
    const proc = child.spawn(process.execPath, [bin, "dump", "--json"], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, CONNTRACK_BINARY: fake, FAKE_PIDS: path.join(dir, `pids-${runs++}`), FAKE_FLOWS: "20000" }
    })
    let err = ""
    proc.stderr.on("data", (b: Buffer) => {
      err += b.toString()
    })
    const exit = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)))
    const stdout = proc.stdout
    await until("the output to start", () => stdout.readableLength > 0, 30_000)
    stdout.destroy()
    expect(await exit).toBe(141)
    noStackTrace(err)
  })

  it("watch --json stops quietly and leaves no conntrack behind", async () => {
    const run = start(["watch", "--json", "--interval", "50 millis", "--proc-root", procRoot("1\n")])
    await until("a first walk", () => run.stdout().includes("\n"))
    expect(run.conntracks().some(alive)).toBe(true)
    run.proc.stdout?.destroy()
    const { code } = await exited(run)
    expect(code).toBe(141)
    noStackTrace(run.stderr())
    await until("no fake conntrack alive", () => !run.conntracks().some(alive), 3000)
  })
})

describe("a signal in the middle of dump", () => {
  for (const [signal, code] of [
    ["SIGTERM", 143],
    ["SIGINT", 130]
  ] as const) {
    it(`${signal}: exit ${code}, no output passed off as complete, a sentence on stderr, no conntrack left`, async () => {
      const run = start(["dump", "--json"], { FAKE_SLOW_DUMP: "1" })
      await until("the dump to start", () => run.conntracks().length > 0)
      await new Promise((r) => setTimeout(r, 300))
      run.proc.kill(signal)
      const exit = await exited(run)
      expect(exit.code).toBe(code)
      expect(run.stdout()).toBe("")
      expect(run.stderr()).toBe(`effect-conntrack: stopped by ${signal} before the end: the output is incomplete\n`)
      await until("no fake conntrack alive", () => !run.conntracks().some(alive), 3000)
    })
  }

  for (const [signal, code] of [
    ["SIGTERM", 143],
    ["SIGINT", 130]
  ] as const) {
    it(`${signal} in dump --count's fast start: exit ${code}, a sentence on stderr, no conntrack left`, async () => {
      const run = start(["dump", "--count", "--conntrack", fake], { FAKE_SLOW_DUMP: "1" }, "ignore", plainEnv())
      await until("the dump to start", () => run.conntracks().length > 0)
      await new Promise((r) => setTimeout(r, 300))
      run.proc.kill(signal)
      const exit = await exited(run)
      expect(exit.code).toBe(code)
      expect(run.effect()).toBe(false)
      expect(run.conntracks()).toHaveLength(1)
      expect(run.stdout()).toBe("")
      expect(run.stderr()).toBe(`effect-conntrack: stopped by ${signal} before the end: the output is incomplete\n`)
      await until("no fake conntrack alive", () => !run.conntracks().some(alive), 3000)
    })
  }

  it("a dump that ends prints its flows and exits 0", async () => {
    const run = start(["dump", "--json"])
    expect((await exited(run)).code).toBe(0)
    expect(run.stdout().trim().split("\n")).toHaveLength(3)
  })

  it("watch, whose normal end is a signal, exits 0 on SIGTERM", async () => {
    const run = start(["watch", "--json", "--interval", "50 millis", "--proc-root", procRoot("2\n")])
    await until("a first walk", () => run.stdout().includes("\n"))
    run.proc.kill("SIGTERM")
    expect((await exited(run)).code).toBe(0)
    await until("no fake conntrack alive", () => !run.conntracks().some(alive), 3000)
  })
})

describe("standard input that cannot be read", () => {
  it("a directory: exit 1 and a sentence", async () => {
    const fd = fs.openSync(dir, "r")
    const run = start(["parse", "--format", "dump"], {}, fd)
    fs.closeSync(fd)
    expect((await exited(run)).code).toBe(1)
    expect(run.stderr()).toBe(
      "effect-conntrack: standard input is a directory: give a FILE, or pipe conntrack output in\n"
    )
  })

  it("not open for reading (EBADF): exit 1 and a sentence, not an unexpected error", async () => {
    const fd = fs.openSync(path.join(dir, "write-only"), "w")
    const run = start(["parse", "--format", "dump"], {}, fd)
    fs.closeSync(fd)
    expect((await exited(run)).code).toBe(1)
    expect(run.stderr()).toBe(
      "effect-conntrack: standard input could not be read (EBADF): give a FILE, or pipe conntrack output in\n"
    )
  })
})

describe("a FIFO at the events path", () => {
  it("watch fails at once with a sentence instead of hanging", async () => {
    const root = procRoot("fifo")
    const run = start(["watch", "--proc-root", root])
    const exit = await exited(run, 5000)
    expect(exit.code).toBe(1)
    expect(run.stderr()).toBe(
      `effect-conntrack: conntrack events are off: ${root}/sys/net/netfilter/nf_conntrack_events is a FIFO, not the kernel's file (is the proc root right?) (turn them on with sysctl -w net.netfilter.nf_conntrack_events=1)\n`
    )
    expect(run.conntracks()).toStrictEqual([])
  })
})
