// What the kernel says of a child not seen to end: read from a /proc of our own making.
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { afterAll } from "vitest"
import { describeState, hasEnded, processState, stateOfStat } from "../src/internal/processState.js"

describe("stateOfStat", () => {
  it("reads the state after the command name, whatever the name holds", () => {
    expect(stateOfStat("4242 (conntrack) S 1 4242 4242 0 -1")).toBe("S")
    expect(stateOfStat("4242 (a) b) (c) Z 1 4242")).toBe("Z")
    expect(stateOfStat("4242 (x y) D 1")).toBe("D")
  })

  it("gives nothing for a line without a state", () => {
    expect(stateOfStat("")).toBeUndefined()
    expect(stateOfStat("4242 (conntrack")).toBeUndefined()
    expect(stateOfStat("4242 (conntrack)")).toBeUndefined()
    expect(stateOfStat("4242 (conntrack) 7 1")).toBeUndefined()
  })
})

describe("processState", () => {
  const proc = fs.mkdtempSync(path.join(os.tmpdir(), "effect-conntrack-procstate-"))
  afterAll(() => fs.rmSync(proc, { recursive: true, force: true }))
  const withStat = (pid: number, stat: string) => {
    fs.mkdirSync(path.join(proc, String(pid)), { recursive: true })
    fs.writeFileSync(path.join(proc, String(pid), "stat"), stat)
  }

  it.effect("a pid without an entry is gone: it has ended", () =>
    Effect.gen(function* () {
      const state = yield* processState(1, proc)
      expect(state).toStrictEqual({ _tag: "Gone" })
      expect(hasEnded(state)).toBe(true)
      expect(describeState(state)).toBe("gone")
    })
  )

  it.effect("a zombie has ended; a process in any other state has not", () =>
    Effect.gen(function* () {
      withStat(2, "2 (conntrack) Z 1 2 2 0 -1")
      withStat(3, "3 (conntrack) D 1 3 3 0 -1")
      withStat(4, "4 (conntrack) R 1 4 4 0 -1")
      expect(hasEnded(yield* processState(2, proc))).toBe(true)
      const stuck = yield* processState(3, proc)
      expect(hasEnded(stuck)).toBe(false)
      expect(describeState(stuck)).toBe("in state D")
      expect(hasEnded(yield* processState(4, proc))).toBe(false)
    })
  )

  it.effect("an entry that cannot be read is unknown, not ended (e.g. /proc mounted with hidepid)", () =>
    Effect.gen(function* () {
      fs.mkdirSync(path.join(proc, "5", "stat"), { recursive: true })
      withStat(6, "garbage")
      const unreadable = yield* processState(5, proc)
      expect(unreadable).toStrictEqual({ _tag: "Unknown", reason: "EISDIR" })
      expect(hasEnded(unreadable)).toBe(false)
      expect(describeState(unreadable)).toBe("state unknown: EISDIR")
      expect(yield* processState(6, proc)).toStrictEqual({ _tag: "Unknown", reason: "unreadable stat line" })
    })
  )
})
