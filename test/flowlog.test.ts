// The flow log: closed connections as JSON lines, from a reader of its own, flushed when stopped.
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Flow } from "../src/Flow.js"
import * as FlowLog from "../src/FlowLog.js"
import * as FlowWalker from "../src/FlowWalker.js"
import * as Scripted from "../src/testing.js"
import { recordingConsole } from "./support/console.js"

const flow = (id: number) => Scripted.tcpFlow({ id, sport: 41000 + id, dport: 80 })
const destroy = (f: Flow, packets = 6, bytes = 325): Flow => ({
  ...f,
  type: "DESTROY",
  state: "CLOSE",
  original: { ...f.original, packets, bytes },
  reply: { ...f.reply, packets: packets - 2, bytes: bytes - 108 }
})

const tempFile = (content = "") => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-conntrack-flowlog-"))
  const file = path.join(dir, "flows.jsonl")
  if (content !== "") fs.writeFileSync(file, content)
  return { file, dir }
}

/** A live walker over the scripted conntrack, in the current scope. */
const walkerOf = (script: Scripted.Script) =>
  FlowWalker.make({ restartDelay: "20 millis" }).pipe(Effect.provide(Scripted.layer(script)))

const readLines = (file: string) =>
  fs.existsSync(file)
    ? fs
        .readFileSync(file, "utf8")
        .split("\n")
        .filter((l) => l !== "")
    : []

const poll = <A>(what: string, check: () => A | undefined, ms = 5000) =>
  Effect.gen(function* () {
    const end = Date.now() + ms
    for (;;) {
      const a = check()
      if (a !== undefined) return a
      if (Date.now() > end) return yield* Effect.dieMessage(`timed out waiting for ${what}`)
      yield* Effect.sleep("10 millis")
    }
  })

