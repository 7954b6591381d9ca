/**
 * The service an Effect application composes to see the host's connections.
 *
 * The live walker forks a loop into its layer's scope: start `conntrack -E` and wait until it listens, then dump with
 * `conntrack -L` while the events keep being read, folding both as they arrive into a resync the table becomes in one
 * step when the dump is in; then fold events. On any end or failure, start again after `restartDelay` (a `Schedule`).
 * The table lives in a `Ref` and changes only through the `FlowTable` reducer; each consumer reads it through a reader
 * of its own.
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import type * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Queue from "effect/Queue"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Conntrack from "./Conntrack.js"
import type { ConntrackError, ConntrackNotFound, PermissionDenied } from "./Errors.js"
import type { Flow } from "./Flow.js"
import * as FlowTable from "./FlowTable.js"
import * as metricKeys from "./internal/metricKeys.js"
import * as KernelSupport from "./KernelSupport.js"
import * as Metrics from "./Metrics.js"
import { type ResolvedOptions, resolve, type WalkerOptions } from "./Options.js"

/** One consumer's view of the walker: its own cursor over the log of deaths. */
export interface Reader {
  /** Every active flow, and every flow that died since this reader's previous walk (once, as inactive). */
  readonly walk: Effect.Effect<ReadonlyArray<FlowTable.WalkedFlow>>
  /** Deaths this reader missed because the log dropped them (past `maxDead`) before it walked, since it was made. */
  readonly dropped: Effect.Effect<number>
}

/** Where the walker stands. */
export interface Status {
  /** The first dump is in. */
  readonly ready: boolean
  /** The current session has its dump in and is folding events. */
  readonly synced: boolean
  /** Sessions that failed in a row since the last sync. */
  readonly failures: number
}

/** The errors a user must fix before the walker can run: `ready` fails with them. */
export type FatalError = ConntrackNotFound | PermissionDenied

/** What the walker offers. */
export interface Service {
  /**
   * The walker's own reader, made with it: for an application with one consumer. With `ownReader: false`, the active
   * flows only.
   */
  readonly walk: Effect.Effect<ReadonlyArray<FlowTable.WalkedFlow>>
  /** A reader for one more consumer; it sees the deaths from when it is made, and is released with its scope. */
  readonly reader: Effect.Effect<Reader, never, Scope.Scope>
  /** The active flows now, consuming nothing. */
  readonly flows: Effect.Effect<ReadonlyArray<Flow>>
  /**
   * The table as it is (an `Upserted` for each active flow), then each change as it happens. Bounded: a subscriber
   * that falls more than `changesBuffer` changes behind loses the oldest, counted in `conntrack_changes_dropped`.
   */
  readonly changes: Stream.Stream<FlowTable.Change>
  /**
   * Completes once the table holds a first full dump (at once for the no-op walker). Fails if, before that, conntrack
   * cannot be found or is refused (the walker keeps retrying all the same). Any other failure keeps it waiting: bound
   * it with a timeout where that matters.
   */
  readonly ready: Effect.Effect<void, FatalError>
  readonly status: Effect.Effect<Status>
}

export class FlowWalker extends Context.Tag("effect-conntrack/FlowWalker")<FlowWalker, Service>() {}

const noopReader: Reader = { walk: Effect.succeed([]), dropped: Effect.succeed(0) }

/** A walker that reports nothing: used when the kernel sends no conntrack events. */
export const noop: Service = {
  walk: Effect.succeed([]),
  reader: Effect.succeed(noopReader),
  flows: Effect.succeed([]),
  changes: Stream.empty,
  ready: Effect.void,
  status: Effect.succeed({ ready: true, synced: true, failures: 0 })
}

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

const isFatal = (error: unknown): error is FatalError =>
  typeof error === "object" &&
  error !== null &&
  "_tag" in error &&
  (error._tag === "ConntrackNotFound" || error._tag === "PermissionDenied")

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

/**
 * The kernel's bound on its table (`nf_conntrack_max`), when the file can be read. Only a regular file is read (as
 * under /proc): anything else under a hostile proc root (a FIFO) would block.
 */
const tableLimit = (procRoot: string): Effect.Effect<Option.Option<number>> =>
  Effect.serviceOption(FileSystem.FileSystem).pipe(
    Effect.flatMap(
      Option.match({
        onNone: () => Effect.succeedNone,
        onSome: (fs) => {
          const path = `${procRoot.replace(/\/+$/, "")}/sys/net/netfilter/nf_conntrack_max`
          return fs.stat(path).pipe(
            Effect.flatMap((info) =>
              info.type === "File" ? fs.readFileString(path) : Effect.succeed<string>("not a regular file")
            ),
            Effect.map((s) => Number.parseInt(s.trim(), 10)),
            Effect.map((n) => (Number.isSafeInteger(n) && n > 0 ? Option.some(n) : Option.none())),
            Effect.orElseSucceed(() => Option.none<number>())
          )
        }
      })
    )
  )

