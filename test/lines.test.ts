import { describe, expect, it } from "@effect/vitest"
import * as fc from "effect/FastCheck"
import { MAX_LINE_BYTES, makeLineReader } from "../src/Lines.js"

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

/** The lines the reader finds, decoded; a line that was too long as `too long: N`. */
const linesOf = (chunks: ReadonlyArray<Uint8Array>, max?: number) => {
  const lines: Array<string> = []
  const reader = makeLineReader(
    {
      line: (b, start, end) => lines.push(b.toString("utf8", start, end)),
      tooLong: (head, length) => lines.push(`too long: ${length} (${head.length} kept)`)
    },
    max
  )
  for (const chunk of chunks) reader.push(chunk)
  reader.end()
  return lines
}

describe("makeLineReader", () => {
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

describe("lines longer than conntrack prints", () => {
  it("are cut off while reading, reported once with their length, and the next line is read", () => {
    const long = "x".repeat(MAX_LINE_BYTES + 1)
    const fits = "y".repeat(MAX_LINE_BYTES)
    const text = `a\n${long}\n${fits}\r\n${long}\r\nb\n${long}`
    const expected = [
      "a",
      `too long: ${MAX_LINE_BYTES + 1} (${MAX_LINE_BYTES} kept)`,
      fits,
      `too long: ${MAX_LINE_BYTES + 1} (${MAX_LINE_BYTES} kept)`,
      "b",
      `too long: ${MAX_LINE_BYTES + 1} (${MAX_LINE_BYTES} kept)`
    ]
    expect(linesOf(cut(text, []))).toStrictEqual(expected)
    // However the bytes are chunked.
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 20 }), (cuts) => {
        expect(linesOf(cut(text, cuts))).toStrictEqual(expected)
      })
    )
  })

  it("honours a smaller limit, a line of exactly the limit fits", () => {
    expect(linesOf(cut("abcd\nabcde\nabc\r\nabcd\r\n", [2, 7, 9]), 4)).toStrictEqual([
      "abcd",
      "too long: 5 (4 kept)",
      "abc",
      "abcd"
    ])
  })

  it("a 20 MB line without a newline is not gathered: memory stays bounded", () => {
    const chunk = new Uint8Array(1 << 16).fill(120)
    const lines: Array<string> = []
    const reader = makeLineReader({
      line: (b, start, end) => lines.push(b.toString("utf8", start, end)),
      tooLong: (head, length) => lines.push(`too long: ${length} (${head.length} kept)`)
    })
    const before = process.memoryUsage()
    for (let k = 0; k < 320; k++) reader.push(chunk)
    const after = process.memoryUsage()
    const grown = after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers)
    expect(grown).toBeLessThan(8 << 20)
    reader.push(new TextEncoder().encode("\nnext\n"))
    reader.end()
    expect(lines).toStrictEqual([`too long: ${320 << 16} (${MAX_LINE_BYTES} kept)`, "next"])
  })
})
