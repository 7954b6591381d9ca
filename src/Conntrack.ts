/**
 * The conntrack CLI as Effect streams: `dump` runs `conntrack -L -o id`, `events` runs `conntrack -E -o id`, each a
 * `Stream` of parsed flows from a scoped child process with typed errors.
 *
 * stdout and stderr are read from the start. stderr lines are logged (the buffer-size NOTICE at debug, the rest at
 * warning through the `LogLimit` rate limit; a failing dump's stderr only in its error); an ENOBUFS warning fails the
 * event stream (conntrack 1.4.6+ keeps running after losing events). A malformed stdout line is logged (rate-limited)
 * and counted and the stream goes on. Closing the scope stops the child: SIGTERM,
 * then SIGKILL after `stopTimeout`; started through `setpriv --pdeathsig KILL`, it also dies with this process. A dump
 * runs through `stdbuf -o 65536` when stdbuf is on the PATH (`dumpWriteSize`): 64 KiB writes instead of 4 KiB.
 */
import * as Command from "@effect/platform/Command"
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import type { PlatformError } from "@effect/platform/Error"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import {
  type ConntrackError,
  ConntrackExited,
  ConntrackNotFound,
  EventHelperUnavailable,
  EventOverflow,
  PermissionDenied
} from "./Errors.js"
import * as EventSource from "./EventSource.js"
import type { Flow } from "./Flow.js"
import {
  dumpArguments,
  hasStdbuf,
  isDumpWriteSize,
  isStdbufFailure,
  isTrailer,
  MAX_DUMP_WRITE_SIZE,
  protocolArguments,
  stdbufFailed,
  wrapped
} from "./internal/conntrackCommand.js"
import { describeState, hasEnded, processState } from "./internal/processState.js"
import { stdoutFlows } from "./internal/stdoutFlows.js"
import * as LogLimit from "./LogLimit.js"
import * as Metrics from "./Metrics.js"
import { type ConntrackOptions, resolve } from "./Options.js"
import type { LineFormat } from "./Parser.js"

/** The arguments conntrack is run with, for `-L` (dump) or `-E` (events). */
export const argumentsFor = (format: LineFormat, options: ConntrackOptions = {}): ReadonlyArray<string> => {
  const o = resolve(options)
  return format === "dump"
    ? dumpArguments(o.protocol, o.extraArgs, o.dumpArgs)
    : [
        ...(o.bufferSize > 0 ? ["--buffer-size", String(o.bufferSize)] : []),
        "-E",
        "-o",
        "id",
        ...protocolArguments(o.protocol),
        ...o.extraArgs,
        ...o.eventArgs
      ]
}

/**
 * The program that delivers events and its arguments: the event helper or `conntrack -E`, as `eventSource` says (see
 * `EventSource.choose`).
 */
export const eventsProgram = (
  options: ConntrackOptions = {}
): Effect.Effect<
  { readonly program: string; readonly args: ReadonlyArray<string> },
  EventHelperUnavailable,
  CommandExecutor.CommandExecutor
> =>
  Effect.map(EventSource.choose(resolve(options)), (source) =>
    source._tag === "Helper"
      ? { program: source.path, args: EventSource.helperArguments(resolve(options)) }
      : { program: resolve(options).binary, args: argumentsFor("events", options) }
  ).pipe(Effect.tap(({ program, args }) => Effect.logDebug(`events from ${program} ${args.join(" ")}`)))

/** A running conntrack: its flows, and (for `-E`) a signal that its event socket is listening. */
export interface Running {
  /** Parsed flows. The event stream fails when conntrack ends, whatever its exit code, or reports ENOBUFS. */
  readonly flows: Stream.Stream<Flow, ConntrackError>
  /**
   * Completes once conntrack printed its buffer-size NOTICE (its event socket exists); fails if conntrack ends
   * first; without `--buffer-size` it waits until then.
   */
  readonly listening: Effect.Effect<void, ConntrackError>
  readonly pid: number
}

/** How a `ConntrackExited` starts its problem when stdbuf, not conntrack, failed. */
const THROUGH_STDBUF = "could not be run through stdbuf"

/** Whether a dump failed because stdbuf did, before conntrack ran (see `dump`, which then dumps again without it). */
const isStdbufError = (error: ConntrackError): boolean =>
  error._tag === "ConntrackExited" && error.problem?.startsWith(THROUGH_STDBUF) === true

