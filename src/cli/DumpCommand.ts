/**
 * `effect-conntrack dump`: one `conntrack -L` through the parser.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Chunk from "effect/Chunk"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as Conntrack from "../Conntrack.js"
import * as Flags from "./Flags.js"
import { countReport, countState, flowTable } from "./Render.js"

const count = Options.boolean("count").pipe(Options.withDescription("print only how many flows, by state"))

export const dumpCommand = Command.make(
  "dump",
  {
    json: Flags.json,
    count,
    proto: Flags.proto,
    procRoot: Flags.procRoot,
    conntrack: Flags.conntrack,
    dumpArgs: Flags.dumpArgs
  },
  (flags) =>
    Effect.gen(function* () {
      const options = yield* Flags.walkerOptions(flags)
      const flows = Conntrack.dump(options)
      if (flags.count) {
        // Counted as they come: a table of 262,144 flows is never held.
        const counts = yield* Stream.runFold(flows, new Map<string, number>(), countState)
        yield* Console.log(countReport(counts, flags.json))
        return
      }
      const all = Chunk.toReadonlyArray(yield* Stream.runCollect(flows))
      if (flags.json) {
        if (all.length > 0) yield* Console.log(all.map((f) => JSON.stringify(f)).join("\n"))
      } else {
        yield* Console.log(
          flowTable(
            all.map((flow) => ({ flow, active: true })),
            false
          )
        )
      }
    })
).pipe(
  Command.withDescription(
    "List the tracked connections once (conntrack -L), as a table or JSON lines. More conntrack arguments go after --, e.g. dump -- --zone 3 (or CONNTRACK_EXTRA_ARGS)."
  )
)
