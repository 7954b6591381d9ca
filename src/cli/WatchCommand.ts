/**
 * `effect-conntrack watch`: runs the walker and prints each walk.
 */
import * as Command from "@effect/cli/Command"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as FlowWalker from "../FlowWalker.js"
import * as KernelSupport from "../KernelSupport.js"
import { resolve } from "../Options.js"
import * as Flags from "./Flags.js"
import * as Heap from "./Heap.js"
import { ExitStatus } from "./Input.js"
import { walkJson, walkText } from "./Render.js"

const interval = Flags.duration("interval", "1 second", "time between walks", "10 millis")

export const watchCommand = Command.make(
  "watch",
  {
    json: Flags.json,
    interval,
    proto: Flags.proto,
    bufferSize: Flags.bufferSize,
    eventSource: Flags.eventSource,
    procRoot: Flags.procRoot,
    conntrack: Flags.conntrack,
    dumpArgs: Flags.dumpArgs,
    eventArgs: Flags.eventArgs
  },
  (flags) =>
    Effect.gen(function* () {
      // A signal is how watch normally ends: exit 0, not 130/143.
      ;(yield* ExitStatus).signalEndsCleanly = true
      // Memory that follows what the walker keeps, not V8's throughput headroom (see Heap.ts).
      yield* Heap.bound
      const options = yield* Flags.walkerOptions(flags)
      // Fail fast on what a user can fix, instead of a walker that reports nothing or keeps retrying: events off,
      // then (from the walker's own first attempt) a missing conntrack or no privilege.
      yield* KernelSupport.check(resolve(options).procRoot)
      const walker = yield* FlowWalker.make(options)
      yield* walker.ready
      let walk = 0
      yield* Effect.forever(
        Effect.gen(function* () {
          yield* Effect.sleep(flags.interval)
          // The walker's own reader: made with it, so the first walk has the deaths of the first dump.
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
    "Track connections live: every --interval, print the active flows and those closed since the last walk. Stops cleanly on Ctrl-C or SIGTERM. More conntrack arguments go after --, for both -L and -E, e.g. watch -- --zone 3 (or CONNTRACK_EXTRA_ARGS); --dump-arg and --event-arg give them to one only."
  )
)
