/**
 * The flow table: a pure reducer over an immutable table of tracked connections.
 *
 * Active flows are keyed by conntrack id and checked against their original tuple (ids were reused quickly before
 * Linux 5.1). A flow that dies is kept on a bounded dead list until the next walk reports it, once, as inactive.
 */
import * as Chunk from "effect/Chunk"
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import { type Flow, isClosed, type Tuple } from "./Flow.js"
import { defaults, type TableOptions } from "./Options.js"

/** A flow as a walk reports it: still active, or died since the previous walk. */
export interface WalkedFlow {
  readonly active: boolean
  readonly flow: Flow
}

/** What one fold did to the table, for consumers that react instead of walking. */
export type Change = { readonly _tag: "Upserted"; readonly flow: Flow } | { readonly _tag: "Died"; readonly flow: Flow }

export interface FlowTable {
  /** Active flows by conntrack id. */
  readonly active: HashMap.HashMap<number, Flow>
  /** Flows that died since the last walk, oldest first, at most `maxDead`. */
  readonly dead: Chunk.Chunk<Flow>
  /** Ids of closed flows already reported dead, with the sequence number of when, at most `maxReported`. */
  readonly reported: HashMap.HashMap<number, number>
  /** Dead flows dropped because the dead list was full, since the table was made. */
  readonly dropped: number
  /** Flows without a conntrack id, which cannot be keyed, since the table was made. */
  readonly unkeyed: number
  readonly seq: number
  readonly options: Required<TableOptions>
}

/** An empty table. */
export const empty = (options: TableOptions = {}): FlowTable => ({
  active: HashMap.empty(),
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

/** A table being changed by one fold: transient copies, turned back into an immutable table at the end. */
interface Draft {
  active: HashMap.HashMap<number, Flow>
  reported: HashMap.HashMap<number, number>
  died: Array<Flow>
  changes: Array<Change>
  seq: number
  unkeyed: number
}

const begin = (table: FlowTable): Draft => ({
  active: HashMap.beginMutation(table.active),
  reported: HashMap.beginMutation(table.reported),
  died: [],
  changes: [],
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
  const reportedExcess = HashMap.size(reported) - table.options.maxReported
  if (reportedExcess > 0) reported = forgetOldest(reported, reportedExcess)
  return {
    active: HashMap.endMutation(draft.active),
    dead,
    reported,
    dropped,
    unkeyed: draft.unkeyed,
    seq: draft.seq,
    options: table.options
  }
}

const forgetOldest = (reported: HashMap.HashMap<number, number>, count: number) => {
  const oldest = Array.from(reported).sort((a, b) => a[1] - b[1])
  return HashMap.mutate(reported, (m) => {
    for (let k = 0; k < count; k++) HashMap.remove(m, (oldest[k] as [number, number])[0])
  })
}

const die = (draft: Draft, id: number, flow: Flow) => {
  HashMap.remove(draft.active, id)
  HashMap.set(draft.reported, id, ++draft.seq)
  draft.died.push(flow)
  draft.changes.push({ _tag: "Died", flow })
}

const upsert = (draft: Draft, id: number, flow: Flow) => {
  HashMap.set(draft.active, id, flow)
  draft.changes.push({ _tag: "Upserted", flow })
}

/** The active flow with this flow's id, if it is the same connection. */
const activeCopy = (draft: Draft, id: number, flow: Flow): Flow | undefined => {
  const current = HashMap.get(draft.active, id)
  return Option.isSome(current) && sameFlow(current.value, flow) ? current.value : undefined
}

const step = (draft: Draft, flow: Flow, fromDump: boolean, includeNew: boolean): void => {
  const id = flow.id
  if (id === undefined) {
    draft.unkeyed++
    return
  }
  const existing = HashMap.get(draft.active, id)
  if (Option.isSome(existing) && !sameFlow(existing.value, flow)) {
    // The id now names another connection: the old one is over.
    die(draft, id, existing.value)
  }
  const current = activeCopy(draft, id, flow)
  if (fromDump || flow.type === "UPDATE" || (flow.type === "NEW" && includeNew)) {
    if (!isClosed(flow)) {
      upsert(draft, id, flow)
      if (HashMap.has(draft.reported, id)) HashMap.remove(draft.reported, id)
    } else if (current !== undefined) {
      die(draft, id, current)
    } else if (!HashMap.has(draft.reported, id)) {
      // A closed connection we never saw open (its events lost to an overflow, or it opened before we started):
      // the kernel keeps it in TIME_WAIT for two minutes, so a dump or a later event still shows it. Reported dead
      // once.
      die(draft, id, flow)
    }
  } else if (flow.type === "DESTROY" && current !== undefined) {
    die(draft, id, current)
  }
}

/** Options of one fold. */
export interface ApplyOptions {
  /** The flows come from a dump (`conntrack -L`), not from events. */
  readonly fromDump: boolean
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
  const draft = begin(table)
  for (const flow of flows) step(draft, flow, options.fromDump, table.options.includeNew)
  return [finish(table, draft), draft.changes]
}

/** Folds one flow into the table (see `applyAll`). */
export const apply = (table: FlowTable, flow: Flow, options: ApplyOptions): FlowTable =>
  applyAll(table, [flow], options)[0]

/**
 * Replaces what the table believes with a fresh dump. Flows still in the dump stay active (reported once, never
 * both dead and alive); active flows missing from it died while we were not listening and are reported dead once;
 * remembered reported ids that the dump no longer shows are forgotten.
 */
export const resync = (table: FlowTable, dump: Iterable<Flow>): readonly [FlowTable, ReadonlyArray<Change>] => {
  const seen = new Set<number>()
  const draft = begin(table)
  for (const flow of dump) {
    if (flow.id !== undefined) seen.add(flow.id)
    step(draft, flow, true, table.options.includeNew)
  }
  for (const [id, flow] of table.active) {
    if (!seen.has(id) && activeCopy(draft, id, flow) !== undefined) die(draft, id, flow)
  }
  const forgotten: Array<number> = []
  for (const id of HashMap.keys(draft.reported)) if (!seen.has(id)) forgotten.push(id)
  for (const id of forgotten) HashMap.remove(draft.reported, id)
  return [finish(table, draft), draft.changes]
}

/**
 * Every active flow (active = true) and every flow that died since the last walk (active = false), each connection
 * once; the next table has forgotten the dead ones.
 */
export const walk = (table: FlowTable): readonly [ReadonlyArray<WalkedFlow>, FlowTable] => {
  const walked: Array<WalkedFlow> = []
  for (const flow of HashMap.values(table.active)) walked.push({ active: true, flow })
  if (table.dead.length > 0) {
    // A connection that died and came back under the same id is alive; one that died twice is reported once.
    const seen = new Set<number>()
    const dead = Chunk.toReadonlyArray(table.dead)
    for (let k = dead.length - 1; k >= 0; k--) {
      const flow = dead[k] as Flow
      const id = flow.id as number
      if (seen.has(id)) continue
      seen.add(id)
      const alive = HashMap.get(table.active, id)
      if (Option.isSome(alive) && sameFlow(alive.value, flow)) continue
      walked.push({ active: false, flow })
    }
  }
  return [walked, { ...table, dead: Chunk.empty() }]
}

/** How many flows are active. */
export const size = (table: FlowTable): number => HashMap.size(table.active)
