/**
 * What the command line reads besides its flags, as services so that tests can script them: standard input, and
 * the conntrack arguments after `--`.
 */
import * as Context from "effect/Context"
import type * as Stream from "effect/Stream"

export class Stdin extends Context.Tag("effect-conntrack/cli/Stdin")<Stdin, Stream.Stream<Uint8Array>>() {}

/** What followed `--` on the command line: more arguments for conntrack. */
export class ConntrackArgs extends Context.Tag("effect-conntrack/cli/ConntrackArgs")<
  ConntrackArgs,
  ReadonlyArray<string>
>() {}