describe("FlowLog", () => {
  it("toJson: the flow as it last was, with first and last seen as ISO times and no event type", () => {
    const line = FlowLog.toJson({
      flow: destroy(flow(1)),
      firstSeen: Date.UTC(2026, 10, 26, 9),
      lastSeen: 1_795_600_000_000
    })
    expect(JSON.parse(line)).toEqual({
      firstSeen: "2026-11-26T09:00:00.000Z",
      lastSeen: new Date(1_795_600_000_000).toISOString(),
      family: "ipv4",
      proto: "tcp",
      protonum: 6,
      state: "CLOSE",
      original: { src: "127.0.0.1", dst: "127.0.0.1", sport: 41001, dport: 80, packets: 6, bytes: 325 },
      reply: { src: "127.0.0.1", dst: "127.0.0.1", sport: 80, dport: 41001, packets: 4, bytes: 217 },
      id: 1
    })
    expect(line).not.toContain("\n")
  })

  it.scopedLive(
    "appends one JSON line per closed connection to the file, once each, with when it was first and last seen",
    () =>
      Effect.gen(function* () {
        const { file, dir } = tempFile('{"earlier":true}\n')
        const walker = yield* walkerOf({
          dump: [Scripted.dumpRun([flow(1), flow(2), flow(3)])],
          events: [Scripted.eventsRun([{ sleep: "1000 millis" }, destroy(flow(1)), destroy(flow(2), 10, 1000)])]
        })
        yield* walker.ready
        const scope = yield* Scope.make()
        yield* FlowLog.write(file, { interval: "50 millis" }).pipe(
          Effect.provideService(FlowWalker.FlowWalker, walker),
          Effect.provide(NodeContext.layer),
          Scope.extend(scope)
        )
        const lines = yield* poll("two records", () => (readLines(file).length >= 3 ? readLines(file) : undefined))
        yield* Effect.sleep("200 millis")
        yield* Scope.close(scope, Exit.void)
        expect(readLines(file)).toEqual(lines)
        expect(lines[0]).toBe('{"earlier":true}')
        const records = lines.slice(1).map((l) => JSON.parse(l))
        expect(records.map((r) => r.id).sort()).toEqual([1, 2])
        expect(records.map((r) => r.original.sport).sort()).toEqual([41001, 41002])
        for (const r of records) expect(Date.parse(r.lastSeen)).toBeGreaterThanOrEqual(Date.parse(r.firstSeen))
        fs.rmSync(dir, { recursive: true })
      })
  )

  it.scopedLive("records carry the DESTROY's packets and bytes (nf_conntrack_acct=1) and final state", () =>
    Effect.gen(function* () {
      const { file, dir } = tempFile('{"earlier":true}\n')
      const walker = yield* walkerOf({
        dump: [Scripted.dumpRun([flow(1), flow(2), flow(3)])],
        events: [Scripted.eventsRun([{ sleep: "1000 millis" }, destroy(flow(1)), destroy(flow(2), 10, 1000)])]
      })
      yield* walker.ready
      const scope = yield* Scope.make()
      yield* FlowLog.write(file, { interval: "50 millis" }).pipe(
        Effect.provideService(FlowWalker.FlowWalker, walker),
        Effect.provide(NodeContext.layer),
        Scope.extend(scope)
      )
      const lines = yield* poll("two records", () => (readLines(file).length >= 3 ? readLines(file) : undefined))
      yield* Effect.sleep("200 millis")
      yield* Scope.close(scope, Exit.void)
      expect(readLines(file)).toEqual(lines)
      expect(lines[0]).toBe('{"earlier":true}')
      const records = lines.slice(1).map((l) => JSON.parse(l))
      expect(records.map((r) => [r.id, r.state, r.original.packets, r.original.bytes]).sort()).toEqual([
        [1, "CLOSE", 6, 325],
        [2, "CLOSE", 10, 1000]
      ])
      for (const r of records) expect(Date.parse(r.lastSeen)).toBeGreaterThanOrEqual(Date.parse(r.firstSeen))
      fs.rmSync(dir, { recursive: true })
    })
  )

  it.scopedLive("flushes on stop: a connection closed since the last walk is written before the scope closes", () =>
    Effect.gen(function* () {
      const { file, dir } = tempFile()
      const walker = yield* walkerOf({
        dump: [Scripted.dumpRun([flow(1)])],
        events: [Scripted.eventsRun([{ sleep: "1000 millis" }, destroy(flow(1))])]
      })
      yield* walker.ready
      const scope = yield* Scope.make()
      yield* FlowLog.write(file, { interval: "1 hour" }).pipe(
        Effect.provideService(FlowWalker.FlowWalker, walker),
        Effect.provide(NodeContext.layer),
        Scope.extend(scope)
      )
      // Long enough for the death to reach the walker, far from the log's next walk.
      yield* Effect.sleep("1500 millis")
      expect(readLines(file)).toEqual([])
      yield* Scope.close(scope, Exit.void)
      expect(readLines(file).map((l) => JSON.parse(l).id)).toEqual([1])
      fs.rmSync(dir, { recursive: true })
    })
  )

  it.scopedLive("sees every death once, whatever else walks the walker", () =>
    Effect.gen(function* () {
      const walker = yield* walkerOf({
        dump: [Scripted.dumpRun([flow(1), flow(2), flow(3), flow(4)])],
        events: [
          Scripted.eventsRun([
            { sleep: "800 millis" },
            destroy(flow(1)),
            { sleep: "100 millis" },
            destroy(flow(2)),
            destroy(flow(3)),
            { sleep: "100 millis" },
            destroy(flow(4))
          ])
        ]
      })
      yield* walker.ready
      const stop = yield* Deferred.make<void>()
      const logged = yield* FlowLog.closed({ interval: "30 millis", until: Deferred.await(stop) }).pipe(
        Stream.runCollect,
        Effect.provideService(FlowWalker.FlowWalker, walker),
        Effect.fork
      )
      // Others walking meanwhile: the walker's own walk, and another reader.
      const other = yield* walker.reader
      const walking = yield* Effect.fork(
        Effect.forever(Effect.zipRight(Effect.zip(walker.walk, other.walk), Effect.sleep("7 millis")))
      )
      yield* Effect.sleep("1400 millis")
      yield* Fiber.interrupt(walking)
      yield* Deferred.succeed(stop, undefined)
      const records = Chunk.toReadonlyArray(yield* Fiber.join(logged))
      expect(records.map((r) => r.flow.id).sort()).toEqual([1, 2, 3, 4])
    })
  )

  it.scopedLive("writes to stdout with -", () =>
    Effect.gen(function* () {
      const recorded = recordingConsole()
      const walker = yield* walkerOf({
        dump: [Scripted.dumpRun([flow(7)])],
        events: [Scripted.eventsRun([{ sleep: "1000 millis" }, destroy(flow(7))])]
      })
      yield* walker.ready
      const scope = yield* Scope.make()
      yield* FlowLog.write("-", { interval: "20 millis" }).pipe(
        Effect.provideService(FlowWalker.FlowWalker, walker),
        Effect.provide(NodeContext.layer),
        Effect.withConsole(recorded.console),
        Scope.extend(scope)
      )
      yield* poll("a record on stdout", () => (recorded.stdout() !== "" ? true : undefined))
      yield* Scope.close(scope, Exit.void)
      const lines = recorded
        .stdout()
        .split("\n")
        .filter((l) => l !== "")
      expect(lines.map((l) => JSON.parse(l).id)).toEqual([7])
    })
  )

  it.scopedLive("fails with FlowLogFailed, naming the file, when it cannot be opened", () =>
    Effect.gen(function* () {
      const walker = yield* walkerOf({ dump: [Scripted.dumpRun([])] })
      const error = yield* FlowLog.write("/nonexistent-dir/flows.jsonl").pipe(
        Effect.provideService(FlowWalker.FlowWalker, walker),
        Effect.provide(NodeContext.layer),
        Effect.flip
      )
      expect(error._tag).toBe("FlowLogFailed")
      expect(error.message).toMatch(/^cannot write the flow log \/nonexistent-dir\/flows\.jsonl: .*ENOENT/)
    })
  )
})
