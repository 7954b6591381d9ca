import * as child from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"
import { run } from "../src/Cli.js"
import { Stdin } from "../src/cli/Input.js"
import { recognize } from "../src/cli/ParseFile.js"
import { recordingConsole } from "./support/console.js"

const fixture = (name: string) => path.join(import.meta.dirname, "..", "fixtures", "recorded", name)

const cli = (args: ReadonlyArray<string>, stdin = "") =>
  Effect.gen(function* () {
    const recorded = recordingConsole()
    const exit = yield* run(["node", "effect-conntrack", ...args]).pipe(
      Effect.withConsole(recorded.console),
      Effect.provideService(Stdin, Stream.make(new TextEncoder().encode(stdin))),
      Effect.provide(NodeContext.layer),
      Effect.exit
    )
    return { exit, stdout: recorded.stdout(), stderr: recorded.stderr() }
  })

const dumpLine =
  "tcp      6 431999 ESTABLISHED src=::1 dst=::1 sport=37838 dport=8084 src=::1 dst=::1 sport=8084 dport=37838 [ASSURED] mark=0 use=1 id=1983568462"

describe("effect-conntrack parse", () => {
  it.effect("prints one JSON flow per line, with the documented keys", () =>
    Effect.gen(function* () {
      const { exit, stdout, stderr } = yield* cli(["parse", "--format", "dump"], `${dumpLine}\n`)
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(stderr).toBe("")
      expect(JSON.parse(stdout)).toStrictEqual({
        proto: "tcp",
        protonum: 6,
        timeout: 431999,
        state: "ESTABLISHED",
        family: "ipv6",
        assured: true,
        mark: 0,
        use: 1,
        id: 1983568462,
        original: { src: "::1", dst: "::1", sport: 37838, dport: 8084 },
        reply: { src: "::1", dst: "::1", sport: 8084, dport: 37838 }
      })
    })
  )

  it.effect("reports each bad line as `line N: reason`, goes on, and fails at the end", () =>
    Effect.gen(function* () {
      const input = `${dumpLine}\nnot a flow\n\n${dumpLine}\n    [NEW] ${dumpLine}\n`
      const { exit, stdout, stderr } = yield* cli(["parse", "--format", "dump"], input)
      expect(stdout.trim().split("\n")).toHaveLength(2)
      expect(stderr).toBe(
        "line 2: unknown protocol name: not\n" +
          "line 5: an event line ([NEW]) where a dump line was expected\n" +
          "effect-conntrack: 2 of 4 lines could not be parsed\n"
      )
      expect(Exit.isFailure(exit)).toBe(true)
    })
  )

  it.effect("--count prints only the counts, from a file", () =>
    Effect.gen(function* () {
      const { exit, stdout, stderr } = yield* cli(["parse", "--format", "events", "--count", fixture("events-id.txt")])
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(stdout).toBe("parsed 56, failed 0\n")
      expect(stderr).toBe("")
    })
  )

  it.effect("refuses a format it does not know", () =>
    Effect.gen(function* () {
      const { exit } = yield* cli(["parse", "--format", "xml"], dumpLine)
      expect(Exit.isFailure(exit)).toBe(true)
    })
  )
})

// `parse --format F [--count] [FILE]` starts without Effect (src/cli/ParseFile.ts): the built command line must print
// byte for byte what the full command line (dist/cli/Main.js) prints, and end with the same code.
describe("effect-conntrack parse FILE, the fast start", () => {
  const dist = path.join(import.meta.dirname, "..", "dist")
  // Asynchronous: a spawnSync would hold the test worker's event loop for seconds (vitest's RPC times out).
  const runNode = (script: string, args: ReadonlyArray<string>, input?: Buffer) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const proc = child.spawn(process.execPath, [path.join(dist, script), ...args])
      let stdout = ""
      let stderr = ""
      proc.stdout.setEncoding("utf8").on("data", (d: string) => {
        stdout += d
      })
      proc.stderr.setEncoding("utf8").on("data", (d: string) => {
        stderr += d
      })
      proc.on("error", reject)
      proc.on("close", (status) => resolve({ status, stdout, stderr }))
      proc.stdin.on("error", () => {})
      proc.stdin.end(input)
    })
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-conntrack-parse-"))
  const mixed = path.join(dir, "mixed.txt")
  fs.writeFileSync(
    mixed,
    Buffer.concat([
      Buffer.from(`${dumpLine}\r\nnot a flow\n\n   \n    [NEW] ${dumpLine}\n`),
      Buffer.from(`${dumpLine.replace("mark=0", "secctx=\u00e9t\u00e9")}\n${"x".repeat(3000)}\nlast ${dumpLine}`)
    ])
  )
  const files = [mixed, fixture("dump-ktimestamp.txt"), fixture("events-timestamp.txt")]

  for (const format of ["dump", "events"]) {
    for (const count of [[], ["--count"]]) {
      it(`--format ${format} ${count.join("")}: the same output and exit code as the full command line`, async () => {
        for (const file of files) {
          const args = ["parse", ...count, "--format", format, file]
          expect(await runNode("bin.js", args)).toStrictEqual(await runNode("cli/Main.js", args))
          const input = fs.readFileSync(file)
          const piped = ["parse", ...count, "--format", format]
          expect(await runNode("bin.js", piped, input)).toStrictEqual(await runNode("cli/Main.js", piped, input))
        }
      }, 60_000)
    }
  }

  it("is taken only for a plain parse of a readable file or of standard input", () => {
    const file = fixture("dump-id.txt")
    const argv = (...args: Array<string>) => ["node", "bin", ...args]
    expect(recognize(argv("parse", "--format", "dump", file))).toStrictEqual({ events: false, count: false, file })
    expect(recognize(argv("parse", file, "--count", "--format", "events"))).toStrictEqual({
      events: true,
      count: true,
      file
    })
    expect(recognize(argv("parse", "--format", "dump"))).toStrictEqual({ events: false, count: false, file: undefined })
    for (const args of [
      ["parse", "--format", "xml", file],
      ["parse", "--format", "dump", "--count", "--count", file],
      ["parse", "--format", "dump", "--format", "dump", file],
      ["parse", "--format", "dump", "--help", file],
      ["parse", "--format", "dump", dir],
      ["parse", "--format", "dump", path.join(dir, "missing")],
      ["parse", "--format", "dump", file, file],
      ["--log-level", "debug", "parse", "--format", "dump", file],
      ["dump", "--format", "dump", file]
    ]) {
      expect(recognize(argv(...args))).toBeUndefined()
    }
  })
})
