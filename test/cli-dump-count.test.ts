// `dump --count` starts without Effect (src/cli/DumpCount.ts): the built command line must print byte for byte what
// the full command line (dist/cli/Main.js) prints and end with the same code, whether its dump goes as expected (it
// runs conntrack once, and Effect is never loaded) or not (it hands over, and conntrack runs a second time, for the
// full command line).
import * as child from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { recognize } from "../src/cli/DumpCount.js"
import { plainEnv } from "./support/plainEnv.js"

const dist = path.join(import.meta.dirname, "..", "dist")
const fake = path.join(import.meta.dirname, "..", "fixtures", "fake-conntrack.sh")
const loaded = path.join(import.meta.dirname, "support", "effect-loaded.mjs")
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-conntrack-dump-count-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

// The environment without CONNTRACK_* (the fast start leaves those to the full command line), and without stdbuf's
// own variables, so that what the fake conntrack records is what this command set.
const baseEnv = Object.fromEntries(
  Object.entries(plainEnv()).filter(([name]) => !name.startsWith("_STDBUF_") && name !== "LD_PRELOAD")
)

/** Runs a built script; what it printed and how it ended, how many times conntrack ran, and whether Effect loaded. */
const runNode = (script: string, args: ReadonlyArray<string>, env: Record<string, string>, closeStdout = false) =>
  new Promise<{
    status: number | null
    stdout: string
    stderr: string
    runs: number
    ran: ReadonlyArray<string>
    effect: boolean | undefined
  }>((resolve, reject) => {
    const runs = path.join(dir, `runs-${Math.random()}`)
    const effect = path.join(dir, `effect-${Math.random()}`)
    const proc = child.spawn(process.execPath, ["--import", loaded, path.join(dist, script), ...args], {
      env: { ...baseEnv, ...env, FAKE_RUNS: runs, EFFECT_LOADED_FILE: effect }
    })
    let stdout = ""
    let stderr = ""
    // A reader that went away before the end.
    if (closeStdout) proc.stdout.destroy()
    else
      proc.stdout.setEncoding("utf8").on("data", (d: string) => {
        stdout += d
      })
    proc.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d
    })
    proc.on("error", reject)
    proc.on("close", (status) => {
      const ran = fs.existsSync(runs)
        ? fs
            .readFileSync(runs, "utf8")
            .split("\n")
            .filter((l) => l !== "")
        : []
      resolve({
        status,
        stdout,
        // The logfmt logger stamps each line with the time: the rest must match.
        stderr: stderr.replace(/timestamp=\S+ /g, ""),
        runs: ran.length,
        // conntrack's arguments and the block size stdbuf gave it, a line a run.
        ran,
        // Undefined when the process ended before its exit handlers ran.
        effect: fs.existsSync(effect) ? fs.readFileSync(effect, "utf8") === "true" : undefined
      })
    })
  })

describe("effect-conntrack dump --count, the fast start", () => {
  const goes: ReadonlyArray<readonly [string, Record<string, string>, number]> = [
    ["as expected", {}, 1],
    ["as expected, of 3,500 lines (lines cut between reads)", { FAKE_DUMP_REPEAT: "500" }, 1],
    ["with a line that is not a flow", { FAKE_DUMP_STDOUT: "not a flow" }, 2],
    ["with another stderr line", { FAKE_DUMP_STDERR: "WARNING: something conntrack says" }, 2],
    ["with much stderr", { FAKE_STDERR_BYTES: "20000" }, 2],
    ["with exit code 3", { FAKE_DUMP_EXIT: "3" }, 2]
  ]
  for (const [how, env, runs] of goes) {
    for (const json of [[], ["--json"]]) {
      it(`a dump ${how} ${json.join("")}: the same output and exit code as the full command line`, async () => {
        const args = ["dump", "--count", ...json, "--conntrack", fake]
        const fast = await runNode("bin.js", args, env)
        const full = await runNode("cli/Main.js", args, env)
        expect({ ...fast, runs: 0, ran: [], effect: true }).toStrictEqual({ ...full, runs: 0, ran: [] })
        expect(full).toMatchObject({ runs: 1, effect: true })
        // The same command: conntrack's arguments, and 64 KiB writes through stdbuf.
        expect(fast.ran[0]).toBe("-L -o id -p tcp o=65536")
        expect(full.ran).toStrictEqual(["-L -o id -p tcp o=65536"])
        // Finished without Effect, or handed over (conntrack ran again for the full command line).
        expect(fast).toMatchObject(runs === 1 ? { runs, effect: false, status: 0 } : { runs, effect: true })
      }, 60_000)
    }
  }

  it("a reader that went away: exit 141, as the full command line", async () => {
    const args = ["dump", "--count", "--conntrack", fake]
    const fast = await runNode("bin.js", args, {}, true)
    expect(fast).toMatchObject({ status: 141, stderr: "", runs: 1, effect: false })
    expect(await runNode("cli/Main.js", args, {}, true)).toMatchObject({ status: 141, stderr: "", runs: 1 })
  }, 60_000)

  it("without setpriv: the same message and exit code as the full command line", async () => {
    const empty = fs.mkdtempSync(path.join(dir, "path-"))
    const args = ["dump", "--count", "--conntrack", fake]
    const fast = await runNode("bin.js", args, { PATH: empty })
    const full = await runNode("cli/Main.js", args, { PATH: empty })
    expect(fast).toStrictEqual(full)
    expect(fast.effect).toBe(true)
    expect(fast.status).not.toBe(0)
    expect(fast.stderr).toContain("setpriv")
  }, 60_000)

  it("is taken only for a plain dump --count with no CONNTRACK_* variable set", () => {
    const argv = (...args: Array<string>) => ["node", "bin", ...args]
    expect(recognize(argv("dump", "--count"), {})).toStrictEqual({ json: false, binary: "conntrack" })
    expect(recognize(argv("dump", "--json", "--count", "--conntrack", "/x/ct"), { PATH: "/bin" })).toStrictEqual({
      json: true,
      binary: "/x/ct"
    })
    for (const args of [
      ["dump"],
      ["dump", "--json"],
      ["dump", "--count", "--count"],
      ["dump", "--count", "--json", "--json"],
      ["dump", "--count", "--conntrack"],
      ["dump", "--count", "--conntrack", ""],
      ["dump", "--count", "--conntrack", "--json"],
      ["dump", "--count", "--conntrack", "a", "--conntrack", "b"],
      ["dump", "--count", "--conntrack=/x/ct"],
      ["dump", "--count", "--proto", "tcp"],
      ["dump", "--count", "--help"],
      ["dump", "--count", "--log-level", "debug"],
      ["dump", "--count", "--", "--zone", "3"],
      ["--log-level", "debug", "dump", "--count"],
      ["watch", "--count"]
    ]) {
      expect(recognize(argv(...args), {})).toBeUndefined()
    }
    expect(recognize(argv("dump", "--count"), { CONNTRACK_PROTOCOL: "udp" })).toBeUndefined()
    expect(recognize(argv("dump", "--count"), { CONNTRACK_HEAP_GROWTH_PERCENT: "0" })).toBeUndefined()
  })
})