/** A counter tagged with a fold's `family proto` key, made once per key (see `metricKeys` for why not `tagged`). */
const taggedByKey = (counter: typeof metricKeys.flowsOpened) => {
  const made = new Map<string, typeof Metrics.flowsOpened>()
  return (key: string) => {
    let m = made.get(key)
    if (m === undefined) {
      const [family = "", proto = ""] = key.split(" ")
      m = metricKeys.withLabels(counter, [
        ["family", family],
        ["proto", proto]
      ])
      made.set(key, m)
    }
    return m
  }
}
const openedBy = taggedByKey(metricKeys.flowsOpened)
const closedBy = taggedByKey(metricKeys.flowsClosed)
const eventsBy = {
  NEW: metricKeys.withLabels(metricKeys.events, [["type", "NEW"]]),
  UPDATE: metricKeys.withLabels(metricKeys.events, [["type", "UPDATE"]]),
  DESTROY: metricKeys.withLabels(metricKeys.events, [["type", "DESTROY"]])
}

/**
 * Updates metrics in one step, each as `Metric.update` does (with the fiber's metric labels): a fold updates several,
 * and one Effect step each costs more than the update.
 */
const updateMetrics = (update: (labels: ReadonlyArray<MetricLabel.MetricLabel>) => void): Effect.Effect<void> =>
  FiberRef.getWith(FiberRef.currentMetricLabels, (labels) => Effect.sync(() => update(labels)))

/** Counts events by type (counts of zero are not sent: each update of a tagged metric looks its key up). */
const countEvents = (flows: ReadonlyArray<Flow>, labels: ReadonlyArray<MetricLabel.MetricLabel>): void => {
  let created = 0
  let updated = 0
  let destroyed = 0
  for (const f of flows) {
    if (f.type === "NEW") created++
    else if (f.type === "DESTROY") destroyed++
    else updated++
  }
  if (created > 0) eventsBy.NEW.unsafeUpdate(created, labels)
  if (updated > 0) eventsBy.UPDATE.unsafeUpdate(updated, labels)
  if (destroyed > 0) eventsBy.DESTROY.unsafeUpdate(destroyed, labels)
}

/** What a fold changed, as metrics. */
const countFold = (result: FlowTable.Folded, labels: ReadonlyArray<MetricLabel.MetricLabel>): void => {
  Metrics.flowsActive.unsafeUpdate(FlowTable.size(result.table), labels)
  for (const [key, n] of result.opened) openedBy(key).unsafeUpdate(n, labels)
  for (const [key, n] of result.closed) closedBy(key).unsafeUpdate(n, labels)
}

const aborted = (resync: FlowTable.Resync, t: FlowTable.FlowTable, now: number, changes: boolean): FlowTable.Folded =>
  resync.abort(t, now, changes) ?? { table: t, changes: [], opened: new Map(), closed: new Map() }

interface Numbered {
  readonly seq: number
  readonly change: FlowTable.Change
}

/**
 * Empties a chunk's array of flows once they are folded; the walker is the chunk's only reader. Effect's stream stages
 * and queue keep references to what they handed on in objects of theirs that V8 has moved to its old generation and
 * that are dead but not yet collected: until a full collection, each young-generation collection kept (and at its
 * second, promoted) every flow those chunks held, though the table had replaced it. Replaying 1,000,000 events
 * through `Conntrack.start`'s stream, scavenges took 860–980 ms in all, and 100–130 ms with the arrays emptied.
 */
const release = (flows: ReadonlyArray<Flow>): void => {
  if (flows.length > 0) (flows as Array<Flow>).length = 0
}

/** Dump chunks (2,048 flows or up to a read more) that may wait to be folded: the rest of the queue is the events'. */
const DUMP_AHEAD = 4

/** What a session's queue carries: dumped flows, the dump's end, events, or why a feed ended. */
type Arrival =
  | { readonly _tag: "Dump"; readonly flows: Chunk.Chunk<Flow> }
  | { readonly _tag: "DumpEnd" }
  | { readonly _tag: "Events"; readonly flows: Chunk.Chunk<Flow> }
  | { readonly _tag: "Ended"; readonly cause: Cause.Cause<ConntrackError> }

