/**
 * The tuples of a connection's last event, for the straight reader (the line scanner keeps its own): `conntrack -E` prints a connection's tuples again
 * in each of its events (NEW, then an UPDATE for each state, then DESTROY), byte for byte the same until counters
 * join them. An event whose tuples repeat, byte for byte, those kept for its line's key takes that event's
 * tuple objects instead of reading them again: what the bytes say was checked when they were read the first time.
 *
 * A direct-mapped cache indexed by a key of the line: its last 4 bytes, which in conntrack's `-o id` lines are the
 * last digits of the connection's id (numbers the kernel draws from a hash). A slot holds the bytes of one line's
 * tuples (from the original's `src=` to the end of the reply's `dport=`), the key, and what they were read as. The key
 * only picks the slot: what is taken is decided by the bytes. Only for compact reading (flows kept in a table, where
 * sharing the tuple objects between a connection's flows also saves memory). Not re-entrant, as the reader.
 *
 * The bytes are compared and copied with `Buffer` methods: in Node 20 a loop copying them byte by byte ran about 17
 * instructions a byte (2,500 a line), three times what `Buffer.copy` runs.
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
const keys = new Int32Array(SLOTS)
const families = new Int32Array(SLOTS)
const unreplied = new Uint8Array(SLOTS)
const plain = new Uint8Array(SLOTS)
const originals: Array<Tuple | undefined> = new Array(SLOTS).fill(undefined)
const replies: Array<Tuple | undefined> = new Array(SLOTS).fill(undefined)

const slotOf = (key: number): number => Math.imul(key, 0x9e3779b1) >>> 20

/*
 * Keeping a line's tuples costs about as much as a tenth of reading the line, and pays only when a later event takes
 * them (in a flood of connections that each print one event, none does). Each take earns one keep and each keep spends
 * one, up to CREDIT in hand; with none left, one line in SPARSE is kept, and the takes of those earn the rest back.
 */
const CREDIT = 64
const SPARSE = 16

/** How many more lines are worth keeping (for this cache and the line scanner's). */
export class KeepCredit {
  private credit = CREDIT
  private skipped = 0
  /** A line read took kept tuples. */
  took(): void {
    if (this.credit < CREDIT) this.credit++
  }
  /** A line kept its tuples. */
  kept(): void {
    if (this.credit > 0) this.credit--
  }
  /** Whether the line read now should keep its tuples. */
  worthKeeping(): boolean {
    if (this.credit > 0) return true
    if (++this.skipped < SPARSE) return false
    this.skipped = 0
    return true
  }
  reset(): void {
    this.credit = CREDIT
    this.skipped = 0
  }
}
const credit = new KeepCredit()

/**
 * The slot of the tuples kept for `key` if the bytes at `i` repeat them and end there (at a space or `end`), else -1.
 */
export const lookup = (b: Buffer, i: number, end: number, key: number): number => {
  const slot = slotOf(key)
  const n = lengths[slot] as number
  if (n === 0 || keys[slot] !== key) return -1
  const stop = i + n
  if (stop > end || (stop < end && b[stop] !== 32)) return -1
  const at = slot * WIDTH
  if (b.compare(bytes, at, at + n, i, stop) !== 0) return -1
  return slot
}

/** Whether the line read now should keep its tuples. */
export const worthKeeping = (): boolean => credit.worthKeeping()

/** A line read took the tuples kept in a slot. */
export const took = (): void => credit.took()

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
 * Keeps the tuples b[from, to) of the event whose line has `key`, read as the rest of the arguments (`isPlain`: the reply holds
 * nothing read after these bytes).
 */
export const keep = (
  b: Buffer,
  from: number,
  to: number,
  key: number,
  family: number,
  isUnreplied: boolean,
  original: Tuple,
  reply: Tuple,
  isPlain: boolean
): void => {
  const n = to - from
  if (n > WIDTH || n <= 0) return
  credit.kept()
  const slot = slotOf(key)
  const at = slot * WIDTH
  b.copy(bytes, at, from, to)
  lengths[slot] = n
  keys[slot] = key
  families[slot] = family
  unreplied[slot] = isUnreplied ? 1 : 0
  plain[slot] = isPlain ? 1 : 0
  originals[slot] = original
  replies[slot] = reply
}

/** Forgets the tuples kept for `key`, if any (the connection was destroyed). */
export const forgetKey = (key: number): void => {
  const slot = slotOf(key)
  if (keys[slot] === key) forget(slot)
}

/** Empties the cache and restores its credit (for tests that count what is taken). */
export const reset = (): void => {
  for (let slot = 0; slot < SLOTS; slot++) forget(slot)
  credit.reset()
}

/** Forgets what `slot` holds (the connection was destroyed). */
export const forget = (slot: number): void => {
  lengths[slot] = 0
  originals[slot] = undefined
  replies[slot] = undefined
}
