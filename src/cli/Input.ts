/**
 * What the command line reads besides its flags, as services so that tests can script them: standard input, the
 * conntrack arguments after `--`, and how the process should end when a signal interrupts it.
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Stream from "effect/Stream"

/** Standard input cannot be read: it is a directory, or closed, or not open for reading. */
export class StdinUnreadable extends Data.TaggedError("StdinUnreadable")<{ readonly reason: string }> {
  override get message(): string {
    return `standard input ${this.reason}: give a FILE, or pipe conntrack output in`
  }
}

export class Stdin extends Context.Tag("effect-conntrack/cli/Stdin")<
  Stdin,
  Stream.Stream<Uint8Array, StdinUnreadable>
>() {}

/** What followed `--` on the command line: more arguments for conntrack. */
export class ConntrackArgs extends Context.Tag("effect-conntrack/cli/ConntrackArgs")<
  ConntrackArgs,
  ReadonlyArray<string>
>() {}

/**
 * How the running command wants a SIGINT/SIGTERM to end the process. A command whose output would be cut short
 * (`dump`, `parse`) leaves `signalEndsCleanly` false: the process then exits 130 (SIGINT) or 143 (SIGTERM). `watch`,
 * whose normal end is a signal, sets it: exit 0.
 */
export class ExitStatus extends Context.Reference<ExitStatus>()("effect-conntrack/cli/ExitStatus", {
  defaultValue: (): { signalEndsCleanly: boolean } => ({ signalEndsCleanly: false })
}) {}
