// Run by test/process.test.ts: starts conntrack -E (the fake) through the built library, prints its pid, waits.
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Effect from "effect/Effect"
import * as Conntrack from "../../dist/Conntrack.js"

const binary = process.argv[2]
Effect.runFork(
  Effect.gen(function* () {
    const running = yield* Conntrack.start("events", { binary })
    yield* running.listening
    console.log(`pid ${running.pid}`)
    yield* Effect.never
  }).pipe(Effect.scoped, Effect.provide(NodeContext.layer))
)
