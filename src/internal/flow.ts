/**
 * Flow and tuple objects made from drafts: only the fields the line held, always in one order.
 *
 * @internal
 */
import type { Flow, Tuple } from "../Flow.js"

export type Draft<T> = { -readonly [K in keyof T]-?: T[K] | undefined }
export type TupleDraft = Draft<Tuple>
export type FlowDraft = Draft<Flow>

export const emptyTuple = (): TupleDraft => ({
  src: undefined,
  dst: undefined,
  sport: undefined,
  dport: undefined,
  type: undefined,
  code: undefined,
  id: undefined,
  srckey: undefined,
  dstkey: undefined,
  zone: undefined,
  packets: undefined,
  bytes: undefined
})

export const clearTuple = (t: TupleDraft): void => {
  t.src = t.dst = undefined
  t.sport = t.dport = t.type = t.code = t.id = t.srckey = t.dstkey = t.zone = t.packets = t.bytes = undefined
}

export const emptyFlow = (): FlowDraft => ({
  type: undefined,
  timestamp: undefined,
  family: undefined,
  proto: undefined,
  protonum: undefined,
  timeout: undefined,
  state: undefined,
  original: undefined,
  reply: undefined,
  unreplied: undefined,
  assured: undefined,
  offload: undefined,
  hwOffload: undefined,
  mark: undefined,
  secmark: undefined,
  secctx: undefined,
  zone: undefined,
  deltaTime: undefined,
  start: undefined,
  stop: undefined,
  helper: undefined,
  use: undefined,
  id: undefined,
  labels: undefined,
  userspace: undefined,
  truncated: undefined
})

export const clearFlow = (d: FlowDraft): void => {
  d.type = d.timestamp = d.family = d.proto = d.protonum = d.timeout = d.state = undefined
  d.original = d.reply = undefined
  d.unreplied = d.assured = d.offload = d.hwOffload = undefined
  d.mark = d.secmark = d.secctx = d.zone = d.deltaTime = d.start = d.stop = d.helper = d.use = d.id = undefined
  d.labels = d.userspace = d.truncated = undefined
}

/*
 * Flows and tuples are made by constructors that set only the fields the line held, in one order. V8 then gives
 * every field a slot inside the object (no separate property array), which keeps a table of 262,144 flows small.
 * Their prototype is Object.prototype: to a user they are plain objects.
 */
function TupleObject(this: TupleDraft, d: TupleDraft) {
  this.src = d.src
  this.dst = d.dst
  if (d.sport !== undefined) this.sport = d.sport
  if (d.dport !== undefined) this.dport = d.dport
  if (d.type !== undefined) this.type = d.type
  if (d.code !== undefined) this.code = d.code
  if (d.id !== undefined) this.id = d.id
  if (d.srckey !== undefined) this.srckey = d.srckey
  if (d.dstkey !== undefined) this.dstkey = d.dstkey
  if (d.zone !== undefined) this.zone = d.zone
  if (d.packets !== undefined) this.packets = d.packets
  if (d.bytes !== undefined) this.bytes = d.bytes
}
TupleObject.prototype = Object.prototype
export const makeTuple = (d: TupleDraft): Tuple => new (TupleObject as unknown as new (d: TupleDraft) => Tuple)(d)

/** A tuple of `known`'s addresses and ports with the rest of the draft `d` (a reply's zone and counters, read anew). */
export const makeTupleAt = (d: TupleDraft, known: Tuple): Tuple => {
  d.src = known.src
  d.dst = known.dst
  d.sport = known.sport
  d.dport = known.dport
  return makeTuple(d)
}

function FlowObject(this: FlowDraft, d: FlowDraft) {
  if (d.type !== undefined) this.type = d.type
  if (d.timestamp !== undefined) this.timestamp = d.timestamp
  this.family = d.family
  this.proto = d.proto
  this.protonum = d.protonum
  if (d.timeout !== undefined) this.timeout = d.timeout
  if (d.state !== undefined) this.state = d.state
  this.original = d.original
  this.reply = d.reply
  if (d.unreplied !== undefined) this.unreplied = d.unreplied
  if (d.assured !== undefined) this.assured = d.assured
  if (d.offload !== undefined) this.offload = d.offload
  if (d.hwOffload !== undefined) this.hwOffload = d.hwOffload
  if (d.mark !== undefined) this.mark = d.mark
  if (d.secmark !== undefined) this.secmark = d.secmark
  if (d.secctx !== undefined) this.secctx = d.secctx
  if (d.zone !== undefined) this.zone = d.zone
  if (d.deltaTime !== undefined) this.deltaTime = d.deltaTime
  if (d.start !== undefined) this.start = d.start
  if (d.stop !== undefined) this.stop = d.stop
  if (d.helper !== undefined) this.helper = d.helper
  if (d.use !== undefined) this.use = d.use
  if (d.id !== undefined) this.id = d.id
  if (d.labels !== undefined) this.labels = d.labels
  if (d.userspace !== undefined) this.userspace = d.userspace
  if (d.truncated !== undefined) this.truncated = d.truncated
}
FlowObject.prototype = Object.prototype
export const makeFlow = (d: FlowDraft): Flow => new (FlowObject as unknown as new (d: FlowDraft) => Flow)(d)
