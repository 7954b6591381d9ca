/**
 * The full command line, with Effect: every command, and `parse` and `dump --count` when their fast starts
 * (`ParseFile.ts`, `DumpCount.ts`) do not apply or hand over.
 */
import * as fs from "node:fs"
import { defaultTeardown, type Teardown } from "@effect/platform/Runtime"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeStream from "@effect/platform-node/NodeStream"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"
import { run } from "../Cli.js"
import { cannotWrite, stoppedBy } from "./FastStart.js"
import { ExitStatus, Stdin, StdinUnreadable } from "./Input.js"

const errorCode = (error: unknown): string =>
  typeof error === "object" && error !== null && "code" in error ? String(error.code) : String(error)

/** Standard input, failing with a sentence (not a defect) when it is a directory, closed or not readable. */
const stdin: Stream.Stream<Uint8Array, StdinUnreadable> = Stream.suspend(() => {
  let stat: fs.Stats
  try {
    stat = fs.fstatSync(0)
  } catch (error) {
    return Stream.fail(new StdinUnreadable({ reason: `is closed (${errorCode(error)})` }))
  }
  if (stat.isDirectory()) return Stream.fail(new StdinUnreadable({ reason: "is a directory" }))
  return NodeStream.fromReadable(
    () => process.stdin,
    (error) => new StdinUnreadable({ reason: `could not be read (${errorCode(error)})` }),
    { closeOnDone: false }
  )
})

// A reader that went away (`| head -1`): stop quietly, stop conntrack, exit 141 as a process killed by SIGPIPE would.
// Without a listener Node throws "Unhandled 'error' event" with a stack trace. Logs on stderr are best effort.
let stdoutGone = false
const stdoutClosed = new Promise<void>((resolve) => {
  process.stdout.on("error", (error) => {
    if (errorCode(error) !== "EPIPE") process.stderr.write(cannotWrite(errorCode(error)))
    stdoutGone = true
    // Output still queued for the pipe can fail after the program ended with 0, while Node waits for it.
    process.exitCode = 141
    resolve()
  })
})
process.stderr.on("error", () => {})

// Which signal interrupted the program (NodeRuntime.runMain interrupts it on both).
let signal: "SIGINT" | "SIGTERM" | undefined
process.once("SIGINT", () => {
  signal ??= "SIGINT"
})
process.once("SIGTERM", () => {
  signal ??= "SIGTERM"
})

const status = { signalEndsCleanly: false }

/** 141 when stdout closed early; 130/143 when a signal cut a command short; else 1 on failure, 0 on success. */
const teardown: Teardown = (exit, onExit) => {
  // A write that failed as the program ended reports its error a tick later: let it arrive first.
  setImmediate(() => end(exit, onExit))
}

const end: Teardown = (exit, onExit) => {
  if (stdoutGone) return onExit(141)
  if (signal !== undefined && Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)) {
    if (status.signalEndsCleanly) return onExit(0)
    process.stderr.write(stoppedBy(signal))
    return onExit(signal === "SIGINT" ? 130 : 143)
  }
  return defaultTeardown(exit, onExit)
}

run(process.argv).pipe(
  Effect.raceFirst(Effect.promise(() => stdoutClosed)),
  Effect.provideService(Stdin, stdin),
  Effect.provideService(ExitStatus, status),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true, teardown })
)
