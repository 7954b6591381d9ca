/**
 * Testing helpers for applications that compose the walker: a scripted conntrack (a `CommandExecutor` that plays
 * given dump and event lines, stderr and exits, and records what was spawned and how it was stopped), and a helper
 * to build flows. Sleeps in scripts go through Effect's `Clock`, so `TestClock` drives them.
 *
 * @example
 * const script = Scripted.layer({
 *   dump: [Scripted.dumpRun([flowA])],
 *   events: [Scripted.eventsRun([{ sleep: "1 second" }, { stdout: formatEventLine(flowB) }])]
 * })
 */
import type * as Command from "@effect/platform/Command"
import * as CommandExecutor from "@effect/platform/CommandExecutor"
import { SystemError } from "@effect/platform/Error"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Sink from "effect/Sink"
import * as Stream from "effect/Stream"
import type { EventType, Flow, Tuple } from "./Flow.js"
import { formatDumpLine, formatEventLine } from "./Format.js"

export { formatDumpLine, formatEventLine }

/** One thing a scripted conntrack does. */
export type Step =
  | { readonly stdout: string | ReadonlyArray<string> }
  | { readonly stderr: string | ReadonlyArray<string> }
  | { readonly sleep: Duration.DurationInput }
  /** Ends the process with this exit code. */
  | { readonly exit: number }
  /** Ends the process as if killed by this signal (e.g. `SIGKILL` mid-stream). */
  | { readonly killedBy: CommandExecutor.Signal }

/** One run of a scripted conntrack: what the n-th process of its kind does. */
export interface Run {
  readonly steps?: ReadonlyArray<Step>
  /** Fail to start, as when the binary is missing or not executable. */
  readonly spawnError?: "NotFound" | "PermissionDenied" | "Unknown"
  /** Keep running on SIGTERM (only SIGKILL stops it). */
  readonly ignoreSigterm?: boolean
}

/**
 * What the dump (`-L`) and event (`-E`) processes do, in the order they are started; past the end the last run
 * repeats. Without runs, a dump prints nothing and exits 0, and an event stream says it listens and waits.
 */
export interface Script {
  readonly dump?: ReadonlyArray<Run>
  readonly events?: ReadonlyArray<Run>
}

/** What the scripted executor saw of one process. */
export interface Spawned {
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly kind: "dump" | "events" | "other"
  readonly pid: number
  /** When it was started, in `Clock` milliseconds. */
  readonly startedAt: number
  /** Signals sent to it, in order. */
  readonly signals: ReadonlyArray<CommandExecutor.Signal>
  readonly running: boolean
}

/** Reads what the scripted executor spawned. */
export class ScriptedConntrack extends Context.Tag("effect-conntrack/testing/ScriptedConntrack")<
  ScriptedConntrack,
  { readonly spawned: Effect.Effect<ReadonlyArray<Spawned>> }
>() {}

/** The stderr line conntrack prints once its event socket is bound, with `--buffer-size`. */
export const noticeLine = (bytes = 8_388_608) => `NOTICE: Netlink socket buffer size has been set to ${bytes} bytes.`

/** The three stderr lines of an event overflow (conntrack 1.4.6+ keeps running after them). */
export const enobufsLines: ReadonlyArray<string> = [
  "WARNING: We have hit ENOBUFS! We are losing events.",
  "This message means that the current netlink socket buffer size is too small.",
  "Please, check --buffer-size in conntrack(8) manpage."
]

/** A dump that prints these flows (or lines), its trailer, and exits 0. */
export const dumpRun = (flows: ReadonlyArray<Flow | string>): Run => ({
  steps: [
    { stdout: flows.map((f) => (typeof f === "string" ? f : formatDumpLine(f))) },
    { stderr: `conntrack v1.4.7 (conntrack-tools): ${flows.length} flow entries have been shown.` },
    { exit: 0 }
  ]
})

