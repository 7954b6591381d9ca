/**
 * Values read in place from a line's bytes, each up to the next space or `end` (nothing at or past `end` is read),
 * for both parsers. The value readers return what they read, or that it is not one, and leave where they stopped in
 * `scanEnd` (`repeats` only when the bytes repeat): a reader reads a value and moves on from there without making an
 * object for the two.
 *
 * The space is written as the literal 32 here and in the straight reader: Node 20's V8 loads a module-level constant
 * (imported or not) from memory, with a check, at every use: the literals took 2.8% of the instructions off a rich
 * dump line and 3.7% off a rich event line (counted with `bench/instructions.sh`).
 *
 * @internal
 */
import { IPV4, IPV6, isIPv6, NONE } from "./address.js"

/** Where the value read last stopped. */
export let scanEnd = 0

/**
 * The decimal number from `k`: 1 to 16 digits up to a space or `end`, at most 2^53 - 1; else -1. `scanEnd`: the
 * first byte that is not a digit.
 */
export const decimal = (b: Buffer, k: number, end: number): number => {
  const from = k
  let n = 0
  while (k < end) {
    const d = (b[k] as number) - 48
    if (d < 0 || d > 9) break
    n = n * 10 + d
    k++
  }
  scanEnd = k
  return k === from || k - from > 16 || n > Number.MAX_SAFE_INTEGER || (k < end && b[k] !== 32) ? -1 : n
}

/**
 * The family of the address from `k` to the next space or `end`: with a ":" it must be IPv6 (`isIPv6`), else four
 * decimal octets of 1 to 3 digits, each at most 255; NONE if it is neither. `scanEnd`: the space or `end`.
 */
export const addressFamily = (b: Buffer, k: number, end: number): number => {
  const from = k
  let ok = true
  let colon = false
  let dots = 0
  let octetFrom = k
  let octet = 0
  for (; k < end; k++) {
    const d = b[k] as number
    if (d >= 48 && d <= 57) {
      octet = octet * 10 + d - 48
    } else if (d === 46) {
      if (k === octetFrom || k - octetFrom > 3 || octet > 255) ok = false
      dots++
      octetFrom = k + 1
      octet = 0
    } else if (d === 32) {
      break
    } else if (d === 58) {
      colon = true
    } else {
      ok = false
    }
  }
  scanEnd = k
  if (colon) return isIPv6(b, from, k) ? IPV6 : NONE
  return ok && dots === 3 && k > octetFrom && k - octetFrom <= 3 && octet <= 255 ? IPV4 : NONE
}

/**
 * Whether the bytes from `v` repeat b[from, to) and end there, at a space or `end` (a reply's address that mirrors
 * the original's). `scanEnd`: where they end, when they do.
 */
export const repeats = (b: Buffer, v: number, end: number, from: number, to: number): boolean => {
  const stop = v + (to - from)
  if (stop > end || (stop < end && b[stop] !== 32)) return false
  for (let k = 0; k < to - from; k++) if (b[v + k] !== b[from + k]) return false
  scanEnd = stop
  return true
}

/** The first byte at or after `i` that is not a space (or `end`). */
export const skipSpaces = (b: Buffer, i: number, end: number): number => {
  while (i < end && b[i] === 32) i++
  return i
}
