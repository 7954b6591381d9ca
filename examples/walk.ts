import * as NodeContext from "@effect/platform-node/NodeContext"
import { Console, Effect, Layer } from "effect"
import { FlowWalker } from "effect-conntrack"

/** Every 5 seconds: the open connections, and those closed since the previous walk. */
export const program = Effect.gen(function* () {
  const walker = yield* FlowWalker.FlowWalker
  yield* Effect.sleep("5 seconds")
  for (const { active, flow } of yield* walker.walk) {
    const { src, sport, dst, dport } = flow.original
    yield* Console.log(`${active ? "open  " : "closed"} ${flow.proto} ${src}:${sport} -> ${dst}:${dport}`)
  }
}).pipe(Effect.forever)

/** The live walker (or the no-op one, with a log line, when the kernel sends no events). */
export const WalkerLive = FlowWalker.layer({ protocol: "tcp" }).pipe(Layer.provide(NodeContext.layer))
