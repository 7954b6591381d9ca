/**
 * `effect-conntrack watch`: runs the walker and prints each walk.
 */
import * as Command from "@effect/cli/Command"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as Conntrack from "../Conntrack.js"
import * as FlowWalker from "../FlowWalker.js"
import * as KernelSupport from "../KernelSupport.js"
import { resolve } from "../Options.js"
import * as Flags from "./Flags.js"
import { walkJson, walkText } from "./Render.js"

const interval = Flags.duration("interval", "1 second", "time between walks")

export const watchCommand = Command.make(
  "watch",
  {
    json: Flags.json,
    interval,
    proto: Flags.proto,
    bufferSize: Flags.bufferSize,
    eventSource: Flags.eventSource,
    procRoot: Flags.procRoot,
    conntrack: Flags.conntrack
  },
  (flags) =>
    Effect.gen(function* () {
      const options = yield* Flags.walkerOptions(flags)
      // Fail fast on what a user can fix, instead of a walker that reports nothing or keeps retrying.
      yield* KernelSupport.check(resolve(options).procRoot)
      yield* Stream.runDrain(Conntrack.dump(options))
      const walker = yield* FlowWalker.make(options)
      let walk = 0
      yield* Effect.forever(
        Effect.gen(function* () {
          yield* Effect.sleep(flags.interval)
          const walked = yield* walker.walk
          walk++
          if (flags.json) {
            if (walked.length > 0) yield* Console.log(walkJson(walk, walked))
          } else {
            yield* Console.log(walkText(walk, walked))
          }
        })
      )
    }).pipe(Effect.scoped)
).pipe(
  Command.withDescription(
    "Track connections live: every --interval, print the active flows and those closed since the last walk. Stops cleanly on Ctrl-C or SIGTERM. More conntrack arguments go after --, e.g. watch -- --zone 3 (or CONNTRACK_EXTRA_ARGS)."
  )
)
