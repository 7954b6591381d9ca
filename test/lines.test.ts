import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as fc from "effect/FastCheck"
import * as Stream from "effect/Stream"
import { splitLines } from "../src/Lines.js"

const expected = (text: string) => {
  const lines = text.split(/\r?\n/)
  if (lines[lines.length - 1] === "") lines.pop()
  return lines
}

/** The bytes of `text` cut at the given offsets (which may fall inside a multi-byte character). */
const cut = (text: string, cuts: ReadonlyArray<number>) => {
  const bytes = new TextEncoder().encode(text)
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
  const chunks: Array<Uint8Array> = []
  let start = 0
  for (const c of [...at, bytes.length]) {
    chunks.push(bytes.subarray(start, c))
    start = c
  }
  return chunks
}

const linesOf = (chunks: ReadonlyArray<Uint8Array>) =>
  Effect.runSync(Stream.runCollect(splitLines(Stream.fromIterable(chunks)))).pipe(Chunk.toReadonlyArray)

describe("splitLines", () => {
  it("splits on \\n and \\r\\n, keeps empty lines and a last line without \\n", () => {
    expect(linesOf(cut("a\nb\r\n\nc", [3]))).toStrictEqual(["a", "b", "", "c"])
    expect(linesOf(cut("a\n", []))).toStrictEqual(["a"])
    expect(linesOf([])).toStrictEqual([])
  })

  it("gives the same lines however the bytes are chunked, multi-byte characters included", () => {
    const line = fc.stringOf(fc.oneof(fc.fullUnicode(), fc.constantFrom("=", " ", "é", "\r")), { maxLength: 40 })
    fc.assert(
      fc.property(
        fc.array(line, { maxLength: 8 }),
        fc.constantFrom("\n", "\r\n"),
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 12 }),
        (lines, eol, last, cuts) => {
          const text = lines.join(eol) + (last ? eol : "")
          expect(linesOf(cut(text, cuts))).toStrictEqual(expected(text))
        }
      )
    )
  })
})
