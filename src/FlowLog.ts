/**
 * The flow log: one record per closed connection, the flow as the walker last saw it (with its packets and bytes when
 * the kernel counts them, `nf_conntrack_acct=1`) and when the walker first and last saw it.
 *
 * `closed` reads the walker through a reader of its own, so it sees every death once whatever else walks the walker;
 * `toJson` makes the JSON line log shippers (Vector, Fluent Bit, the OpenTelemetry Collector's filelog receiver) carry.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Flow } from "./Flow.js"
import { FlowWalker, type Reader } from "./FlowWalker.js"

/** One closed connection. */
export interface ClosedFlow {
  /** The flow as it last was. */
  readonly flow: Flow
  /** When the walker first saw the connection (epoch milliseconds, Effect's `Clock`). */
  readonly firstSeen: number
  /** When the walker last observed it. */
  readonly lastSeen: number
}

/**
 * The record as one JSON line (no newline): `firstSeen` and `lastSeen` as ISO 8601 times, then the flow's fields
 * (`family`, `proto`, `state`, `original`, `reply` with their `packets`/`bytes`, `id`, ...) without the event type.
 */
export const toJson = (closed: ClosedFlow): string => {
  const { type: _type, ...flow } = closed.flow
  return JSON.stringify({
    firstSeen: new Date(closed.firstSeen).toISOString(),
    lastSeen: new Date(closed.lastSeen).toISOString(),
    ...flow
  })
}

export interface ClosedOptions {
  /** How often the log's reader walks the walker. Default 1 second. */
  readonly interval?: Duration.DurationInput
  /** When this completes, the stream walks once more (so it misses nothing closed so far) and ends. */
  readonly until?: Effect.Effect<void>
}

/**
 * Every connection that closes from when the stream starts, once each, read every `interval` by a reader of its own.
 * Deaths the walker's bounded log dropped before this reader walked are logged as a warning with their count.
 */
export const closed = (options: ClosedOptions = {}): Stream.Stream<ClosedFlow, never, FlowWalker> =>
  Stream.unwrapScoped(
    Effect.map(
      Effect.flatMap(FlowWalker, (walker) => walker.reader),
      (r) => fromReader(r, options)
    )
  )

/** The closed flows a given reader walks (it is this stream's alone: anything else walking it takes deaths away). */
export const fromReader = (reader: Reader, options: ClosedOptions = {}): Stream.Stream<ClosedFlow> =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      const interval = Duration.decode(options.interval ?? "1 second")
      const stopped = yield* Deferred.make<void>()
      if (options.until !== undefined) {
        yield* Effect.forkScoped(Effect.zipRight(options.until, Deferred.succeed(stopped, undefined)))
      }
      const missed = yield* Ref.make(0)
      const deaths = Effect.gen(function* () {
        const walked = yield* reader.walk
        const dropped = yield* reader.dropped
        const before = yield* Ref.getAndSet(missed, dropped)
        if (dropped > before) {
          yield* Effect.logWarning(`flow log: ${dropped - before} closed flows were dropped before it could read them`)
        }
        const out: Array<ClosedFlow> = []
        for (const w of walked) {
          if (!w.active) out.push({ flow: w.flow, firstSeen: w.firstSeen, lastSeen: w.lastSeen })
        }
        return out
      })
      return Stream.repeatEffectOption(
        Effect.gen(function* () {
          if (yield* Deferred.isDone(stopped)) return yield* Effect.fail(Option.none())
          yield* Effect.raceFirst(Effect.sleep(interval), Deferred.await(stopped))
          return yield* deaths
        })
      ).pipe(Stream.flattenIterables)
    })
  )

/** The flow log could not be written. */
export class FlowLogFailed extends Data.TaggedError("FlowLogFailed")<{
  readonly path: string
  readonly reason: string
}> {
  override get message() {
    return `cannot write the flow log ${this.path}: ${this.reason}`
  }
}

const encoder = new TextEncoder()

/**
 * Writes the closed flows as JSON lines, appended to the file at `path` (made if missing), or to stdout for `-`,
 * until stopped: stopping (closing the scope) walks once more, writes what closed meanwhile, syncs the file and only
 * then lets the scope go on closing, so the walker must outlive it (acquire the walker first).
 * The returned effect completes when the log fails (never otherwise): race it with what the program does.
 */
export const write = (
  path: string,
  options: Omit<ClosedOptions, "until"> = {}
): Effect.Effect<
  Effect.Effect<never, FlowLogFailed>,
  FlowLogFailed,
  FlowWalker | FileSystem.FileSystem | Scope.Scope
> =>
  Effect.gen(function* () {
    const stop = yield* Deferred.make<void>()
    // The reader first: the log misses nothing that closes after `write` is called.
    const reader = yield* Effect.flatMap(FlowWalker, (walker) => walker.reader)
    const records = fromReader(reader, { ...options, until: Deferred.await(stop) }).pipe(Stream.map(toJson))
    let sink: (lines: ReadonlyArray<string>) => Effect.Effect<void, FlowLogFailed>
    let sync: Effect.Effect<void, FlowLogFailed> = Effect.void
    if (path === "-") {
      sink = (lines) => Console.log(lines.join("\n"))
    } else {
      const fs = yield* FileSystem.FileSystem
      const failed = (error: { readonly message: string }) => new FlowLogFailed({ path, reason: error.message })
      const file = yield* fs.open(path, { flag: "a" }).pipe(Effect.mapError(failed))
      sink = (lines) => file.writeAll(encoder.encode(`${lines.join("\n")}\n`)).pipe(Effect.mapError(failed))
      sync = file.sync.pipe(Effect.mapError(failed))
    }
    const writer = yield* records.pipe(
      Stream.runForEachChunk((chunk) => (chunk.length === 0 ? Effect.void : sink(Array.from(chunk)))),
      Effect.zipRight(sync),
      Effect.forkScoped
    )
    // Runs before the fork's own finalizer (finalizers run last-in first-out): the writer ends on its own.
    yield* Effect.addFinalizer(() =>
      Deferred.succeed(stop, undefined).pipe(
        Effect.zipRight(writer.await),
        Effect.flatMap((exit) =>
          exit._tag === "Failure" ? Effect.logError(`flow log not flushed: ${exit.cause.toString()}`) : Effect.void
        )
      )
    )
    return writer.await.pipe(
      Effect.flatMap((exit) => (exit._tag === "Failure" ? Effect.failCause(exit.cause) : Effect.never))
    )
  })
