// Writes a file's lines to stdout at a steady rate, each line a write of its own, as conntrack -E writes its events
// under steady load: `node paced-writer.js FILE LINES_PER_SECOND`. Every millisecond it writes the lines due by then.
import * as fs from "node:fs"

const [file = "", rateText = "1000"] = process.argv.slice(2)
const rate = Number(rateText)
const lines = fs
  .readFileSync(file, "utf8")
  .split("\n")
  .filter((l) => l !== "")
  .map((l) => Buffer.from(`${l}\n`))
const start = performance.now()
let next = 0
const tick = () => {
  const due = Math.min(lines.length, Math.floor(((performance.now() - start) * rate) / 1000))
  for (; next < due; next++) fs.writeSync(1, lines[next] as Buffer)
  if (next < lines.length) setTimeout(tick, 1)
}
tick()
