import * as path from "node:path"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"
import { run } from "../src/Cli.js"
import { Stdin } from "../src/cli/Input.js"
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
