import { describe, expect, it } from "@effect/vitest"
import * as fc from "effect/FastCheck"
import * as FlowIndex from "../src/internal/FlowIndex.js"

const contents = <V>(index: FlowIndex.FlowIndex<V>) => {
  const map = new Map<number, V>()
  FlowIndex.forEach(index, (value, key) => map.set(key, value))
  return map
}

// A batch: sets and removals over a key space wide enough to grow tables of thousands of keys.
const batch = fc.array(
  fc.oneof(
    { weight: 3, arbitrary: fc.tuple(fc.constant("set" as const), fc.nat(20_000), fc.nat()) },
    { weight: 1, arbitrary: fc.tuple(fc.constant("remove" as const), fc.nat(20_000), fc.constant(0)) },
    // A replace given the value `get` returned (the fold's path): -1 removes.
    { weight: 2, arbitrary: fc.tuple(fc.constant("replace" as const), fc.nat(20_000), fc.integer({ min: -1 })) }
  ),
  { maxLength: 1500, size: "max" }
)

describe("FlowIndex", () => {
  it("behaves as a map through batches of any size, and never changes an index it returned", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(batch, fc.nat(), fc.boolean()), { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (batches, lookbacks) => {
          let index = FlowIndex.empty<number>()
          const model = new Map<number, number>()
          const history: Array<[FlowIndex.FlowIndex<number>, Map<number, number>]> = [[index, new Map()]]
          for (const [ops, back, branch] of batches) {
            // Sometimes a batch starts from an older version (the newest is then read again afterwards).
            const from = branch ? (history[back % history.length] as (typeof history)[number]) : undefined
            const start = from?.[0] ?? index
            const startModel = new Map(from?.[1] ?? model)
            const editor = FlowIndex.edit(start, ops.length)
            for (const [op, key, value] of ops) {
              if (op === "set") {
                editor.set(key, value)
                startModel.set(key, value)
              } else if (op === "replace") {
                editor.replace(key, editor.get(key), value === -1 ? undefined : value)
                if (value === -1) startModel.delete(key)
                else startModel.set(key, value)
              } else {
                editor.remove(key)
                startModel.delete(key)
              }
              expect(editor.get(key)).toBe(startModel.get(key))
            }
            const made = editor.done()
            expect(made.size).toBe(startModel.size)
            expect([...FlowIndex.values(made)].sort()).toStrictEqual([...startModel.values()].sort())
            for (const key of [0, 1, 19_999, ...ops.map((o) => o[1])])
              expect(FlowIndex.get(made, key)).toBe(startModel.get(key))
            history.push([made, startModel])
            if (!branch) {
              index = made
              model.clear()
              for (const [k, v] of startModel) model.set(k, v)
            }
            // Reading an older version, then the newest, in any order.
            for (const k of lookbacks) {
              const [old, snapshot] = history[k % history.length] as (typeof history)[number]
              expect(contents(old)).toStrictEqual(snapshot)
            }
          }
          for (const [old, snapshot] of history) expect(contents(old)).toStrictEqual(snapshot)
          expect(contents(index)).toStrictEqual(model)
        }
      ),
      { numRuns: 30 }
    )
  })

  it("an owned batch keeps no undo log: the version it edited is spent (reading it throws), the new one is right", () => {
    const zero = FlowIndex.empty<number>()
    const e = FlowIndex.edit(zero, 2)
    e.set(1, 1)
    e.set(2, 2)
    const first = e.done()
    const owned = FlowIndex.edit(first, 3, true)
    owned.set(3, 3)
    owned.set(4, 4)
    owned.remove(1)
    expect(owned.get(1)).toBeUndefined()
    const next = owned.done()
    const nextContents = new Map([
      [2, 2],
      [3, 3],
      [4, 4]
    ])
    expect(contents(next)).toStrictEqual(nextContents)
    expect(next.size).toBe(3)
    expect(() => FlowIndex.get(first, 2)).toThrow("a flow index version was read after its owner edited it")
    // An older version reaches the newest through the spent one: it is spent too.
    expect(() => contents(zero)).toThrow("read after its owner edited it")
    // An owned batch that changes nothing leaves the version as it was.
    const none = FlowIndex.edit(next, 1, true)
    none.replace(2, 2, 2)
    expect(none.done()).toBe(next)
    expect(FlowIndex.get(next, 3)).toBe(3)
    // A batch that rewrites the table copies it, owned or not: the version it started from stays readable.
    const rewrite = FlowIndex.edit(next, Number.POSITIVE_INFINITY, true)
    rewrite.set(5, 5)
    const after = rewrite.done()
    expect(contents(next)).toStrictEqual(nextContents)
    expect(FlowIndex.get(after, 5)).toBe(5)
  })

  it("copies the map for a batch that rewrites the table, and leaves the version it started from readable", () => {
    const editor = FlowIndex.edit(FlowIndex.empty<number>(), 100_000)
    for (let k = 0; k < 100_000; k++) editor.set(k, k)
    const index = editor.done()
    const rewrite = FlowIndex.edit(index, Number.POSITIVE_INFINITY)
    rewrite.remove(5)
    rewrite.set(200_000, 1)
    // Read while the rewrite is open (a resync stays open while walks read the table).
    expect(FlowIndex.get(index, 5)).toBe(5)
    expect(FlowIndex.get(index, 200_000)).toBeUndefined()
    const next = rewrite.done()
    expect(FlowIndex.get(next, 5)).toBeUndefined()
    expect(FlowIndex.get(next, 200_000)).toBe(1)
    expect(next.size).toBe(100_000)
    expect(index.size).toBe(100_000)
  })

  it("keeps every entry right through 100,000 sets and removes of random 32-bit keys, in batches", () => {
    let seed = 1
    const next = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
      return seed
    }
    let index = FlowIndex.empty<number>()
    const model = new Map<number, number>()
    const keys: Array<number> = []
    for (let batch = 0; batch < 50; batch++) {
      const editor = FlowIndex.edit(index, 1)
      for (let k = 0; k < 2000; k++) {
        if (keys.length > 0 && next() % 3 === 0) {
          const key = keys.splice(next() % keys.length, 1)[0] as number
          editor.remove(key)
          model.delete(key)
        } else {
          const key = next()
          keys.push(key)
          editor.set(key, k)
          model.set(key, k)
        }
      }
      index = editor.done()
    }
    expect(index.size).toBe(model.size)
    for (const [key, value] of model) expect(FlowIndex.get(index, key)).toBe(value)
  })
})
