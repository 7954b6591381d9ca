/**
 * The parser's cursor: the line's bytes, and the token being read, b[i, j), inside b[.., limit). The value readers
 * find the token's end while they read it.
 *
 * @internal
 */
import { IPV4, IPV6, isIPv6, NONE } from "./address.js"
import { SPACE, text } from "./bytes.js"

export class Cursor {
  b: Buffer = Buffer.alloc(0)
  /** The end of the line (without its line break): nothing at or past it is read. */
  stop = 0
  i = 0
  j = 0
  limit = 0

  /** The end of the token starting at `i`: the next space, or `limit`. */
  tokenEnd(): void {
    const b = this.b
    const limit = this.limit
    let k = Math.min(this.i, limit)
    while (k < limit && b[k] !== SPACE) k++
    this.j = k
  }

  /** Moves `i` past the spaces at or after `from`. */
  skipSpaces(from: number): void {
    const b = this.b
    const limit = this.limit
    let k = from
    while (k < limit && b[k] === SPACE) k++
    this.i = k
  }

  /** The next token: past the spaces after the current one. */
  next(): void {
    this.skipSpaces(this.j)
    this.tokenEnd()
  }

  /** The byte at `k`, or -1 past the line. */
  byteAt(k: number): number {
    return k < this.stop ? (this.b[k] as number) : -1
  }

  /** The current token as text, for messages. */
  token(): string {
    return text(this.b, this.i, this.j)
  }

  /** The token's end from `k` on (the next space, or `limit`), into `j`. */
  endFrom(k: number): number {
    const b = this.b
    const limit = this.limit
    while (k < limit && b[k] !== SPACE) k++
    this.j = k
    return k
  }

  /** The decimal value from `v` to the token's end (set into `j`), as `uint` reads it: -1 if it is not one. */
  uintValue(v: number): number {
    const b = this.b
    const limit = this.limit
    let k = v
    let n = 0
    while (k < limit) {
      const d = (b[k] as number) - 48
      if (d < 0 || d > 9) break
      n = n * 10 + d
      k++
    }
    if (k < limit && b[k] !== SPACE) {
      this.endFrom(k)
      return -1
    }
    this.j = k
    return k === v || k - v > 16 || n > Number.MAX_SAFE_INTEGER ? -1 : n
  }

  /**
   * The family of the address from `v` to the token's end (set into `j`), as `familyOf` reads it: with a ":" it
   * must be IPv6, else IPv4 (checked while looking for the end).
   */
  addressValue(v: number): number {
    const b = this.b
    const limit = this.limit
    let k = v
    let ok = true
    let colon = false
    let dots = 0
    let digits = 0
    let octet = 0
    for (; k < limit; k++) {
      const d = b[k] as number
      if (d === SPACE) break
      if (d === 46) {
        if (digits === 0) ok = false
        dots++
        digits = 0
        octet = 0
      } else if (d >= 48 && d <= 57) {
        octet = octet * 10 + d - 48
        if (++digits > 3 || octet > 255) ok = false
      } else if (d === 58) {
        colon = true
      } else {
        ok = false
      }
    }
    this.j = k
    if (colon) return isIPv6(b, v, k) ? IPV6 : NONE
    return ok && dots === 3 && digits > 0 ? IPV4 : NONE
  }
}
