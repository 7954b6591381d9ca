import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as TestClock from "effect/TestClock"
import { program } from "../examples/walk.js"
import * as FlowWalker from "../src/FlowWalker.js"
import * as Scripted from "../src/testing.js"
import { recordingConsole } from "./support/console.js"

const root = path.join(import.meta.dirname, "..")
const readme = fs.readFileSync(path.join(root, "README.md"), "utf8")

describe("README", () => {
  it("shows examples/walk.ts and examples/main.ts as they are", () => {
    for (const file of ["examples/walk.ts", "examples/main.ts"]) {
      expect(readme).toContain(fs.readFileSync(path.join(root, file), "utf8").trim())
    }
  })

  it.effect("its example walks the flows every 5 seconds", () =>
    Effect.gen(function* () {
      const recorded = recordingConsole()
      const closing = Scripted.tcpFlow({ id: 2, sport: 40002, dport: 443, state: "CLOSE", type: "DESTROY" })
      const script = Scripted.layer({
        dump: [
          Scripted.dumpRun([
            Scripted.tcpFlow({ id: 1, sport: 40001, dport: 80 }),
            Scripted.tcpFlow({ id: 2, sport: 40002, dport: 443 })
          ])
        ],
        events: [Scripted.eventsRun([{ sleep: "7 seconds" }, closing])]
      })
      const walker = Layer.scoped(FlowWalker.FlowWalker, FlowWalker.make()).pipe(Layer.provide(script))
      const fiber = yield* program.pipe(Effect.provide(walker), Effect.withConsole(recorded.console), Effect.fork)
      yield* TestClock.adjust("5 seconds")
      yield* TestClock.adjust("5 seconds")
      yield* Fiber.interrupt(fiber)
      expect(recorded.stdout()).toBe(
        [
          "open   tcp 127.0.0.1:40001 -> 127.0.0.1:80",
          "open   tcp 127.0.0.1:40002 -> 127.0.0.1:443",
          "open   tcp 127.0.0.1:40001 -> 127.0.0.1:80",
          "closed tcp 127.0.0.1:40002 -> 127.0.0.1:443",
          ""
        ].join("\n")
      )
    })
  )
})
