/**
 * The flow table: a pure reducer over an immutable table of tracked connections.
 *
 * A connection is its conntrack id and its original tuple: ids are 32-bit hashes since Linux 5.1 (two live
 * connections can share one) and were reused quickly before. A flow that dies is kept on a bounded dead list until
 * the next walk reports it, once, as inactive.
 */
import * as Chunk from "effect/Chunk"
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import { type Flow, isClosed, type Tuple } from "./Flow.js"
import * as FlowIndex from "./FlowIndex.js"
import { defaults, type TableOptions } from "./Options.js"

/** A flow as a walk reports it: still active, or died since the previous walk. */
export interface WalkedFlow {
  readonly active: boolean
  readonly flow: Flow
}

/** What one fold did to the table, for consumers that react instead of walking. */
export type Change = { readonly _tag: "Upserted"; readonly flow: Flow } | { readonly _tag: "Died"; readonly flow: Flow }

export interface FlowTable {
  /** Active connections by conntrack id (one holding each id). */
  readonly active: FlowIndex.FlowIndex<Flow>
  /**
   * Active connections whose id the one in `active` also holds, by id. An id is here only while `active` holds it
   * too: when that connection dies one of these takes its place.
   */
  readonly spill: HashMap.HashMap<number, ReadonlyArray<Flow>>
  /** Flows that died since the last walk, oldest first, at most `maxDead`. */
  readonly dead: Chunk.Chunk<Flow>
  /** Closed connections already reported dead (by `connectionKey`), with the sequence number of when. */
  readonly reported: HashMap.HashMap<string, number>
  /** Dead flows dropped because the dead list was full, since the table was made. */
  readonly dropped: number
  /** Flows without a conntrack id, which cannot be keyed, since the table was made. */
  readonly unkeyed: number
  readonly seq: number
  readonly options: Required<TableOptions>
}

/** An empty table. */
export const empty = (options: TableOptions = {}): FlowTable => ({
  active: FlowIndex.empty(),
  spill: HashMap.empty(),
  dead: Chunk.empty(),
  reported: HashMap.empty(),
  dropped: 0,
  unkeyed: 0,
  seq: 0,
  options: {
    maxDead: options.maxDead ?? defaults.maxDead,
    maxReported: options.maxReported ?? defaults.maxReported,
    includeNew: options.includeNew ?? defaults.includeNew
  }
})

/** Whether two original tuples name the same connection (addresses, ports or ICMP ids, keys, zone). */
export const sameConnection = (a: Tuple, b: Tuple): boolean =>
  a.src === b.src &&
  a.dst === b.dst &&
  a.sport === b.sport &&
  a.dport === b.dport &&
  a.type === b.type &&
  a.id === b.id &&
  a.srckey === b.srckey &&
  a.dstkey === b.dstkey &&
  a.zone === b.zone

const sameFlow = (a: Flow, b: Flow) => a.proto === b.proto && sameConnection(a.original, b.original)

/** A string naming one connection: its id, protocol and original tuple. */
export const connectionKey = (flow: Flow): string => {
  const o = flow.original
  return `${flow.id} ${flow.proto} ${o.src} ${o.dst} ${o.sport} ${o.dport} ${o.type} ${o.id} ${o.srckey} ${o.dstkey} ${o.zone}`
}

/** A table being changed by one fold, turned back into an immutable table at the end. */
interface Draft {
  readonly active: FlowIndex.Editor<Flow>
  spill: HashMap.HashMap<number, ReadonlyArray<Flow>>
  reported: HashMap.HashMap<string, number>
  readonly died: Array<Flow>
  readonly changes: Array<Change> | undefined
  seq: number
  unkeyed: number
}

const begin = (table: FlowTable, expected: number, changes: boolean): Draft => ({
  active: FlowIndex.edit(table.active, expected),
  spill: HashMap.beginMutation(table.spill),
  reported: HashMap.beginMutation(table.reported),
  died: [],
  changes: changes ? [] : undefined,
  seq: table.seq,
  unkeyed: table.unkeyed
})

const finish = (table: FlowTable, draft: Draft): FlowTable => {
  let dead = draft.died.length === 0 ? table.dead : Chunk.appendAll(table.dead, Chunk.unsafeFromArray(draft.died))
  let dropped = table.dropped
  const excess = dead.length - table.options.maxDead
  if (excess > 0) {
    dead = Chunk.drop(dead, excess)
    dropped += excess
  }
  let reported = HashMap.endMutation(draft.reported)
  const maxReported = table.options.maxReported
  // Past the bound, forget down to 7/8 of it: one sort per maxReported/8 deaths, not one per fold.
  if (HashMap.size(reported) > maxReported) {
    reported = forgetOldest(reported, HashMap.size(reported) - (maxReported - (maxReported >> 3)))
  }
  return {
    active: draft.active.done(),
    spill: HashMap.endMutation(draft.spill),
    dead,
    reported,
    dropped,
    unkeyed: draft.unkeyed,
    seq: draft.seq,
    options: table.options
  }
}

