// conntrack's stdout to flows (src/internal/stdoutFlows.ts): in what chunks the flows are handed on, whatever the
// reads, and what is handed on before a failure.
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"
import { formatDumpLine, formatEventLine } from "../src/Format.js"
import { DUMP_CHUNK, stdoutFlows } from "../src/internal/stdoutFlows.js"
import * as Scripted from "../src/testing.js"

const bytes = (text: string) => new TextEncoder().encode(text)
const flow = (k: number) => Scripted.tcpFlow({ id: k + 1, sport: 1024 + (k % 60000), dport: 80 })
const dumpLines = (count: number) => Array.from({ length: count }, (_, k) => `${formatDumpLine(flow(k))}\n`)

/**
 * The chunks `stdoutFlows` hands on for these reads (one read each), as sizes and ids, how it ended, and in what order
 * the chunks and the ending's `after` came. A failure to read is handed on as `failed: ...`.
 */
const handedOn = <E>(format: "dump" | "events", reads: Stream.Stream<Uint8Array, E>) =>
  Effect.gen(function* () {
    const sizes: Array<number> = []
    const ids: Array<number | undefined> = []
    const order: Array<string> = []
    const exit = yield* reads.pipe(
      stdoutFlows(format, "conntrack", {
        failed: (error: E) => `failed: ${String(error)}`,
        after: Effect.sync(() => order.push("after"))
      }),
      Stream.runForEachChunk((chunk) =>
        Effect.sync(() => {
          sizes.push(chunk.length)
          order.push(`${chunk.length} flows`)
          for (const f of Chunk.toReadonlyArray(chunk)) ids.push(f.id)
        })
      ),
      Effect.exit
    )
    return { sizes, ids, exit, order }
  })

/** One read per string (as conntrack -L's 4 KiB writes arrive when the reader keeps up). */
const readsOf = (texts: ReadonlyArray<string>) => Stream.fromIterable(texts.map(bytes)).pipe(Stream.rechunk(1))

describe("stdoutFlows", () => {
  it.effect("hands a dump read a line at a time on in chunks of DUMP_CHUNK flows, the rest at its end, in order", () =>
    Effect.gen(function* () {
      const count = 2 * DUMP_CHUNK + 100
      const { sizes, ids, exit, order } = yield* handedOn("dump", readsOf(dumpLines(count)))
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(sizes).toStrictEqual([DUMP_CHUNK, DUMP_CHUNK, 100])
      // The ending's `after` once stdout is done, after the last flows.
      expect(order).toStrictEqual([`${DUMP_CHUNK} flows`, `${DUMP_CHUNK} flows`, "100 flows", "after"])
      expect(ids).toStrictEqual(Array.from({ length: count }, (_, k) => k + 1))
    })
  )

  it.effect("hands events on at each read that holds a whole line, and nothing for a read that holds none", () =>
    Effect.gen(function* () {
      const [first, second] = [
        formatEventLine({ ...flow(0), type: "NEW" }),
        formatEventLine({ ...flow(1), type: "NEW" })
      ]
      const half = Math.floor(second.length / 2)
      const reads = [`${first}\n`, second.slice(0, half), `${second.slice(half)}\n`]
      const { sizes, ids } = yield* handedOn("events", readsOf(reads))
      expect(sizes).toStrictEqual([1, 1])
      expect(ids).toStrictEqual([1, 2])
    })
  )

  it.effect("hands on the flows read before stdout fails, then fails with its error as `failed` makes it", () =>
    Effect.gen(function* () {
      const reads = readsOf(dumpLines(100)).pipe(Stream.concat(Stream.fail("stdout broke")))
      const { ids, exit, order } = yield* handedOn("dump", reads)
      expect(ids).toStrictEqual(Array.from({ length: 100 }, (_, k) => k + 1))
      expect(exit).toStrictEqual(Exit.fail("failed: stdout broke"))
      // No `after`: stdout did not end.
      expect(order).toStrictEqual(["100 flows"])
    })
  )
})