const STDERR_KEPT = 10
/** Longest stderr line kept for an error's text or a log line (a flood can send megabytes in one line). */
const STDERR_LINE_KEPT = 500

const isPermissionLine = (line: string) =>
  /must be root or get CAP_NET_ADMIN|Can't open netlink socket|Operation not permitted/.test(line)

/** Starts conntrack in the current scope. */
export const start = (
  format: LineFormat,
  options: ConntrackOptions = {}
): Effect.Effect<Running, ConntrackError, CommandExecutor.CommandExecutor | Scope.Scope> =>
  Effect.gen(function* () {
    const o = resolve(options)
    const { program, args } =
      format === "events" ? yield* eventsProgram(options) : { program: o.binary, args: argumentsFor(format, options) }
    const shown = `${program} ${args.join(" ")}`
    if (format === "dump" && !isDumpWriteSize(o.dumpWriteSize)) {
      yield* Effect.logWarning(
        `dumpWriteSize ${o.dumpWriteSize} is not a whole number of bytes from 0 to ${MAX_DUMP_WRITE_SIZE}: conntrack ` +
          "writes its dump as it does by itself"
      )
    }
    const writeSize = format === "dump" && isDumpWriteSize(o.dumpWriteSize) ? o.dumpWriteSize : 0
    // The PATH read once: stdbuf is looked up, and forgotten if it fails, for the PATH the spawn used.
    const searchPath = process.env.PATH
    const stdbuf = writeSize > 0 && (yield* Effect.sync(() => hasStdbuf(searchPath)))
    const spawned = wrapped(program, args, { dieWithParent: o.dieWithParent, writeSize, stdbuf })
    const command = Command.make(spawned.command, ...spawned.args)
    // stdbuf only makes the dump's writes larger: one that fails to run is left out from then on.
    const stdbufFailure = (how: string, stderr: ReadonlyArray<string>) =>
      new ConntrackExited({
        command: shown,
        problem:
          `${THROUGH_STDBUF} -o ${writeSize} (${how}): this process runs conntrack without stdbuf from now on ` +
          "(CONNTRACK_DUMP_WRITE_SIZE=0, or dumpWriteSize: 0, does so from the start)",
        stderr
      })
    const failing = (error: ConntrackError): Effect.Effect<never, ConntrackError> =>
      isStdbufError(error)
        ? Effect.zipRight(
            Effect.sync(() => stdbufFailed(searchPath)),
            Effect.fail(error)
          )
        : Effect.fail(error)

    const proc = yield* Command.start(command).pipe(
      Effect.mapError((error): ConntrackError => {
        if (error._tag === "SystemError" && error.reason === "NotFound") {
          // With dieWithParent the program spawned is setpriv: that is what is missing. Without it, stdbuf if used.
          if (o.dieWithParent) return new ConntrackNotFound({ binary: "setpriv", pkg: "util-linux" })
          if (stdbuf) return stdbufFailure("it was not found", [])
          if (program !== o.binary) return new EventHelperUnavailable({ path: program, reason: "is missing" })
          return new ConntrackNotFound({ binary: o.binary, pkg: "conntrack" })
        }
        if (error._tag === "SystemError" && error.reason === "PermissionDenied") {
          if (!o.dieWithParent && stdbuf) return stdbufFailure("it could not be executed", [error.message])
          return new PermissionDenied({ command: shown, stderr: [error.message] })
        }
        return new ConntrackExited({ command: shown, problem: `could not be started: ${error.message}`, stderr: [] })
      }),
      Effect.catchAll(failing)
    )

    // Runs before the executor's own finalizer (which waits for the child with no time limit).
    yield* Effect.addFinalizer(() => stop(proc, shown, o.stopTimeout))

    const listening = yield* Deferred.make<void>()
    // conntrack 1.4.6+ keeps running after ENOBUFS: it is stopped, and its end is then reported as the overflow. (Not
    // `Stream.interruptWhen`: that races every chunk read against the signal, a cost paid on every chunk.)
    let overflowed = false
    const stderrTail: Array<string> = []
    let permissionRefused = false

    // A dump's other stderr lines are logged only if it succeeds: when it fails they are the error's text.
    const heldForDump: Array<string> = []
    const onStderrLine = (full: string): Effect.Effect<void> => {
      if (full.trim() === "") return Effect.void
      const line = LogLimit.cut(full, STDERR_LINE_KEPT)
      stderrTail.push(line)
      if (stderrTail.length > STDERR_KEPT) stderrTail.shift()
      if (line.startsWith("NOTICE: Netlink socket buffer size")) {
        return Effect.logDebug(line).pipe(Effect.zipRight(Deferred.succeed(listening, undefined)))
      }
      if (isTrailer(line)) {
        return Effect.logDebug(line)
      }
      if (line.includes("We have hit ENOBUFS")) {
        if (overflowed) return Effect.void
        overflowed = true
        return Metric.increment(Metrics.overflows).pipe(
          Effect.zipRight(LogLimit.warn(`${shown}: ${line}`)),
          Effect.zipRight(stop(proc, shown, o.stopTimeout))
        )
      }
      // These become the typed error's text: no separate warning.
      if (isPermissionLine(line)) {
        permissionRefused = true
        return Effect.logDebug(line)
      }
      if (/failed to execute .*No such file or directory/.test(line)) return Effect.logDebug(line)
      // The two lines that follow an ENOBUFS warning say nothing new.
      if (line.startsWith("This message means that") || line.startsWith("Please, check --buffer-size")) {
        return Effect.logDebug(line)
      }
      if (format === "dump") {
        heldForDump.push(line)
        if (heldForDump.length > STDERR_KEPT) heldForDump.shift()
        return Effect.void
      }
      // Rate-limited, and shared across restarts: a conntrack that keeps failing is not logged at every restart.
      return LogLimit.warn(`${shown}: ${line}`)
    }
    const logHeldForDump = Effect.suspend(() =>
      Effect.forEach(heldForDump, (line) => LogLimit.warn(`${shown}: ${line}`))
    )

    const stderrFiber = yield* proc.stderr.pipe(
      Stream.decodeText(),
      Stream.splitLines,
      Stream.runForEach(onStderrLine),
      Effect.ignore,
      Effect.forkScoped
    )

    const exitError = (exitCode: number | undefined, signal: string | undefined): ConntrackError => {
      if (overflowed) return new EventOverflow({ command: shown })
      const stderr = [...stderrTail]
      if (stdbuf && isStdbufFailure(exitCode, stderr)) {
        return stdbufFailure(exitCode !== undefined ? `exit code ${exitCode}` : `signal ${signal}`, stderr)
      }
      if (permissionRefused) return new PermissionDenied({ command: shown, stderr })
      if (exitCode === 127 && stderr.some((l) => /No such file or directory/.test(l))) {
        // setpriv could not execute the program: conntrack, or the event helper.
        return program === o.binary
          ? new ConntrackNotFound({ binary: o.binary, pkg: "conntrack" })
          : new EventHelperUnavailable({ path: program, reason: "is missing" })
      }
      return new ConntrackExited({
        command: shown,
        ...(exitCode !== undefined ? { exitCode } : {}),
        ...(signal !== undefined ? { signal } : {}),
        stderr
      })
    }

    // After stdout ends: all of stderr is read, then the exit code decides. `exitCode` fails for a child killed by
    // a signal.
    const ending: Effect.Effect<void, ConntrackError> = Fiber.join(stderrFiber).pipe(
      Effect.zipRight(
        proc.exitCode.pipe(
          Effect.either,
          Effect.flatMap((exit) => {
            if (Either.isRight(exit)) {
              const code = exit.right as number
              return code === 0 && format === "dump" && !permissionRefused
                ? logHeldForDump
                : failing(exitError(code, undefined))
            }
            return failing(exitError(undefined, signalOf(exit.left)))
          })
        )
      )
    )

    const flows = proc.stdout.pipe(
      stdoutFlows(format, shown, {
        failed: (error: PlatformError): ConntrackError =>
          new ConntrackExited({ command: shown, problem: `output could not be read: ${error.message}`, stderr: [] }),
        after: ending
      })
    )
    const exitedFirst = proc.exitCode.pipe(
      Effect.either,
      Effect.zipLeft(Fiber.join(stderrFiber)),
      Effect.flatMap((exit) =>
        failing(
          Either.isRight(exit) ? exitError(exit.right as number, undefined) : exitError(undefined, signalOf(exit.left))
        )
      )
    )
    return { flows, listening: Effect.raceFirst(Deferred.await(listening), exitedFirst), pid: proc.pid as number }
  })

