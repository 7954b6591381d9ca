/**
 * conntrack's stdout (a dump's or an event stream's) as a stream of flows, for `Conntrack`.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Stream from "effect/Stream"
import type { LineParseError } from "../Errors.js"
import type { Flow } from "../Flow.js"
import * as LogLimit from "../LogLimit.js"
import * as Metrics from "../Metrics.js"
import { type LineFormat, makeDecoder } from "../Parser.js"

/**
 * A dump's flows are handed on in chunks of at least this many (the last may hold fewer). conntrack -L writes 4 KiB
 * (about 25 lines) at a time unless run through stdbuf (see `conntrackCommand.DUMP_WRITE_SIZE`), and each chunk costs
 * a consumer such as the walker a hand-over between fibers: on a table of 262,144 entries that was more CPU than the
 * fold. Events are handed on as they are read.
 */
export const DUMP_CHUNK = 2048

/** How the stream of flows ends: `failed` turns a failure to read stdout into its error; `after` runs once it ended. */
export interface Ending<E, E2> {
  readonly failed: (error: E) => E2
  readonly after: Effect.Effect<void, E2>
}

/**
 * conntrack's stdout as flows: the lines are found and parsed in the bytes (never decoded whole, never longer than
 * `MAX_LINE_BYTES`); lines that are not flows are reported and counted, and the stream goes on. When stdout fails,
 * the flows parsed before are handed on first, then the failure as `ending.failed` makes it; when stdout ends, the
 * last flows, then `ending.after`. (Both are done here rather than by stream stages of their own, which every read
 * would pass through; no gain was measured from this alone.)
 */
export const stdoutFlows =
  <E, E2>(format: LineFormat, shown: string, ending: Ending<E, E2>) =>
  (stdout: Stream.Stream<Uint8Array, E>): Stream.Stream<Flow, E2> =>
    Stream.suspend(() => {
      const least = format === "dump" ? DUMP_CHUNK : 1
      let flows: Array<Flow> = []
      let errors: Array<LineParseError> = []
      const decoder = makeDecoder(
        format,
        { flow: (flow) => flows.push(flow), error: (error) => errors.push(error) },
        { compact: true }
      )
      /** Reports the lines that were not flows, hands on the flows once there are enough (or `all`), then `next`. */
      type Parsing = Channel.Channel<Chunk.Chunk<Flow>, Chunk.Chunk<Uint8Array>, E2, E, unknown, unknown>
      const handOn = (all: boolean, next: Parsing): Parsing => {
        let step = next
        if (flows.length > 0 && (all || flows.length >= least)) {
          const parsed = Chunk.unsafeFromArray(flows)
          flows = []
          step = Channel.zipRight(Channel.write(parsed), step)
        }
        if (errors.length > 0) {
          const skipped = errors
          errors = []
          step = Channel.zipRight(Channel.fromEffect(reportSkipped(skipped, shown)), step)
        }
        return step
      }
      const reader: Parsing = Channel.readWithCause({
        onInput: (chunks: Chunk.Chunk<Uint8Array>) =>
          Channel.suspend(() => {
            for (const bytes of chunks) decoder.push(bytes)
            return handOn(false, reader)
          }),
        onFailure: (cause) => Channel.suspend(() => handOn(true, Channel.failCause(Cause.map(cause, ending.failed)))),
        onDone: () =>
          Channel.suspend(() => {
            decoder.end()
            return handOn(true, Channel.fromEffect(ending.after))
          })
      })
      return Stream.pipeThroughChannel(stdout, reader)
    })

/** Logs and counts the stdout lines that were not flows. */
const reportSkipped = (errors: ReadonlyArray<LineParseError>, shown: string): Effect.Effect<void> =>
  Metric.incrementBy(Metrics.parseErrors, errors.length).pipe(
    Effect.zipRight(
      Effect.forEach(errors, (e) =>
        LogLimit.warn(`${shown}: skipped a line: ${e.message}`, `${shown}: skipped a line: ${e.reason}`)
      )
    )
  )
