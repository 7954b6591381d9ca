/**
 * The tuples of a connection's last event, for the straight reader: `conntrack -E` prints a connection's tuples again
 * in each of its events (NEW, then an UPDATE for each state, then DESTROY), byte for byte the same until counters
 * join them. An event whose tuples repeat, byte for byte, those of the last event read with its id takes that event's
 * tuple objects instead of reading them again: what the bytes say was checked when they were read the first time.
 *
 * A direct-mapped cache indexed by the id: a slot holds the bytes of one line's tuples (from the original's `src=` to
 * the end of the reply's `dport=`), the id, and what they were read as. Only for compact reading (flows kept in a
 * table, where sharing the tuple objects between a connection's flows also saves memory). Not re-entrant, as the
 * reader.
 *
 * @internal
 */
import type { Tuple } from "../Flow.js"

const SLOTS = 4096
/** The most bytes a slot holds: tuples longer than this (long IPv6 addresses with NAT) are not kept. */
const WIDTH = 256

/** The slots' bytes: 1 MiB of zeroes, which the system maps only as slots are written. */
const bytes = new Uint8Array(SLOTS * WIDTH)
/** The length of the tuples' bytes in each slot; 0 for an empty slot. */
const lengths = new Int32Array(SLOTS)
const ids = new Float64Array(SLOTS)
const families = new Int32Array(SLOTS)
const unreplied = new Uint8Array(SLOTS)
const plain = new Uint8Array(SLOTS)
const originals: Array<Tuple | undefined> = new Array(SLOTS).fill(undefined)
const replies: Array<Tuple | undefined> = new Array(SLOTS).fill(undefined)

/**
 * The id at the end of the line b[start, end) (`... id=N`), or -1 when the line does not end with one. Only a hint
 * for the lookup: the reader reads the id again where it reads the line's other fields.
 */
export const trailingId = (b: Buffer, start: number, end: number): number => {
  let k = end
  while (k > start && (b[k - 1] as number) >= 48 && (b[k - 1] as number) <= 57) k--
  if (k === end || end - k > 10 || k - 4 < start) return -1
  if (b[k - 1] !== 61 || b[k - 2] !== 100 || b[k - 3] !== 105 || b[k - 4] !== 32) return -1
  let n = 0
  for (let j = k; j < end; j++) n = n * 10 + (b[j] as number) - 48
  return n
}

/**
 * The slot of the tuples kept for `id` if the bytes at `i` repeat them and end there (at a space or `end`), else -1.
 */
export const lookup = (b: Buffer, i: number, end: number, id: number): number => {
  const slot = id & (SLOTS - 1)
  const n = lengths[slot] as number
  if (n === 0 || ids[slot] !== id) return -1
  const stop = i + n
  if (stop > end || (stop < end && b[stop] !== 32)) return -1
  const at = slot * WIDTH
  for (let k = 0; k < n; k++) if (b[i + k] !== bytes[at + k]) return -1
  return slot
}

/** Whether the reply kept in `slot` holds only what the bytes kept say (no zone or counters after its ports). */
export const plainOf = (slot: number): boolean => plain[slot] === 1
/** The original tuple kept in `slot`. */
export const originalOf = (slot: number): Tuple => originals[slot] as Tuple
/** The reply tuple kept in `slot`. */
export const replyOf = (slot: number): Tuple => replies[slot] as Tuple
/** The address family the tuples kept in `slot` were read as. */
export const familyOf = (slot: number): number => families[slot] as number
/** Whether `[UNREPLIED]` stood between the tuples kept in `slot`. */
export const unrepliedOf = (slot: number): boolean => unreplied[slot] === 1
/** The length of the tuples' bytes kept in `slot`. */
export const lengthOf = (slot: number): number => lengths[slot] as number

/**
 * Keeps the tuples b[from, to) of the event with `id`, read as the rest of the arguments (`isPlain`: the reply holds
 * nothing read after these bytes).
 */
export const keep = (
  b: Buffer,
  from: number,
  to: number,
  id: number,
  family: number,
  isUnreplied: boolean,
  original: Tuple,
  reply: Tuple,
  isPlain: boolean
): void => {
  const n = to - from
  if (n > WIDTH || n <= 0) return
  const slot = id & (SLOTS - 1)
  const at = slot * WIDTH
  for (let k = 0; k < n; k++) bytes[at + k] = b[from + k] as number
  lengths[slot] = n
  ids[slot] = id
  families[slot] = family
  unreplied[slot] = isUnreplied ? 1 : 0
  plain[slot] = isPlain ? 1 : 0
  originals[slot] = original
  replies[slot] = reply
}

/** Forgets the tuples kept for `id`, if any (the connection was destroyed). */
export const forgetId = (id: number): void => {
  const slot = id & (SLOTS - 1)
  if (ids[slot] === id) forget(slot)
}

/** Forgets what `slot` holds (the connection was destroyed). */
export const forget = (slot: number): void => {
  lengths[slot] = 0
  originals[slot] = undefined
  replies[slot] = undefined
}