const forgetOldest = (reported: HashMap.HashMap<string, number>, count: number) => {
  const oldest = Array.from(reported).sort((a, b) => a[1] - b[1])
  return HashMap.mutate(reported, (m) => {
    for (let k = 0; k < count; k++) HashMap.remove(m, (oldest[k] as [string, number])[0])
  })
}

/** Where a connection is in the draft: its active copy, and whether it is a spilled one. */
const find = (
  draft: Draft,
  id: number,
  flow: Flow
): { readonly current: Flow; readonly spilled: boolean } | undefined => {
  const first = draft.active.get(id)
  if (first === undefined) return undefined
  if (sameFlow(first, flow)) return { current: first, spilled: false }
  if (HashMap.size(draft.spill) === 0) return undefined
  const current = Option.getOrUndefined(HashMap.get(draft.spill, id))?.find((f) => sameFlow(f, flow))
  return current === undefined ? undefined : { current, spilled: true }
}

const spilledWith = (draft: Draft, id: number): ReadonlyArray<Flow> =>
  HashMap.size(draft.spill) === 0 ? [] : Option.getOrElse(HashMap.get(draft.spill, id), () => [])

const setSpilled = (draft: Draft, id: number, flows: ReadonlyArray<Flow>) => {
  if (flows.length === 0) HashMap.remove(draft.spill, id)
  else HashMap.set(draft.spill, id, flows)
}

const isReported = (draft: Draft, flow: Flow) =>
  HashMap.size(draft.reported) > 0 && HashMap.has(draft.reported, connectionKey(flow))

const die = (draft: Draft, id: number, flow: Flow, spilled: boolean) => {
  const others = spilledWith(draft, id)
  if (spilled) {
    setSpilled(
      draft,
      id,
      others.filter((f) => f !== flow)
    )
  } else if (others.length > 0) {
    // Another connection with this id takes its place.
    draft.active.set(id, others[0] as Flow)
    setSpilled(draft, id, others.slice(1))
  } else {
    draft.active.remove(id)
  }
  reportDead(draft, flow)
}

/** The connection is reported dead at the next walk, and remembered as reported. */
const reportDead = (draft: Draft, flow: Flow) => {
  HashMap.set(draft.reported, connectionKey(flow), ++draft.seq)
  draft.died.push(flow)
  draft.changes?.push({ _tag: "Died", flow })
}

const upsert = (draft: Draft, id: number, flow: Flow, found: ReturnType<typeof find>) => {
  if (found === undefined) {
    if (draft.active.get(id) === undefined) draft.active.set(id, flow)
    else setSpilled(draft, id, [...spilledWith(draft, id), flow])
    // A connection reported dead that is back (TCP reuses a TIME_WAIT entry for a new SYN): a new life.
    if (HashMap.size(draft.reported) > 0) HashMap.remove(draft.reported, connectionKey(flow))
  } else if (found.spilled) {
    setSpilled(
      draft,
      id,
      spilledWith(draft, id).map((f) => (f === found.current ? flow : f))
    )
  } else {
    draft.active.set(id, flow)
  }
  draft.changes?.push({ _tag: "Upserted", flow })
}

const step = (draft: Draft, flow: Flow, fromDump: boolean, includeNew: boolean): void => {
  const id = flow.id
  if (id === undefined) {
    draft.unkeyed++
    return
  }
  const found = find(draft, id, flow)
  if (fromDump || flow.type === "UPDATE" || (flow.type === "NEW" && includeNew)) {
    if (!isClosed(flow)) {
      upsert(draft, id, flow, found)
    } else if (found !== undefined) {
      die(draft, id, found.current, found.spilled)
    } else if (!isReported(draft, flow)) {
      // A closed connection we never saw open (its events lost to an overflow, or it opened before we started):
      // the kernel keeps it in TIME_WAIT for two minutes, so a dump or a later event still shows it. Reported dead
      // once.
      reportDead(draft, flow)
    }
  } else if (flow.type === "DESTROY" && found !== undefined) {
    die(draft, id, found.current, found.spilled)
  }
}

/** Options of one fold. */
export interface ApplyOptions {
  /** The flows come from a dump (`conntrack -L`), not from events. */
  readonly fromDump: boolean
  /** Also return what changed (default true). */
  readonly changes?: boolean
}

/**
 * Folds flows into the table, in order, and says what changed.
 *
 * - A dumped flow, or an UPDATE, that is not closed (TIME_WAIT or CLOSE) becomes or stays active.
 * - A closed UPDATE, or a DESTROY, moves the active copy of its flow to the dead list.
 * - A closed flow (dumped, or a closed UPDATE) that was never active nor reported is reported dead once.
 * - A NEW flow is ignored (its direction is unreliable) unless `includeNew`; so is a DESTROY of a flow that was never
 *   active.
 */
