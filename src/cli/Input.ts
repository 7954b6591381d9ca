/**
 * Where the command line reads text that is not in a file: standard input, as a service so that tests can
 * script it.
 */
import * as Context from "effect/Context"
import type * as Stream from "effect/Stream"

export class Stdin extends Context.Tag("effect-conntrack/cli/Stdin")<Stdin, Stream.Stream<Uint8Array>>() {}
