/**
 * The service an Effect application composes to see the host's connections.
 *
 * The live walker forks a loop into its layer's scope: start `conntrack -E` and wait until it listens, dump with
 * `conntrack -L` and resync the table from the dump, then fold events; on any end or failure, start again after
 * `restartDelay` (a `Schedule`). The table lives in a `Ref` and changes only through the `FlowTable` reducer.
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Conntrack from "./Conntrack.js"
import { ConntrackExited } from "./Errors.js"
import * as FlowTable from "./FlowTable.js"
import * as KernelSupport from "./KernelSupport.js"
import * as Metrics from "./Metrics.js"
import { type ResolvedOptions, resolve, type WalkerOptions } from "./Options.js"

/** What the walker offers. */
export interface Service {
  /** Every active flow, and every flow that died since the previous walk (once, as inactive). */
  readonly walk: Effect.Effect<ReadonlyArray<FlowTable.WalkedFlow>>
  /** Each change to the table as it happens (flows becoming or staying active, flows dying). */
  readonly changes: Stream.Stream<FlowTable.Change>
  /**
   * Completes once the table holds a first full dump, so the next walk shows every connection (at once for the
   * no-op walker). While conntrack cannot run the walker keeps retrying and this keeps waiting: bound it with a
   * timeout where that matters.
   */
  readonly ready: Effect.Effect<void>
}

export class FlowWalker extends Context.Tag("effect-conntrack/FlowWalker")<FlowWalker, Service>() {}

/** A walker that reports nothing: used when the kernel sends no conntrack events. */
export const noop: Service = { walk: Effect.succeed([]), changes: Stream.empty, ready: Effect.void }

/** The no-op walker as a layer. */
export const layerNoop: Layer.Layer<FlowWalker> = Layer.succeed(FlowWalker, noop)

/** The schedule between restarts: `restartDelay` after every failure, forever. */
export const restartSchedule = (options: Pick<ResolvedOptions, "restartDelay">) => Schedule.spaced(options.restartDelay)

/** Why a session of the loop ended, as a short key for logs and the restart metric. */
const causeKey = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    return typeof error === "object" && error !== null && "_tag" in error ? String(error._tag) : "Failure"
  }
  return Cause.isInterruptedOnly(cause) ? "Interrupted" : "Defect"
}

const describe = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure) && failure.value instanceof Error) return failure.value.message
  return Cause.pretty(cause)
}

/** Logs a restart: in full when the cause changes, at debug when it repeats (with a reminder every 60 times). */
const restartLogger = Effect.map(
  Ref.make({ key: "", repeats: 0 }),
  (last) => (cause: Cause.Cause<unknown>) =>
    Effect.gen(function* () {
      const key = causeKey(cause)
      yield* Metric.increment(Metric.tagged(Metrics.restarts, "cause", key))
      const state = yield* Ref.updateAndGet(last, (s) =>
        s.key === key ? { key, repeats: s.repeats + 1 } : { key, repeats: 0 }
      )
      const text = `conntrack walker restarting: ${describe(cause)}`
      if (state.repeats === 0) {
        yield* key === "ConntrackNotFound" || key === "PermissionDenied" || key === "Defect"
          ? Effect.logError(text)
          : Effect.logWarning(text)
      } else if (state.repeats % 60 === 0) {
        yield* Effect.logWarning(`${text} (the same cause ${state.repeats + 1} times in a row)`)
      } else {
        yield* Effect.logDebug(text)
      }
    })
)

