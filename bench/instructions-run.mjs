// Run by bench/instructions.sh under valgrind: `corpus DIR LINES` writes the rich corpora; `DIST FILE FORMAT` parses
// FILE with DIST's byte parser in 1 MiB chunks, not compact (as `parse` reads; the walker reads compact), and fails
// unless every line is a flow.
import * as fs from "node:fs"
import * as path from "node:path"

const [what, second, third] = process.argv.slice(2)
if (what === "corpus") {
  const { writeCorpus } = await import(new URL("../dist-bench/bench/corpus.js", import.meta.url).href)
  for (const format of ["dump", "events"]) writeCorpus(path.join(second, `${format}.txt`), format, Number(third))
  fs.writeFileSync(path.join(second, "empty.txt"), "")
} else {
  const { makeDecoder } = await import(path.resolve(what, "Parser.js"))
  const data = fs.readFileSync(second)
  let parsed = 0
  let failed = 0
  const decoder = makeDecoder(third, { flow: () => parsed++, error: () => failed++ }, {})
  for (let at = 0; at < data.length; at += 1 << 20) decoder.push(data.subarray(at, at + (1 << 20)))
  decoder.end()
  if (failed > 0) throw new Error(`${failed} lines of ${second} failed to parse`)
  console.log(`parsed ${parsed}`)
}