export const applyAll = (
  table: FlowTable,
  flows: Iterable<Flow>,
  options: ApplyOptions
): readonly [FlowTable, ReadonlyArray<Change>] => {
  const batch = Array.isArray(flows) ? (flows as ReadonlyArray<Flow>) : Array.from(flows)
  const draft = begin(table, batch.length, options.changes !== false)
  for (const flow of batch) step(draft, flow, options.fromDump, table.options.includeNew)
  return [finish(table, draft), draft.changes ?? []]
}

/** Folds one flow into the table (see `applyAll`). */
export const apply = (table: FlowTable, flow: Flow, options: ApplyOptions): FlowTable =>
  applyAll(table, [flow], { ...options, changes: false })[0]

/** A resync in progress: the dump is added as it streams, then `done` makes the new table. */
export interface Resync {
  /** Folds the next dumped flows in (invisible until `done`). */
  readonly add: (flows: Iterable<Flow>) => void
  /**
   * The table after the dump, built on `current`: the table as it is now, which may differ from the one the resync
   * began with only by walks (they forget dead flows). Active flows the dump did not show died while we were not
   * listening and are reported dead once; remembered closed connections the dump no longer shows are forgotten.
   */
  readonly done: (current: FlowTable) => readonly [FlowTable, ReadonlyArray<Change>]
}

/**
 * Starts replacing what the table believes with a fresh dump. Flows still in the dump stay active (reported once,
 * never both dead and alive).
 */
export const beginResync = (table: FlowTable, options: { readonly changes?: boolean } = {}): Resync => {
  // A dump rewrites the whole table: edit a native copy (see FlowIndex.edit).
  const draft = begin(table, Number.POSITIVE_INFINITY, options.changes !== false)
  const shown = new Set<Flow>()
  return {
    add: (flows) => {
      for (const flow of flows) {
        shown.add(flow)
        step(draft, flow, true, table.options.includeNew)
      }
    },
    done: (current) => {
      const missing: Array<Flow> = []
      draft.active.forEach((flow) => {
        if (!shown.has(flow)) missing.push(flow)
      })
      for (const [, flows] of draft.spill) for (const flow of flows) if (!shown.has(flow)) missing.push(flow)
      for (const flow of missing) {
        const found = find(draft, flow.id as number, flow)
        if (found !== undefined) die(draft, flow.id as number, found.current, found.spilled)
      }
      // Only closed connections still in the kernel (so in the dump) can be shown again: remember just those.
      if (HashMap.size(draft.reported) > 0) {
        const shownClosed = new Set<string>()
        for (const flow of shown) if (isClosed(flow)) shownClosed.add(connectionKey(flow))
        const forgotten: Array<string> = []
        for (const key of HashMap.keys(draft.reported)) if (!shownClosed.has(key)) forgotten.push(key)
        for (const key of forgotten) HashMap.remove(draft.reported, key)
      }
      // The caller may hold this resync for long (the walker's session does): let the dump's flows go.
      shown.clear()
      return [finish(current, draft), draft.changes ?? []]
    }
  }
}

/** Replaces what the table believes with a fresh dump, in one step (see `beginResync`). */
export const resync = (table: FlowTable, dump: Iterable<Flow>): readonly [FlowTable, ReadonlyArray<Change>] => {
  const r = beginResync(table)
  r.add(dump)
  return r.done(table)
}

/**
 * Every active flow (active = true) and every flow that died since the last walk (active = false), each connection
 * once; the next table has forgotten the dead ones.
 */
export const walk = (table: FlowTable): readonly [ReadonlyArray<WalkedFlow>, FlowTable] => {
  const active = FlowIndex.compact(table.active)
  const walked: Array<WalkedFlow> = new Array(size(table))
  let k = 0
  active.base.forEach((flow) => {
    walked[k++] = { active: true, flow }
  })
  for (const [, flows] of table.spill) for (const flow of flows) walked[k++] = { active: true, flow }
  if (table.dead.length > 0) {
    // A connection that died and came back is alive; one that died twice is reported once.
    const seen = new Set<string>()
    const dead = Chunk.toReadonlyArray(table.dead)
    for (let d = dead.length - 1; d >= 0; d--) {
      const flow = dead[d] as Flow
      const key = connectionKey(flow)
      if (seen.has(key)) continue
      seen.add(key)
      if (findIn(active, table.spill, flow) !== undefined) continue
      walked[k++] = { active: false, flow }
    }
  }
  walked.length = k
  return [walked, { ...table, active, dead: Chunk.empty() }]
}

const findIn = (active: FlowIndex.FlowIndex<Flow>, spill: FlowTable["spill"], flow: Flow) => {
  const first = FlowIndex.get(active, flow.id as number)
  if (first === undefined) return undefined
  if (sameFlow(first, flow)) return first
  if (HashMap.size(spill) === 0) return undefined
  return Option.getOrUndefined(HashMap.get(spill, flow.id as number))?.find((f) => sameFlow(f, flow))
}

/** How many flows are active. */
export const size = (table: FlowTable): number => {
  let n = table.active.size
  if (HashMap.size(table.spill) > 0) for (const [, flows] of table.spill) n += flows.length
  return n
}