/** An event stream that says it listens, then does the given steps (flows are printed as event lines). */
export const eventsRun = (steps: ReadonlyArray<Step | Flow> = [], options: Omit<Run, "steps"> = {}): Run => ({
  ...options,
  steps: [{ stderr: noticeLine() }, ...steps.map((s) => ("proto" in s ? { stdout: formatEventLine(s) } : s))]
})

/** Builds a TCP flow between loopback addresses; the reply tuple mirrors the original unless given. */
export const tcpFlow = (options: {
  readonly id: number
  readonly sport: number
  readonly dport: number
  readonly state?: string
  readonly type?: EventType
  readonly src?: string
  readonly dst?: string
  readonly reply?: Partial<Tuple>
}): Flow => {
  const src = options.src ?? "127.0.0.1"
  const dst = options.dst ?? "127.0.0.1"
  const flow: { -readonly [K in keyof Flow]: Flow[K] } = {
    family: src.includes(":") ? "ipv6" : "ipv4",
    proto: "tcp",
    protonum: 6,
    state: options.state ?? "ESTABLISHED",
    original: { src, dst, sport: options.sport, dport: options.dport },
    reply: { src: dst, dst: src, sport: options.dport, dport: options.sport, ...options.reply },
    id: options.id
  }
  if (options.type !== undefined) flow.type = options.type
  return flow
}

const encoder = new TextEncoder()

const kindOf = (args: ReadonlyArray<string>): Spawned["kind"] =>
  args.includes("-L") ? "dump" : args.includes("-E") ? "events" : "other"

/** What the executor keeps of one process it started. */
interface Tracked {
  spawned: Spawned
}

const defaultRun = (kind: Spawned["kind"]): Run =>
  kind === "events" ? eventsRun() : kind === "dump" ? dumpRun([]) : { steps: [{ exit: 0 }] }

/** A `CommandExecutor` that plays the script, and the `ScriptedConntrack` service that tells what it spawned. */
export const layer = (script: Script): Layer.Layer<CommandExecutor.CommandExecutor | ScriptedConntrack> =>
  Layer.effectContext(
    Effect.sync(() => {
      const records: Array<Tracked> = []
      const started = { dump: 0, events: 0, other: 0 }
      let nextPid = 40_000

      const start = (command: Command.Command): Effect.Effect<CommandExecutor.Process, SystemError, Scope.Scope> =>
        Effect.gen(function* () {
          if (command._tag !== "StandardCommand") return yield* Effect.dieMessage("scripted: piped commands")
          const args = command.args
          // The scripted world has conntrack only: the event helper's probe finds nothing (eventSource "auto" then
          // runs conntrack -E).
          if (args.length === 1 && args[0] === "--version") {
            return yield* new SystemError({
              reason: "NotFound",
              module: "Command",
              method: "spawn",
              description: `spawn ${command.command} ENOENT`
            })
          }
          const kind = kindOf(args)
          const runs = kind === "other" ? [] : ((kind === "dump" ? script.dump : script.events) ?? [])
          const n = started[kind]++
          const run = runs[Math.min(n, runs.length - 1)] ?? defaultRun(kind)
          if (run.spawnError !== undefined) {
            return yield* new SystemError({
              reason: run.spawnError,
              module: "Command",
              method: "spawn",
              description: `spawn ${command.command} ${
                run.spawnError === "NotFound" ? "ENOENT" : run.spawnError === "PermissionDenied" ? "EACCES" : "EMFILE"
              }`
            })
          }
          const record: Tracked = {
            spawned: {
              command: command.command,
              args,
              kind,
              pid: nextPid++,
              startedAt: yield* Clock.currentTimeMillis,
              signals: [],
              running: true
            }
          }
          records.push(record)
          return yield* fakeProcess(run, record)
        })

      const executor = CommandExecutor.makeExecutor((command) =>
        start(command).pipe(
          Effect.tap((proc) =>
            // Like the Node executor: a process still running when its scope closes gets SIGTERM, and is awaited.
            Effect.addFinalizer(() =>
              proc.isRunning.pipe(
                Effect.flatMap((running) => (running ? proc.kill("SIGTERM") : Effect.void)),
                Effect.ignore
              )
            )
          )
        )
      )
      const spawned = Effect.sync(() => records.map((r) => ({ ...r.spawned, signals: [...r.spawned.signals] })))
      return Context.make(CommandExecutor.CommandExecutor, executor).pipe(Context.add(ScriptedConntrack, { spawned }))
    })
  )

