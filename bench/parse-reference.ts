// `effect-conntrack parse --format F --count FILE` as it was before the byte parser: the file decoded with
// `Stream.decodeText`, split with `Stream.splitLines`, each line parsed by the string parser (now the reference in
// src/internal/reference.ts). Benchmark 1 runs it as a whole process, next to the real command.
import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Stream from "effect/Stream"
import { LineParseError } from "../src/Errors.js"
import type { Flow } from "../src/Flow.js"
import { parseReference } from "../src/internal/reference.js"

const [format, file] = process.argv.slice(2)

/** The old `parseLine`: the string parser, its result as an Either. */
const parseLine = (line: string): Either.Either<Flow, LineParseError> => {
  const result = parseReference(line, format === "events", false)
  return typeof result === "string" ? Either.left(new LineParseError({ line, reason: result })) : Either.right(result)
}

const program = Effect.gen(function* () {
  const fs = yield* FileSystem.FileSystem
  let parsed = 0
  let failed = 0
  yield* fs.stream(file ?? "").pipe(
    Stream.decodeText(),
    Stream.splitLines,
    Stream.runForEachChunk((lines) =>
      Effect.sync(() => {
        for (const line of lines) {
          if (line.trim() === "") continue
          if (Either.isRight(parseLine(line))) parsed++
          else failed++
        }
      })
    )
  )
  yield* Console.log(`parsed ${parsed}, failed ${failed}`)
})

NodeRuntime.runMain(program.pipe(Effect.provide(NodeContext.layer)))
