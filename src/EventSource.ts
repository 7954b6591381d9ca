/**
 * What delivers conntrack events: the event helper (`native/conntrack-events.c`, built into
 * `dist/native/conntrack-events`) or `conntrack -E`.
 *
 * The helper prints the same lines and stderr markers as `conntrack -E -o id`, but sets its receive buffer on the
 * socket that receives the events (conntrack 1.4.7 sets `--buffer-size` on another socket, so its event socket keeps
 * the system's default and loses events in bursts). `auto` runs the helper when it is there and runs (`--version`
 * exits 0), else `conntrack -E`, and says so once at warning; it also runs `conntrack -E` when a conntrack binary is
 * named (`binary`) or given extra arguments, which the helper does not take.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as Command from "@effect/platform/Command"
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { EventHelperUnavailable } from "./Errors.js"
import { defaults, type ResolvedOptions } from "./Options.js"

/**
 * This package's directory: the nearest one above this module that holds a package.json. The module is in `src/`,
 * in `dist/`, or bundled into the command line's `dist/cli/Main.js`.
 */
const packageRoot = (module: string): string => {
  for (let dir = path.dirname(module); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, "package.json"))) return dir
    if (path.dirname(dir) === dir) return path.dirname(path.dirname(module))
  }
}

/** Where `npm run build` (and npm's install hook) puts the helper: `dist/native/conntrack-events` of this package. */
export const defaultHelperPath: string = path.join(
  packageRoot(fileURLToPath(import.meta.url)),
  "dist",
  "native",
  "conntrack-events"
)

/** The apt line that lets the build compile the helper. */
export const aptLine = "apt-get install -y libnetfilter-conntrack-dev gcc pkg-config"

/** What `conntrack -E` loses that the helper does not, for the fallback warning. */
export const conntrackLoses =
  "conntrack -E keeps the system's default receive buffer on its event socket (1.4.7 applies --buffer-size to " +
  "another socket), so bursts of connections overflow it (ENOBUFS) and connections that open and close between " +
  "two resyncs are never reported"

/** The program that delivers events. */
export type EventSource = Data.TaggedEnum<{
  Helper: { readonly path: string }
  Conntrack: { readonly binary: string }
}>
export const EventSource = Data.taggedEnum<EventSource>()

/** Protocols the helper filters on by name (`-p`); numbers work too, and `all` passes no `-p`. */
const helperProtocols = new Set(["all", "tcp", "udp", "icmp", "icmpv6", "ipv6-icmp", "sctp", "dccp", "gre", "udplite"])

/** Why the helper cannot honour these options (conntrack's extra arguments, a protocol it does not know), if so. */
export const unsupported = (o: ResolvedOptions): Option.Option<string> => {
  const args = [...o.extraArgs, ...o.eventArgs]
  if (args.length > 0) return Option.some(`does not take conntrack's arguments (${args.join(" ")})`)
  if (!helperProtocols.has(o.protocol) && !/^\d{1,3}$/.test(o.protocol)) {
    return Option.some(`does not know the protocol ${JSON.stringify(o.protocol)}`)
  }
  return Option.none()
}

/** The helper's arguments: fixed, no shell. */
export const helperArguments = (o: ResolvedOptions): ReadonlyArray<string> => [
  ...(o.protocol === "all" ? [] : ["-p", o.protocol]),
  ...(o.bufferSize > 0 ? ["--buffer-size", String(o.bufferSize)] : []),
  ...(o.dieWithParent ? ["--parent-pid", String(process.pid)] : [])
]

// Process-wide: whether a helper path runs (probed once), and which fallbacks were already reported.
const probed = new Map<string, Option.Option<string>>()
const warned = new Set<string>()

/**
 * Runs `helper --version`: none when it exits 0, else why it cannot be used. A clear answer (it runs, it is missing, it
 * is not executable) is kept for the process; a timeout is asked again next time.
 */
export const probe = (path: string): Effect.Effect<Option.Option<string>, never, CommandExecutor.CommandExecutor> =>
  Effect.suspend(() => {
    const known = probed.get(path)
    if (known !== undefined) return Effect.succeed(known)
    return Command.exitCode(Command.make(path, "--version")).pipe(
      Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => "timeout" as const }),
      Effect.map((code) =>
        code === 0 ? Option.none() : Option.some(`does not run (--version exited with code ${code})`)
      ),
      Effect.catchAll((error) =>
        Effect.succeed(
          Option.some(
            error === "timeout"
              ? "does not run (--version did not answer within 5 seconds)"
              : error._tag === "SystemError" && error.reason === "NotFound"
                ? "is missing"
                : error._tag === "SystemError" && error.reason === "PermissionDenied"
                  ? "is not executable"
                  : `does not run (${error.message})`
          )
        )
      ),
      // A timeout or an odd failure may pass (a busy machine): only a clear answer is kept.
      Effect.tap((result) =>
        Effect.sync(() => {
          if (Option.isNone(result) || result.value === "is missing" || result.value === "is not executable") {
            probed.set(path, result)
          }
        })
      )
    )
  })

/**
 * The event source for these options. `helper` fails with `EventHelperUnavailable` when the helper cannot be used;
 * `auto` then falls back to `conntrack -E` and logs why once (per path and reason, for the whole process).
 */
export const choose = (
  o: ResolvedOptions
): Effect.Effect<EventSource, EventHelperUnavailable, CommandExecutor.CommandExecutor> =>
  Effect.gen(function* () {
    if (o.eventSource === "conntrack") return EventSource.Conntrack({ binary: o.binary })
    // A conntrack named by path (or wrapped) is what the caller wants to run.
    if (o.eventSource === "auto" && o.binary !== defaults.binary) return EventSource.Conntrack({ binary: o.binary })
    const path = o.helperPath ?? defaultHelperPath
    const why = unsupported(o)
    const reason = Option.isSome(why) ? why : yield* probe(path)
    if (Option.isNone(reason)) return EventSource.Helper({ path })
    if (o.eventSource === "helper") return yield* new EventHelperUnavailable({ path, reason: reason.value })
    const key = `${path}\n${reason.value}`
    if (!warned.has(key)) {
      warned.add(key)
      const fix = Option.isSome(why)
        ? "drop those options to use the helper"
        : `to build it: ${aptLine}, then npm rebuild effect-conntrack`
      yield* Effect.logWarning(
        `the event helper ${path} ${reason.value}: using conntrack -E instead. ${conntrackLoses}; ${fix}`
      )
    }
    return EventSource.Conntrack({ binary: o.binary })
  })