type Ending = { readonly code: number } | { readonly signal: CommandExecutor.Signal }

const fakeProcess = (run: Run, record: Tracked) =>
  Effect.gen(function* () {
    const stdout = yield* Queue.unbounded<Option.Option<Uint8Array>>()
    const stderr = yield* Queue.unbounded<Option.Option<Uint8Array>>()
    const ended = yield* Deferred.make<Ending>()

    const end = (ending: Ending) =>
      Effect.gen(function* () {
        if (yield* Deferred.isDone(ended)) return
        yield* Queue.offer(stdout, Option.none())
        yield* Queue.offer(stderr, Option.none())
        record.spawned = { ...record.spawned, running: false }
        yield* Deferred.succeed(ended, ending)
      })

    const lines = (text: string | ReadonlyArray<string>) =>
      Option.some(encoder.encode((typeof text === "string" ? [text] : text).map((l) => `${l}\n`).join("")))

    // After its steps a process runs until it is killed, and keeps Node alive meanwhile (as a real child does);
    // once it has ended, nothing of it is left running, so an app that is done can exit.
    const play = Effect.forEach(run.steps ?? [], (step) => {
      if ("stdout" in step) return Queue.offer(stdout, lines(step.stdout))
      if ("stderr" in step) return Queue.offer(stderr, lines(step.stderr))
      if ("sleep" in step) return Effect.sleep(step.sleep)
      if ("exit" in step) return end({ code: step.exit })
      return end({ signal: step.killedBy })
    }).pipe(Effect.zipRight(Effect.race(Deferred.await(ended), Effect.never)))
    // The player lives as long as the process's scope (the one `Command.start` runs in), like a real child's pipes,
    // and lets go once the process ended (`Effect.never` alone would keep an application's Node process alive).
    const player = yield* Effect.forkScoped(play)

    const kill = (signal: CommandExecutor.Signal = "SIGTERM") =>
      Effect.gen(function* () {
        record.spawned = { ...record.spawned, signals: [...record.spawned.signals, signal] }
        if (!(signal === "SIGTERM" && run.ignoreSigterm === true) && !(yield* Deferred.isDone(ended))) {
          yield* Fiber.interrupt(player)
          yield* end({ signal })
        }
        yield* Deferred.await(ended)
      })

    const exitCode = Deferred.await(ended).pipe(
      Effect.flatMap((ending) =>
        "code" in ending
          ? Effect.succeed(CommandExecutor.ExitCode(ending.code))
          : Effect.fail(
              new SystemError({
                reason: "Unknown",
                module: "Command",
                method: "exitCode",
                description: `Process interrupted due to receipt of signal: ${ending.signal}`
              })
            )
      )
    )

    const fromQueue = (queue: Queue.Queue<Option.Option<Uint8Array>>) =>
      Stream.fromQueue(queue).pipe(
        Stream.takeWhile(Option.isSome),
        Stream.map((o) => o.value)
      )

    const proc: CommandExecutor.Process = {
      [CommandExecutor.ProcessTypeId]: CommandExecutor.ProcessTypeId,
      pid: CommandExecutor.ProcessId(record.spawned.pid),
      exitCode,
      isRunning: Effect.map(Deferred.isDone(ended), (done) => !done),
      kill,
      stdin: Sink.drain,
      stdout: fromQueue(stdout),
      stderr: fromQueue(stderr),
      toJSON: () => ({ _id: "ScriptedProcess", pid: record.spawned.pid }),
      toString: () => `ScriptedProcess(${record.spawned.pid})`,
      [Symbol.for("nodejs.util.inspect.custom")]: () => `ScriptedProcess(${record.spawned.pid})`
    } as unknown as CommandExecutor.Process
    return proc
  })
