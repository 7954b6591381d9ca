/**
 * Bytes to lines, a chunk at a time, without decoding: newlines are found with `Buffer.indexOf` and each line is
 * handed over as a range of the chunk it lies in. A line is never longer than `maxLineBytes`: a longer one is cut
 * off while it is read (its first `maxLineBytes` bytes are kept for the report, the rest only counted), so a stream
 * without newlines costs bounded memory.
 */

/**
 * The longest line read whole, in bytes. conntrack prints a flow into a 1024-byte buffer; the `[sec.usec]\t` prefix
 * of `-o timestamp` and the ` [USERSPACE] portid=N progname=NAME` suffix come on top (about 90 bytes at most).
 */
export const MAX_LINE_BYTES = 2048

/** What a line reader hands its lines to. */
export interface LineSink {
  /**
   * A line, b[start, end), without its `\n` (or `\r\n`). The bytes are only valid during the call: copy what you
   * keep.
   */
  readonly line: (b: Buffer, start: number, end: number) => void
  /** A line longer than the limit: its first bytes (a copy), and its length in bytes. */
  readonly tooLong: (head: Buffer, length: number) => void
}

/** A splitter of a byte stream into lines: `push` each chunk, then `end`. Lines end with `\n` or `\r\n`. */
export interface LineReader {
  readonly push: (bytes: Uint8Array) => void
  /** The last line, if the stream did not end with a newline. */
  readonly end: () => void
}

const NL = 10
const CR = 13

const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

/** A line reader. A UTF-8 byte order mark at the start of the stream is skipped, as `TextDecoder` does. */
export const makeLineReader = (sink: LineSink, maxLineBytes: number = MAX_LINE_BYTES): LineReader => {
  // The start of a line that continues in the next chunk: up to maxLineBytes + 1 bytes (a `\r` may follow).
  const carry = Buffer.allocUnsafe(maxLineBytes + 1)
  let carried = 0
  // Past the limit: the line is being skipped; `skipped` bytes so far (the head stays in `carry`).
  let skipping = false
  let skipped = 0
  let lastByte = 0
  let atStart = true

  const tooLong = (length: number) => {
    sink.tooLong(Buffer.from(carry.subarray(0, Math.min(carried, maxLineBytes))), length)
    carried = 0
    skipping = false
  }

  /** A whole line b[start, end) (end at its `\n`, or the end of the stream). */
  const emit = (b: Buffer, start: number, end: number, crlf: boolean) => {
    if (atStart) {
      atStart = false
      if (end - start >= 3 && b[start] === 0xef && b[start + 1] === 0xbb && b[start + 2] === 0xbf) start += 3
    }
    if (crlf && end > start && b[end - 1] === CR) end--
    if (end - start > maxLineBytes) {
      carried = 0
      b.copy(carry, 0, start, start + maxLineBytes)
      carried = maxLineBytes
      tooLong(end - start)
    } else {
      sink.line(b, start, end)
    }
  }

  /** Starts skipping a line: what is carried, then b[start, end), more than the limit allows. */
  const startSkipping = (b: Buffer, start: number, end: number) => {
    atStart = false
    skipped = carried + (end - start)
    if (carried < maxLineBytes) carried += b.copy(carry, carried, start, start + (maxLineBytes - carried))
    carried = Math.min(carried, maxLineBytes)
    skipping = true
    lastByte = b[end - 1] as number
  }

  const push = (bytes: Uint8Array) => {
    const b = asBuffer(bytes)
    const n = b.length
    if (n === 0) return
    let pos = 0
    if (skipping) {
      const nl = b.indexOf(NL)
      if (nl === -1) {
        skipped += n
        lastByte = b[n - 1] as number
        return
      }
      skipped += nl
      if (nl > 0) lastByte = b[nl - 1] as number
      tooLong(lastByte === CR ? skipped - 1 : skipped)
      pos = nl + 1
    } else if (carried > 0) {
      const nl = b.indexOf(NL)
      const take = nl === -1 ? n : nl
      if (carried + take > maxLineBytes + 1) {
        startSkipping(b, 0, take)
        if (nl === -1) return
        tooLong(lastByte === CR ? skipped - 1 : skipped)
      } else {
        b.copy(carry, carried, 0, take)
        carried += take
        if (nl === -1) return
        const length = carried
        carried = 0
        emit(carry, 0, length, true)
      }
      pos = nl + 1
    }
    let nl = b.indexOf(NL, pos)
    while (nl !== -1) {
      emit(b, pos, nl, true)
      pos = nl + 1
      nl = pos < n ? b.indexOf(NL, pos) : -1
    }
    if (pos < n) {
      if (n - pos > maxLineBytes + 1) startSkipping(b, pos, n)
      else carried = b.copy(carry, 0, pos, n)
    }
  }

  const end = () => {
    if (skipping) tooLong(skipped)
    else if (carried > 0) {
      const length = carried
      carried = 0
      emit(carry, 0, length, false)
    }
  }

  return { push, end }
}