/**
 * The live walker; its loop runs in the current scope. With a `FileSystem` in the context, `maxDead` and
 * `maxReported` default to the kernel's `nf_conntrack_max`, and the kernel's event switch is watched.
 */
export const make = (
  options: WalkerOptions = {}
): Effect.Effect<Service, never, CommandExecutor.CommandExecutor | Scope.Scope> =>
  Effect.gen(function* () {
    const limit = yield* tableLimit(resolve(options).procRoot)
    const o = resolve({
      ...options,
      ...(Option.isSome(limit)
        ? { maxDead: options.maxDead ?? limit.value, maxReported: options.maxReported ?? limit.value }
        : {})
    })
    const table = yield* Ref.make(FlowTable.empty(o))
    const pubsub = yield* PubSub.sliding<Numbered>(o.changesBuffer)
    yield* Effect.addFinalizer(() => PubSub.shutdown(pubsub))
    const published = yield* Ref.make(0)
    const subscribers = yield* Ref.make(0)
    // Folds and subscriptions take turns, so that a subscriber's snapshot and the changes after it fit together.
    const lock = yield* Effect.makeSemaphore(1)
    const ready = yield* Deferred.make<void, FatalError>()
    const status = yield* Ref.make<Status>({ ready: false, synced: false, failures: 0 })
    yield* Metric.set(Metrics.walkerReady, 0)

    /** A fold, to run under the lock; `events`, when given, are the events folded, counted with its other metrics. */
    const folding = (f: (t: FlowTable.FlowTable, changes: boolean) => FlowTable.Folded, events?: ReadonlyArray<Flow>) =>
      Effect.gen(function* () {
        const listening = (yield* Ref.get(subscribers)) > 0
        const result = yield* Ref.modify(table, (t) => {
          const r = f(t, listening)
          return [r, r.table]
        })
        yield* updateMetrics((labels) => {
          if (events !== undefined) countEvents(events, labels)
          countFold(result, labels)
        })
        if (listening && result.changes.length > 0) {
          const first = yield* Ref.getAndUpdate(published, (n) => n + result.changes.length)
          yield* PubSub.publishAll(
            pubsub,
            result.changes.map((change, k) => ({ seq: first + k, change }))
          )
        }
      })
    /** Folds under the lock. */
    const fold = (f: (t: FlowTable.FlowTable, changes: boolean) => FlowTable.Folded, events?: ReadonlyArray<Flow>) =>
      lock.withPermits(1)(folding(f, events))

    const session = Effect.scoped(
      Effect.gen(function* () {
        // Events first, then the dump: what changes while we dump arrives on the event stream.
        const events = yield* Conntrack.start("events", o)
        const listened = yield* events.listening.pipe(Effect.timeoutOption(o.listenTimeout))
        if (Option.isNone(listened)) {
          yield* Effect.logDebug(
            `conntrack -E did not say it listens within ${Duration.format(o.listenTimeout)}: dumping`
          )
        }
        const started = yield* Clock.currentTimeMillis
        // The dump and the events are folded as they arrive (the events keep being read while conntrack -L runs,
        // up to `eventBuffer` chunks ahead), into a resync nobody sees until the dump is in.
        // Changes are worked out as the dump folds only for subscribers there already are; one who joins meanwhile
        // gets them from `done` as a whole.
        const listening = (yield* Ref.get(subscribers)) > 0
        const resync = yield* Ref.modify(table, (t) => [
          FlowTable.beginResync(t, { now: started, changes: listening }),
          t
        ])
        let dumped = 0
        let syncing = true
        // Event chunks handed to the queue and not folded yet. Once the dump is in and none is left, a chunk folds in
        // the fiber that read it: handing it to another fiber cost more than the fold of a read under steady load
        // (about 50 µs a read here), and about 1,200 instructions an event (6%) in a flood of 64 KiB reads (counted
        // with valgrind). While the dump runs, or while a subscriber's snapshot holds the lock, events go through the
        // queue, so that reading runs ahead. Either way the events fold in the order read.
        let queued = 0
        // Both outputs go through one queue, in the order they arrive: the events keep being read while conntrack -L
        // runs (up to `eventBuffer` chunks ahead), and a feed that ends puts its cause in line behind what it read.
        // The dump may have only a few chunks waiting, so that it never takes the events' room.
        const arrivals = yield* Queue.bounded<Arrival>(o.eventBuffer + DUMP_AHEAD + 2)
        const dumpRoom = yield* Effect.makeSemaphore(DUMP_AHEAD)
        const feed = <R>(
          stream: Stream.Stream<Flow, ConntrackError, R>,
          offer: (flows: Chunk.Chunk<Flow>) => Effect.Effect<unknown>,
          after: Effect.Effect<void>
        ) =>
          Stream.runForEachChunk(stream, offer).pipe(
            Effect.zipRight(after),
            Effect.catchAllCause((cause) => Queue.offer(arrivals, { _tag: "Ended", cause })),
            Effect.forkScoped
          )
        yield* feed(
          Conntrack.dump(o),
          (flows) => Effect.zipRight(dumpRoom.take(1), Queue.offer(arrivals, { _tag: "Dump", flows })),
          Queue.offer(arrivals, { _tag: "DumpEnd" })
        )
        const foldingEvents = (flows: ReadonlyArray<Flow>, now: number) =>
          folding((t, changes) => FlowTable.applyAll(t, flows, { now, changes, consume: true }), flows).pipe(
            Effect.ensuring(Effect.sync(() => release(flows)))
          )
        const foldEvents = (flows: ReadonlyArray<Flow>, now: number) => lock.withPermits(1)(foldingEvents(flows, now))
        // The event side only ends by failing (an event stream that ends is a failure, see Conntrack.start).
        yield* feed(
          events.flows,
          (flows) =>
            Effect.suspend(() => {
              const enqueue = Effect.suspend(() => {
                queued++
                return Queue.offer(arrivals, { _tag: "Events", flows })
              })
              if (syncing || queued > 0) return enqueue
              // A subscriber taking its snapshot holds the lock: reading goes on meanwhile, through the queue.
              return Effect.flatMap(Clock.currentTimeMillis, (now) =>
                lock
                  .withPermitsIfAvailable(1)(foldingEvents(Chunk.toReadonlyArray(flows), now))
                  .pipe(Effect.flatMap((folded) => (Option.isSome(folded) ? Effect.void : enqueue)))
              )
            }),
          Effect.void
        )

        const synced = (now: number) =>
          Effect.gen(function* () {
            yield* fold((t, changes) => resync.done(t, now, changes) as FlowTable.Folded)
            syncing = false
            yield* Ref.set(status, { ready: true, synced: true, failures: 0 })
            yield* Metric.set(Metrics.walkerReady, 1)
            yield* Metric.update(Metrics.resyncDuration, (now - started) / 1000)
            yield* Deferred.succeed(ready, undefined)
            yield* Effect.logDebug(`conntrack walker synced: ${dumped} flows dumped in ${now - started} ms`)
          })
        // Everything waiting is taken at once: the events of several chunks fold in one step.
        const arrive = (batch: Chunk.Chunk<Arrival>) =>
          Effect.gen(function* () {
            const now = yield* Clock.currentTimeMillis
            // The events' chunks waiting to be folded (usually one: its array is folded as it is).
            let folding: Array<ReadonlyArray<Flow>> = []
            const foldWaiting = Effect.suspend(() => {
              const chunks = folding
              folding = []
              if (chunks.length === 0) return Effect.void
              const flows = chunks.length === 1 ? (chunks[0] as ReadonlyArray<Flow>) : chunks.flat()
              return foldEvents(flows, now).pipe(
                Effect.ensuring(
                  Effect.sync(() => {
                    queued -= chunks.length
                    for (const chunk of chunks) release(chunk)
                  })
                )
              )
            })
            for (const arrival of batch) {
              switch (arrival._tag) {
                case "Dump":
                  yield* dumpRoom.release(1)
                  dumped += arrival.flows.length
                  resync.addDump(arrival.flows, now)
                  release(Chunk.toReadonlyArray(arrival.flows))
                  break
                case "DumpEnd":
                  yield* synced(now)
                  break
                case "Events":
                  if (syncing) {
                    const flows = Chunk.toReadonlyArray(arrival.flows)
                    yield* updateMetrics((labels) => countEvents(flows, labels))
                    resync.addEvents(flows, now)
                    release(flows)
                    queued--
                  } else folding.push(Chunk.toReadonlyArray(arrival.flows))
                  break
                case "Ended":
                  yield* foldWaiting
                  return yield* Effect.failCause(arrival.cause)
              }
            }
            yield* foldWaiting
          })
        // A session that fails while dumping keeps what its dump and events showed, and takes nothing as gone.
        yield* Queue.takeBetween(arrivals, 1, Number.POSITIVE_INFINITY).pipe(
          Effect.flatMap(arrive),
          Effect.forever,
          Effect.onError(() =>
            syncing
              ? Effect.flatMap(Clock.currentTimeMillis, (now) => fold((t, changes) => aborted(resync, t, now, changes)))
              : Effect.void
          )
        )
      })
    )

    const logRestart = yield* restartLogger
    const failed = (cause: Cause.Cause<unknown>) =>
      Effect.gen(function* () {
        yield* Ref.update(status, (s) => ({ ...s, synced: false, failures: s.failures + 1 }))
        yield* Metric.set(Metrics.walkerReady, 0)
        const failure = Cause.failureOption(cause)
        if (Option.isSome(failure) && isFatal(failure.value)) yield* Deferred.fail(ready, failure.value)
        yield* logRestart(cause)
      })
    yield* session.pipe(Effect.sandbox, Effect.tapError(failed), Effect.retry(restartSchedule(o)), Effect.forkScoped)
    yield* watchEvents(o).pipe(Effect.forkScoped)

    const makeReader = (id: number): Effect.Effect<Reader> =>
      Effect.map(Ref.make(0), (missed) => ({
        walk: Ref.modify(table, (t) => {
          const w = FlowTable.walk(t, id)
          return [w, w.table]
        }).pipe(
          Effect.tap((w) =>
            w.dropped > 0
              ? Effect.zipRight(
                  Ref.update(missed, (n) => n + w.dropped),
                  Metric.incrementBy(Metrics.deadDropped, w.dropped)
                )
              : Effect.void
          ),
          Effect.map((w) => w.walked)
        ),
        dropped: Ref.get(missed)
      }))
    const addReader = Ref.modify(table, FlowTable.addReader)
    // The table is read only where it is current (folds consume the version they change): here, in one step.
    const activeFlows = Ref.modify(table, (t) => [FlowTable.activeFlows(t), t])
    // Without an own reader, `walk` shows the active flows only (-1 is no reader's number).
    const own = options.ownReader === false ? yield* makeReader(-1) : yield* Effect.flatMap(addReader, makeReader)

    return {
      walk: own.walk,
      reader: Effect.acquireRelease(addReader, (id) => Ref.update(table, (t) => FlowTable.removeReader(t, id))).pipe(
        Effect.flatMap(makeReader)
      ),
      flows: activeFlows,
      ready: Deferred.await(ready),
      status: Ref.get(status),
      changes: Stream.unwrapScoped(
        Effect.gen(function* () {
          yield* Effect.acquireRelease(
            Ref.update(subscribers, (n) => n + 1),
            () => Ref.update(subscribers, (n) => n - 1)
          )
          const [queue, active, next] = yield* lock.withPermits(1)(
            Effect.all([PubSub.subscribe(pubsub), activeFlows, Ref.get(published)])
          )
          let expected = next
          const live = Stream.fromQueue(queue).pipe(
            Stream.mapChunksEffect((numbered) => {
              let missed = 0
              const changes: Array<FlowTable.Change> = []
              for (const n of numbered) {
                if (n.seq > expected) missed += n.seq - expected
                expected = n.seq + 1
                changes.push(n.change)
              }
              const out = Effect.succeed(Chunk.unsafeFromArray(changes))
              return missed > 0 ? Effect.zipRight(Metric.incrementBy(Metrics.changesDropped, missed), out) : out
            })
          )
          return Stream.concat(Stream.fromIterable(active.map((flow) => FlowTable.Change.Upserted({ flow }))), live)
        })
      )
    }
  })

