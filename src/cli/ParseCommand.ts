/**
 * `effect-conntrack parse --format dump|events [FILE]`: conntrack text in, one JSON flow per line out.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { type LineFormat, makeDecoder } from "../Parser.js"
import { Stdin, type StdinUnreadable } from "./Input.js"

/** Some input lines were not flows; each was reported on stderr. */
export class LinesFailed extends Data.TaggedError("LinesFailed")<{ readonly parsed: number; readonly failed: number }> {
  override get message() {
    return `${this.failed} of ${this.parsed + this.failed} lines could not be parsed`
  }
}

/** Counts of one run over the input. */
export interface ParseCounts {
  readonly parsed: number
  readonly failed: number
}

/**
 * Parses every line of `input`: flows as JSON lines through `Console.log`, bad lines as `line N: reason` through
 * `Console.error` (unless `count`). Blank lines are skipped.
 */
export const parseText = <E, R>(
  input: Stream.Stream<Uint8Array, E, R>,
  format: LineFormat,
  count: boolean
): Effect.Effect<ParseCounts, E, R> =>
  Effect.suspend(() => {
    let parsed = 0
    let failed = 0
    let out = ""
    let err = ""
    const decoder = makeDecoder(format, {
      flow: (flow) => {
        parsed++
        if (!count) out += `${JSON.stringify(flow)}\n`
      },
      error: (error, lineNumber) => {
        failed++
        if (!count) err += `line ${lineNumber}: ${error.reason}\n`
      }
    })
    const print = (chunks: Iterable<Uint8Array>, ending: boolean) =>
      Effect.suspend(() => {
        for (const bytes of chunks) decoder.push(bytes)
        if (ending) decoder.end()
        const [o, e] = [out, err]
        out = err = ""
        return Effect.zipRight(
          e === "" ? Effect.void : Console.error(e.slice(0, -1)),
          o === "" ? Effect.void : Console.log(o.slice(0, -1))
        )
      })
    return input.pipe(
      Stream.runForEachChunk((chunks) => print(chunks, false)),
      Effect.zipRight(print([], true)),
      Effect.map(() => ({ parsed, failed }))
    )
  })

const format = Options.choice("format", ["dump", "events"]).pipe(
  Options.withDescription("dump: lines of `conntrack -L -o id`; events: lines of `conntrack -E -o id`")
)
const count = Options.boolean("count").pipe(Options.withDescription("print only `parsed N, failed M`"))
const file = Args.file({ name: "FILE", exists: "yes" }).pipe(
  Args.withDescription("conntrack output to parse (standard input when absent)"),
  Args.optional
)

export const parseCommand = Command.make("parse", { format, count, file }, (config) =>
  Effect.gen(function* () {
    const input: Stream.Stream<Uint8Array, PlatformError | StdinUnreadable> = Option.isSome(config.file)
      ? (yield* FileSystem.FileSystem).stream(config.file.value, { chunkSize: FileSystem.MiB(1) })
      : yield* Stdin
    const counts = yield* parseText(input, config.format, config.count)
    if (config.count) yield* Console.log(`parsed ${counts.parsed}, failed ${counts.failed}`)
    if (counts.failed > 0) return yield* new LinesFailed(counts)
  })
).pipe(
  Command.withDescription(
    "Parse conntrack text output into JSON flows, one per line. Bad lines are reported on stderr as `line N: reason` and the rest go on; the exit code is 1 when any line failed."
  )
)
