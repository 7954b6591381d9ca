import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import { parseLine } from "../src/Parser.js"

// Every line conntrack printed in fixtures/recorded/ (see fixtures/record.sh) against its golden flow beside it.
// UPDATE_GOLDEN=1 rewrites the golden files from the parser: review the diff before committing it.
const dir = path.join(import.meta.dirname, "..", "fixtures", "recorded")
const captures = fs.readdirSync(dir).filter((f) => f.endsWith(".txt"))

const resultOf = (line: string, format: "dump" | "events") =>
  Either.match(parseLine(line, format), { onLeft: (e) => ({ error: e.reason }), onRight: (flow) => flow })

describe("golden: real conntrack output", () => {
  it("has captures of both formats", () => {
    expect(captures.filter((f) => f.startsWith("dump-")).length).toBeGreaterThan(0)
    expect(captures.filter((f) => f.startsWith("events-")).length).toBeGreaterThan(0)
  })

  for (const capture of captures) {
    it(capture, () => {
      const format = capture.startsWith("events-") ? "events" : "dump"
      const lines = fs
        .readFileSync(path.join(dir, capture), "utf8")
        .split("\n")
        .filter((l) => l !== "")
      const actual = lines.map((line) => resultOf(line, format))
      const goldenPath = path.join(dir, capture.replace(/\.txt$/, ".expected.jsonl"))
      if (process.env.UPDATE_GOLDEN === "1") {
        fs.writeFileSync(goldenPath, actual.map((r) => JSON.stringify(r)).join("\n") + "\n")
      }
      const golden = fs
        .readFileSync(goldenPath, "utf8")
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l))
      expect(lines.length).toBeGreaterThan(0)
      expect(actual).toStrictEqual(golden)
    })
  }
})