/** How a signal went: the child ended, or not within the wait (and why the kill failed, if it did). */
type Signalled = { readonly ended: true } | { readonly ended: false; readonly failed?: string }

/**
 * Sends `signal` and waits at most `timeout` for the child to end. A kill that fails waits the same: it fails when the
 * child has just ended and this process has not read its exit yet (seen twice in four runs of the capture benchmark,
 * on a `conntrack -L` being stopped).
 */
const signalled = (
  proc: CommandExecutor.Process,
  signal: "SIGTERM" | "SIGKILL",
  timeout: Duration.Duration
): Effect.Effect<Signalled> =>
  Effect.gen(function* () {
    const sent = yield* Effect.interruptible(proc.kill(signal)).pipe(Effect.timeoutOption(timeout), Effect.either)
    if (Either.isRight(sent)) return Option.isSome(sent.right) ? { ended: true } : { ended: false }
    const exited = yield* Effect.interruptible(Effect.ignore(proc.exitCode)).pipe(Effect.timeoutOption(timeout))
    return Option.isSome(exited) ? { ended: true } : { ended: false, failed: sent.left.message }
  })

/**
 * Stops a child: SIGTERM, then SIGKILL if it has not ended within `timeout`, each wait bounded. A kill that fails
 * because the child ended meanwhile is no failure. Finalizers are uninterruptible: the waits are made interruptible so
 * that the timeouts can cut them short. A child not seen to end after SIGKILL is logged as an error if the kernel still
 * runs it, and as a warning (our event loop was held up) if it has ended.
 */
