/**
 * Strings shared between flows, for both readers: one per address seen lately (for flows kept long, as in a table),
 * and free text that repeats from line to line.
 *
 * @internal
 */
import { ascii } from "./ascii.js"
import { WordCache } from "./bytes.js"

/** Free text that repeats from line to line (secctx, helper). */
export const texts = new WordCache(1024)

/*
 * Addresses repeat (a server's address in every flow to it): a direct-mapped cache, indexed by a hash of the last
 * bytes (a network's addresses share their start), gives the string made last time without a Map or a string hash.
 * A miss costs one comparison and one store; the cache holds at most ADDRESS_SLOTS strings.
 */
const ADDRESS_SLOTS = 1 << 14
const addresses: Array<string | undefined> = new Array(ADDRESS_SLOTS).fill(undefined)
const addressHashes = new Int32Array(ADDRESS_SLOTS)

export const cachedAddress = (b: Buffer, v: number, j: number): string => {
  const n = j - v
  const hash =
    n > 3
      ? (b[j - 1] as number) |
        ((b[j - 2] as number) << 5) |
        ((b[j - 3] as number) << 10) |
        ((b[j - 4] as number) << 15) |
        (n << 20)
      : n
  const slot = hash & (ADDRESS_SLOTS - 1)
  const known = addresses[slot]
  if (known !== undefined && addressHashes[slot] === hash && known.length === j - v) {
    let k = 0
    while (k < j - v && known.charCodeAt(k) === b[v + k]) k++
    if (k === j - v) return known
  }
  const made = ascii(b, v, j)
  addresses[slot] = made
  addressHashes[slot] = hash
  return made
}

/**
 * The address b[from, to) as a string: with `compact`, shared through the cache (flows kept long, as in a table);
 * else made anew (for flows thrown away, the lookup costs more than the string).
 */
export const addressText = (b: Buffer, from: number, to: number, compact: boolean): string =>
  compact ? cachedAddress(b, from, to) : ascii(b, from, to)