/** The live walker; its loop runs in the current scope. */
export const make = (
  options: WalkerOptions = {}
): Effect.Effect<Service, never, CommandExecutor.CommandExecutor | Scope.Scope> =>
  Effect.gen(function* () {
    const o = resolve(options)
    const table = yield* Ref.make(FlowTable.empty(o))
    const changes = yield* PubSub.unbounded<FlowTable.Change>()
    yield* Effect.addFinalizer(() => PubSub.shutdown(changes))
    const ready = yield* Deferred.make<void>()

    // Changes are worked out only while someone listens to them.
    let subscribers = 0
    const fold = (
      f: (t: FlowTable.FlowTable, changes: boolean) => readonly [FlowTable.FlowTable, ReadonlyArray<FlowTable.Change>]
    ) =>
      Effect.gen(function* () {
        const [changed, dropped, active] = yield* Ref.modify(table, (t) => {
          const [next, changed] = f(t, subscribers > 0)
          return [[changed, next.dropped - t.dropped, FlowTable.size(next)] as const, next]
        })
        yield* Metric.set(Metrics.flowsActive, active)
        if (dropped > 0) yield* Metric.incrementBy(Metrics.deadDropped, dropped)
        if (changed.length > 0) yield* PubSub.publishAll(changes, changed)
      })

    const session = Effect.scoped(
      Effect.gen(function* () {
        // Events first, then the dump: what changes while we dump waits in the event pipe.
        const events = yield* Conntrack.start("events", o)
        const listened = yield* events.listening.pipe(Effect.timeout(o.listenTimeout), Effect.option)
        if (Option.isNone(listened)) {
          yield* Effect.logDebug(
            `conntrack -E did not say it listens within ${Duration.format(o.listenTimeout)}: dumping`
          )
        }
        // The dump is folded in as it streams (while conntrack is still printing) into a draft nobody else sees; the
        // table changes once, when the dump is complete. Walks meanwhile see the previous table.
        const resync = FlowTable.beginResync(yield* Ref.get(table), { changes: subscribers > 0 })
        let dumped = 0
        yield* Stream.runForEachChunk(Conntrack.dump(o), (chunk) =>
          Effect.sync(() => {
            dumped += chunk.length
            resync.add(chunk)
          })
        )
        yield* fold((t) => resync.done(t))
        yield* Deferred.succeed(ready, undefined)
        yield* Effect.logDebug(`conntrack walker synced: ${dumped} flows dumped`)
        yield* Stream.runForEachChunk(events.flows, (chunk) =>
          Metric.incrementBy(Metrics.events, chunk.length).pipe(
            Effect.zipRight(fold((t, changes) => FlowTable.applyAll(t, chunk, { fromDump: false, changes })))
          )
        )
        // An event stream only ends by failing; a clean end is a failure all the same.
        return yield* new ConntrackExited({ command: `${o.binary} -E`, exitCode: 0, stderr: [] })
      })
    )

    const logRestart = yield* restartLogger
    yield* session.pipe(
      Effect.sandbox,
      Effect.tapError(logRestart),
      Effect.retry(restartSchedule(o)),
      Effect.forkScoped
    )

    return {
      walk: Ref.modify(table, FlowTable.walk),
      ready: Deferred.await(ready),
      changes: Stream.unwrapScoped(
        Effect.gen(function* () {
          yield* Effect.acquireRelease(
            Effect.sync(() => subscribers++),
            () => Effect.sync(() => subscribers--)
          )
          return Stream.fromQueue(yield* PubSub.subscribe(changes))
        })
      )
    }
  })

/**
 * The walker as a layer: checks that the kernel sends events (`nf_conntrack_events` under `procRoot`) and runs
 * the live walker, or logs why once and provides the no-op walker.
 */
export const layer = (
  options: WalkerOptions = {}
): Layer.Layer<FlowWalker, never, CommandExecutor.CommandExecutor | FileSystem.FileSystem> =>
  Layer.scoped(
    FlowWalker,
    Effect.gen(function* () {
      const supported = yield* Effect.either(KernelSupport.check(resolve(options).procRoot))
      if (Either.isLeft(supported)) {
        yield* Effect.logWarning(`${supported.left.message}; the walker will report no flows`)
        return noop
      }
      return yield* make(options)
    })
  )
