/**
 * Parsers for the two text formats of the `conntrack` CLI: `-L -o id` (dump) and `-E -o id` (events).
 *
 * Both are pure and total: they return the flow or a `LineParseError` naming the line and the reason, and never
 * throw. They accept the `-o extended`, `-o timestamp`, `-o ktimestamp` and `-o labels` variants, padding of any
 * width, flag tags anywhere, and lines cut at conntrack's 1023-byte limit.
 *
 * Lines are read as bytes: `makeDecoder` takes conntrack's stdout chunk by chunk, finds the lines in place and parses
 * them without decoding the text; `parseLine` takes one line as a string.
 */
import * as Either from "effect/Either"
import { LineParseError } from "./Errors.js"
import type { Flow } from "./Flow.js"
import { internalFailure, makeLineDecoder } from "./internal/decode.js"
import { parseBytes, SLOW } from "./internal/parse.js"
import { parseReference } from "./internal/reference.js"
import { MAX_LINE_BYTES } from "./Lines.js"

/** conntrack prints each flow into a 1024-byte buffer: a flow text of 1023 characters may have been cut. */
export const MAX_FLOW_TEXT = 1023

/** Parses one line of `conntrack -L` output (no event type). */
export const parseDumpLine = (line: string): Either.Either<Flow, LineParseError> => parseLine(line, "dump")

/** Parses one line of `conntrack -E` output (starts with `[NEW]`, `[UPDATE]` or `[DESTROY]`). */
export const parseEventLine = (line: string): Either.Either<Flow, LineParseError> => parseLine(line, "events")

/** The two output formats of the CLI. */
export type LineFormat = "dump" | "events"

/** Options of `parseLine`. */
export interface ParseOptions {
  /**
   * Share equal addresses (through a small bounded cache) and free text (labels, `[start=...]`, program names)
   * between the flows parsed, for flows that are kept long, as in a table; without it, only a reply's addresses that
   * repeat its original's are shared (a lookup costs more than the string for flows thrown away). States and repeated
   * words (secctx, helper) are shared either way, and strings are never slices of the line or of the chunk it was
   * read in. An event whose tuples repeat, byte for byte, those of its connection's last event may share that event's
   * tuple objects (a cache of 4,096 slots, in 1 MiB that the system maps only as events are kept): flows are values,
   * not to be changed.
   */
  readonly compact?: boolean
}

const NON_ASCII = /[\u0080-\uffff]/
let scratch = Buffer.allocUnsafe(4096)

/** The flow or the reason, from the byte parser (or, for the rare line it hands back, the string parser). */
const parseString = (line: string, events: boolean, compact: boolean): Flow | string => {
  // Characters outside ASCII have other lengths in bytes; such lines are rare (conntrack prints ASCII).
  if (NON_ASCII.test(line)) return parseReference(line, events, compact)
  if (line.length > scratch.length) scratch = Buffer.allocUnsafe(Math.max(line.length, 2 * scratch.length))
  const n = scratch.write(line, 0, "latin1")
  const result = parseBytes(scratch, 0, n, events, compact)
  return result === SLOW ? parseReference(line, events, compact) : result
}

/** Parses one line of either format. */
export const parseLine = (
  line: string,
  format: LineFormat,
  options?: ParseOptions
): Either.Either<Flow, LineParseError> => {
  let result: Flow | string
  try {
    result = parseString(line, format === "events", options?.compact === true)
  } catch (cause) {
    // Not expected: the parser checks everything it reads. Kept so that no input can ever escape as a throw.
    result = internalFailure(cause)
  }
  return typeof result === "string" ? Either.left(new LineParseError({ line, reason: result })) : Either.right(result)
}

/** What a decoder hands its results to, with the number of the line (from 1, blank lines counted). */
export interface DecodedLine {
  readonly flow: (flow: Flow, lineNumber: number) => void
  readonly error: (error: LineParseError, lineNumber: number) => void
}

/** Options of `makeDecoder`. */
export interface DecoderOptions extends ParseOptions {
  /** Lines longer than this many bytes are cut off while reading and reported as errors (default 2048). */
  readonly maxLineBytes?: number
}

/** A parser of conntrack output as it comes: `push` each chunk of stdout, then `end`. */
export interface Decoder {
  readonly push: (bytes: Uint8Array) => void
  readonly end: () => void
}

/**
 * A decoder of conntrack's stdout: splits the bytes into lines (`\n` or `\r\n`), skips blank ones, and parses the
 * rest in place. Lines longer than `maxLineBytes` (2048 by default, well above what conntrack prints) are not
 * gathered: each is reported as one error saying it was too long, and the next line is read as usual.
 */
export const makeDecoder = (format: LineFormat, sink: DecodedLine, options?: DecoderOptions): Decoder =>
  makeLineDecoder(
    format === "events",
    options?.compact === true,
    {
      flow: sink.flow,
      error: (reason, line, lineNumber) => sink.error(new LineParseError({ line: line(), reason }), lineNumber)
    },
    options?.maxLineBytes ?? MAX_LINE_BYTES
  )