/**
 * Checks every `supportCheckInterval` that the kernel still sends events: turned off while the walker runs, the table
 * would go stale without a word. Logs each change once and keeps `conntrack_events_enabled` up to date.
 */
const watchEvents = (o: ResolvedOptions) =>
  Effect.serviceOption(FileSystem.FileSystem).pipe(
    Effect.flatMap(
      Option.match({
        onNone: () => Effect.void,
        onSome: (fs) =>
          Effect.gen(function* () {
            const on = yield* Ref.make(true)
            const check = KernelSupport.check(o.procRoot).pipe(
              Effect.provideService(FileSystem.FileSystem, fs),
              Effect.either,
              Effect.flatMap((result) =>
                Effect.gen(function* () {
                  const now = Either.isRight(result)
                  yield* Metric.set(Metrics.eventsEnabled, now ? 1 : 0)
                  const was = yield* Ref.getAndSet(on, now)
                  if (was && Either.isLeft(result)) {
                    yield* Effect.logWarning(`${result.left.message}; the table no longer changes`)
                  } else if (!was && now) {
                    yield* Effect.logInfo("conntrack events are on again")
                  }
                })
              )
            )
            yield* check.pipe(Effect.repeat(Schedule.spaced(o.supportCheckInterval)))
          })
      })
    )
  )

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
