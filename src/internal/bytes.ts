/**
 * Reading ASCII out of a `Buffer` by index: numbers, words and strings, without decoding the line.
 *
 * @internal
 */
import { ascii } from "./ascii.js"

export { ascii }

export const SPACE = 32
export const TAB = 9
export const BRACKET = 91
export const CLOSE_BRACKET = 93
export const EQUALS = 61

/** The byte at `k` (callers keep `k` inside the line). */
export const at = (b: Buffer, k: number): number => b[k] as number

/** The decimal integer in b[from, to), exact (at most 2^53 - 1), or -1. */
export const uint = (b: Buffer, from: number, to: number): number => {
  if (to <= from || to - from > 16) return -1
  let v = 0
  for (let k = from; k < to; k++) {
    const c = (b[k] as number) - 48
    if (c < 0 || c > 9) return -1
    v = v * 10 + c
  }
  return v <= Number.MAX_SAFE_INTEGER ? v : -1
}

/** The `0x..` hexadecimal integer in b[from, to), or -1. */
export const hexUint = (b: Buffer, from: number, to: number): number => {
  if (to - from < 3 || to - from > 15 || b[from] !== 48 || ((b[from + 1] as number) | 32) !== 120) return -1
  let v = 0
  for (let k = from + 2; k < to; k++) {
    const c = (b[k] as number) | 32
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1
    if (d < 0) return -1
    v = v * 16 + d
  }
  return v
}

/** An ASCII word as bytes, for `startsWith` and `equals`. */
export const wordBytes = (word: string): Uint8Array => Uint8Array.from(word, (ch) => ch.charCodeAt(0))

/** Whether b[i, i + word.length) is `word`, reading nothing at or past `limit`. */
export const startsWith = (b: Buffer, i: number, limit: number, word: Uint8Array): boolean => {
  const n = word.length
  if (i + n > limit) return false
  for (let k = 0; k < n; k++) if (b[i + k] !== word[k]) return false
  return true
}

/** Whether b[i, j) is exactly `word`. */
export const equals = (b: Buffer, i: number, j: number, word: Uint8Array): boolean =>
  j - i === word.length && startsWith(b, i, j, word)

/** Whether b[a0, a1) and b[b0, b1) hold the same bytes. */
export const sameBytes = (b: Buffer, a0: number, a1: number, b0: number, b1: number): boolean => {
  if (a1 - a0 !== b1 - b0) return false
  for (let k = 0; k < a1 - a0; k++) if (b[a0 + k] !== b[b0 + k]) return false
  return true
}

/** The index of `byte` in b[from, to), or -1. */
export const find = (b: Buffer, byte: number, from: number, to: number): number => {
  for (let k = from; k < to; k++) if (b[k] === byte) return k
  return -1
}

/** Whether b[from, to) holds a byte outside ASCII. */
export const hasHighByte = (b: Buffer, from: number, to: number): boolean => {
  for (let k = from; k < to; k++) if ((b[k] as number) >= 128) return true
  return false
}

/**
 * Free text (a label, a context, a program name) as a string: ASCII as it is, anything else decoded as UTF-8 (as a
 * `TextDecoder` would decode the whole line: cuts fall on ASCII bytes, which end any UTF-8 sequence).
 */
export const text = (b: Buffer, from: number, to: number): string => {
  if (to <= from) return ""
  return hasHighByte(b, from, to) ? b.toString("utf8", from, to) : ascii(b, from, to)
}

/**
 * Strings shared by their bytes: a lookup by length, first, middle and last byte, checked byte for byte, so that a
 * word seen before costs no new string. Bounded: at `limit` entries it starts over.
 */
export class WordCache {
  private bytes = new Map<number, Buffer>()
  private strings = new Map<number, string>()
  // The word asked for last: lines in a row mostly carry the same one.
  private lastBytes: Buffer = Buffer.alloc(0)
  private last = ""
  constructor(private readonly limit: number) {}

  /**
   * The word that starts at `from` and ends at the first space (or `limit`), and where it ends: the last word asked
   * for is checked in the same pass that finds the end.
   */
  getToken(b: Buffer, from: number, limit: number): string {
    const last = this.lastBytes
    const n = last.length
    const end = from + n
    if (n > 0 && end <= limit && (end === limit || b[end] === 32)) {
      let k = 0
      while (k < n && last[k] === b[from + k]) k++
      if (k === n) {
        this.end = end
        return this.last
      }
    }
    let e = from
    while (e < limit && b[e] !== 32) e++
    this.end = e
    return this.get(b, from, e)
  }

  /** Where the word `getToken` read ends. */
  end = 0

  get(b: Buffer, from: number, to: number): string {
    const n = to - from
    if (n <= 0) return ""
    const lastBytes = this.lastBytes
    if (lastBytes.length === n) {
      let k = 0
      while (k < n && lastBytes[k] === b[from + k]) k++
      if (k === n) return this.last
    }
    return this.lookup(b, from, to)
  }

  private lookup(b: Buffer, from: number, to: number): string {
    const n = to - from
    const key = (n << 24) | (at(b, from) << 16) | (at(b, from + (n >> 1)) << 8) | at(b, to - 1)
    const known = this.bytes.get(key)
    if (known !== undefined && known.length === n) {
      let k = 0
      while (k < n && known[k] === b[from + k]) k++
      if (k === n) {
        this.lastBytes = known
        this.last = this.strings.get(key) as string
        return this.last
      }
    }
    const s = text(b, from, to)
    if (n > 255) return s
    if (this.bytes.size >= this.limit) {
      this.bytes = new Map()
      this.strings = new Map()
    }
    const bytes = Buffer.from(b.subarray(from, to))
    this.bytes.set(key, bytes)
    this.strings.set(key, s)
    this.lastBytes = bytes
    this.last = s
    return s
  }
}
