/**
 * The parser's cursor: the line's bytes, and the token being read, b[i, j), inside b[.., limit). The value readers
 * find the token's end while they read it.
 *
 * @internal
 */
import { SPACE, text } from "./bytes.js"
import { addressFamily, decimal, scanEnd, skipSpaces } from "./scan.js"

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
    this.i = skipSpaces(this.b, from, this.limit)
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
    const n = decimal(this.b, v, this.limit)
    if (n < 0) this.endFrom(scanEnd)
    else this.j = scanEnd
    return n
  }

  /**
   * The family of the address from `v` to the token's end (set into `j`), as `familyOf` reads it: with a ":" it
   * must be IPv6, else IPv4 (checked while looking for the end).
   */
  addressValue(v: number): number {
    const family = addressFamily(this.b, v, this.limit)
    this.j = scanEnd
    return family
  }
}
