/**
 * The decoder's core without Effect: conntrack's stdout, chunk by chunk, to flows and reasons. `Parser.makeDecoder`
 * wraps it with `LineParseError`s; the `parse` command's fast start (`cli/ParseFile.ts`) uses it as it is, so that
 * it loads none of Effect.
 *
 * @internal
 */
import type { Flow } from "../Flow.js"
import { MAX_LINE_BYTES, makeLineReader } from "../Lines.js"
import { load } from "./lineScanner.js"
import { parseBytes, SLOW } from "./parse.js"
import { parseReference } from "./reference.js"

/** What the core hands its results to: a flow, or the reason and the line's bytes b[start, end). */
export interface LineResults {
  readonly flow: (flow: Flow, lineNumber: number) => void
  readonly error: (reason: string, line: () => string, lineNumber: number) => void
}

export const internalFailure = (cause: unknown): string => `internal parser failure (${String(cause)})`

/** Whether b[start, end) is blank (what `String.prototype.trim` removes entirely). */
const isBlank = (b: Buffer, start: number, end: number): boolean => {
  for (let k = start; k < end; k++) {
    const c = b[k] as number
    if (c === 32 || (c >= 9 && c <= 13)) continue
    return c >= 128 && b.toString("utf8", start, end).trim() === ""
  }
  return true
}

/** See `Parser.makeDecoder`. */
export const makeLineDecoder = (
  events: boolean,
  compact: boolean,
  sink: LineResults,
  maxLineBytes: number = MAX_LINE_BYTES
) => {
  let lineNumber = 0
  // The chunk being read, copied into the line scanner's memory: its lines are scanned where they lie there.
  let chunk: Buffer | undefined
  let ticket = 0
  const reader = makeLineReader(
    {
      line: (b, start, end) => {
        lineNumber++
        if (isBlank(b, start, end)) return
        let result: Flow | string | typeof SLOW
        try {
          result = parseBytes(b, start, end, events, compact, b === chunk ? ticket : 0)
          if (result === SLOW) result = parseReference(b.toString("utf8", start, end), events, compact)
        } catch (cause) {
          // Not expected: the parser checks everything it reads. Kept so that no input can ever escape as a throw.
          result = internalFailure(cause)
        }
        if (typeof result === "string") sink.error(result, () => b.toString("utf8", start, end), lineNumber)
        else sink.flow(result, lineNumber)
      },
      tooLong: (head, length) => {
        lineNumber++
        const reason = `line too long: ${length} bytes, more than conntrack prints (cut off after ${maxLineBytes} bytes while reading)`
        sink.error(reason, () => head.toString("utf8"), lineNumber)
      }
    },
    maxLineBytes
  )
  return {
    push: (bytes: Uint8Array) => {
      chunk = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
      ticket = load(chunk)
      try {
        reader.push(chunk)
      } finally {
        chunk = undefined
      }
    },
    end: reader.end
  }
}
