// Run by the kernel suite inside a namespace: composes FlowWalker.layer from the built library, walks once after
// half a second, prints how many flows it saw. Logs go to stderr.
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as FlowWalker from "../../dist/FlowWalker.js"

const program = Effect.gen(function* () {
  const walker = yield* FlowWalker.FlowWalker
  yield* Effect.sleep("500 millis")
  const walked = yield* walker.walk
  console.log(`walked ${walked.length}`)
})

await Effect.runPromise(
  program.pipe(
    Effect.provide(FlowWalker.layer()),
    Effect.provide(NodeContext.layer),
    Effect.provide(Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger)))
  )
)
