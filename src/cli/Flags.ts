/**
 * Flags shared by `watch` and `dump`, and how they combine with the environment (`CONNTRACK_*`) into the walker's
 * options: a flag given on the command line wins over the environment, which wins over the defaults.
 */
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as WalkerOptions from "../Options.js"
import { ConntrackArgs } from "./Input.js"

export const json = Options.boolean("json").pipe(Options.withDescription("print JSON lines instead of a table"))

export const proto = Options.text("proto").pipe(
  Options.withDescription(
    "protocol to track (conntrack -p): tcp, udp, ... or all (default: tcp, or CONNTRACK_PROTOCOL)"
  ),
  Options.optional
)

const invalid = (text: string) => Effect.fail(ValidationError.invalidValue(HelpDoc.p(text)))

export const bufferSize = Options.integer("buffer-size").pipe(
  Options.withDescription(
    "receive buffer of the event socket in bytes (--buffer-size), 0 for none (default: 33554432, or CONNTRACK_BUFFER_SIZE)"
  ),
  Options.mapEffect((n) =>
    n >= 0 ? Effect.succeed(n) : invalid(`--buffer-size must be 0 (none) or a number of bytes, not ${n}`)
  ),
  Options.optional
)

export const eventSource = Options.choice("event-source", ["auto", "helper", "conntrack"]).pipe(
  Options.withDescription(
    "what delivers events: the event helper, conntrack -E, or auto (the helper when it is built and runs, else conntrack -E) (default: auto, or CONNTRACK_EVENT_SOURCE)"
  ),
  Options.optional
)

/** More arguments for `conntrack -L` only, one per flag (`--dump-arg --zone --dump-arg 3`). */
export const dumpArgs = Options.text("dump-arg").pipe(
  Options.withDescription(
    "one more argument for conntrack -L only; repeat it for several, e.g. --dump-arg --zone --dump-arg 3 (or CONNTRACK_DUMP_ARGS)"
  ),
  Options.repeated
)

/** More arguments for `conntrack -E` only (`--event-arg -e --event-arg UPDATE,DESTROY`). */
export const eventArgs = Options.text("event-arg").pipe(
  Options.withDescription(
    "one more argument for conntrack -E only; repeat it for several, e.g. --event-arg -e --event-arg UPDATE,DESTROY (or CONNTRACK_EVENT_ARGS)"
  ),
  Options.repeated
)

export const procRoot = Options.directory("proc-root").pipe(
  Options.withDescription(
    "where sys/net/netfilter/nf_conntrack_events is read (default: /proc, or CONNTRACK_PROC_ROOT)"
  ),
  Options.optional
)

export const conntrack = Options.text("conntrack").pipe(
  Options.withDescription("path of the conntrack binary (default: conntrack on the PATH, or CONNTRACK_BINARY)"),
  Options.optional
)

/** A duration in Effect's syntax: `250 millis`, `2 seconds`, `1 minute`; at least `minimum` when given. */
export const duration = (name: string, fallback: string, description: string, minimum?: Duration.DurationInput) =>
  Options.text(name).pipe(
    Options.withDescription(
      `${description} (a duration such as "250 millis" or "2 seconds"${minimum === undefined ? "" : `, at least ${Duration.format(minimum)}`}; default ${fallback})`
    ),
    Options.withDefault(fallback),
    Options.mapEffect((text) => {
      const decoded = Duration.decodeUnknown(text.trim())
      if (Option.isNone(decoded) || !Duration.greaterThan(decoded.value, Duration.zero)) {
        return invalid(
          `--${name} must be a positive duration such as "250 millis" or "2 seconds", not ${JSON.stringify(text)}`
        )
      }
      if (minimum !== undefined && Duration.lessThan(decoded.value, minimum)) {
        return invalid(`--${name} must be at least ${Duration.format(minimum)}, not ${JSON.stringify(text)}`)
      }
      return Effect.succeed(decoded.value)
    })
  )

/** The flags as given (absent when not given). */
export interface Given {
  readonly proto: Option.Option<string>
  readonly bufferSize?: Option.Option<number>
  readonly eventSource?: Option.Option<WalkerOptions.EventSourceKind>
  readonly procRoot: Option.Option<string>
  readonly conntrack: Option.Option<string>
  readonly dumpArgs?: ReadonlyArray<string>
  readonly eventArgs?: ReadonlyArray<string>
}

/** The walker's options: flags (and conntrack arguments after `--`) over environment over defaults. */
export const walkerOptions = (given: Given) =>
  Effect.zipWith(WalkerOptions.config, ConntrackArgs, (env, extraArgs): WalkerOptions.WalkerOptions => {
    const options: { -readonly [K in keyof WalkerOptions.WalkerOptions]: WalkerOptions.WalkerOptions[K] } = { ...env }
    if (Option.isSome(given.proto)) options.protocol = given.proto.value
    if (given.bufferSize !== undefined && Option.isSome(given.bufferSize)) options.bufferSize = given.bufferSize.value
    if (given.eventSource !== undefined && Option.isSome(given.eventSource))
      options.eventSource = given.eventSource.value
    if (Option.isSome(given.procRoot)) options.procRoot = given.procRoot.value
    if (Option.isSome(given.conntrack)) options.binary = given.conntrack.value
    if (extraArgs.length > 0) options.extraArgs = extraArgs
    if (given.dumpArgs !== undefined && given.dumpArgs.length > 0) options.dumpArgs = given.dumpArgs
    if (given.eventArgs !== undefined && given.eventArgs.length > 0) options.eventArgs = given.eventArgs
    return options
  })
