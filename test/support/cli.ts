// Drives the real command line (`Cli.run`) with a recording console, a scripted conntrack and a chosen stdin.

import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { run } from "../../src/Cli.js"
import { Stdin } from "../../src/cli/Input.js"
import * as Scripted from "../../src/testing.js"
import { recordingConsole } from "./console.js"

/** A proc root whose nf_conntrack_events reads `content` (or is missing). */
export const procRootWith = (content: string | undefined): string => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "effect-conntrack-proc-"))
  if (content !== undefined) {
    fs.mkdirSync(path.join(root, "sys/net/netfilter"), { recursive: true })
    fs.writeFileSync(path.join(root, "sys/net/netfilter/nf_conntrack_events"), content)
  }
  return root
}

/** The command line as a fiber-friendly effect: its exit, and what it printed on stdout and stderr so far. */
export const cli = (args: ReadonlyArray<string>, options: { script?: Scripted.Script; stdin?: string } = {}) => {
  const recorded = recordingConsole()
  const spawned: { get: Effect.Effect<ReadonlyArray<Scripted.Spawned>> } = { get: Effect.succeed([]) }
  const scripted = Layer.tap(Scripted.layer(options.script ?? {}), (ctx) =>
    Effect.sync(() => {
      spawned.get = Context.get(ctx, Scripted.ScriptedConntrack).spawned
    })
  )
  const effect = run(["node", "effect-conntrack", ...args]).pipe(
    Effect.withConsole(recorded.console),
    Effect.provideService(Stdin, Stream.make(new TextEncoder().encode(options.stdin ?? ""))),
    Effect.provide(Layer.merge(NodeContext.layer, scripted)),
    Effect.exit
  )
  return {
    effect,
    stdout: recorded.stdout,
    stderr: recorded.stderr,
    /** What the scripted conntrack was asked to run. */
    spawned: Effect.suspend(() => spawned.get)
  }
}

/**
 * Waits (in real time: the command reads real files first) until the test clock holds a pending sleep that ends at
 * `at` milliseconds, that is until a fiber got that far.
 */
export const sleepingUntil = (at: number) =>
  Effect.gen(function* () {
    for (let k = 0; k < 5_000; k++) {
      const sleeps = yield* TestClock.sleeps()
      if (Chunk.some(sleeps, (t) => t === at)) return
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 1)))
    }
    return yield* Effect.dieMessage(`no fiber reached a sleep until ${at} ms`)
  })