export const stop = (proc: CommandExecutor.Process, shown: string, timeout: Duration.Duration): Effect.Effect<void> =>
  Effect.gen(function* () {
    if (!(yield* proc.isRunning)) return
    const term = yield* signalled(proc, "SIGTERM", timeout)
    if (term.ended || !(yield* proc.isRunning)) return
    yield* Effect.logWarning(
      term.failed !== undefined
        ? `${shown}: SIGTERM failed (${term.failed}) and it has not ended within ${Duration.format(timeout)}: SIGKILL`
        : `${shown} did not stop on SIGTERM within ${Duration.format(timeout)}: SIGKILL`
    )
    const kill = yield* signalled(proc, "SIGKILL", timeout)
    if (kill.ended || !(yield* proc.isRunning)) return
    // Not seen to end: the kernel tells a child still running from one whose end we have not read yet.
    const state = yield* processState(proc.pid)
    const after = `${Duration.format(timeout)} after SIGKILL${kill.failed !== undefined ? ` (which failed: ${kill.failed})` : ""}`
    if (hasEnded(state)) {
      yield* Effect.logWarning(
        `${shown} (pid ${proc.pid}) has ended, but its exit was not read ${after}: this process's event loop was held up`
      )
    } else {
      yield* Effect.logError(`${shown} (pid ${proc.pid}) is still running ${after} (${describeState(state)})`)
    }
  }).pipe(Effect.ignore)

const signalOf = (error: PlatformError): string => /signal: (\w+)/.exec(error.message)?.[1] ?? error.message

/**
 * `conntrack -L -o id` as a stream of flows; it ends when the dump does. The flows come in chunks of at least 2,048
 * (the last may hold fewer): a consumer gets its first flows once 2,048 are parsed or the dump is over. It runs
 * through `stdbuf` when that is on the PATH (see `dumpWriteSize`); a stdbuf that fails to run is logged at warning,
 * and the dump runs again without it (as do the later ones in this process).
 */
export const dump = (
  options: ConntrackOptions = {}
): Stream.Stream<Flow, ConntrackError, CommandExecutor.CommandExecutor> => {
  const once = Stream.unwrapScoped(Effect.map(start("dump", options), (running) => running.flows))
  // A stdbuf that failed did so before conntrack ran, so nothing was handed on: the dump runs again, without it.
  return Stream.catchAll(once, (error) =>
    isStdbufError(error) ? Stream.unwrap(Effect.as(Effect.logWarning(error.message), once)) : Stream.fail(error)
  )
}

/** `conntrack -E -o id` as a stream of event flows; it never ends but by failing. */
export const events = (
  options: ConntrackOptions = {}
): Stream.Stream<Flow, ConntrackError, CommandExecutor.CommandExecutor> =>
  Stream.unwrapScoped(Effect.map(start("events", options), (running) => running.flows))
