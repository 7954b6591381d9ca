// `npm run bench`: every benchmark, each figure printed next to its baseline and target; a full run (as root, with
// conntrack, nftables and iproute2) also writes bench/RESULTS.md.
import * as child from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { unavailable } from "../test/kernel/netns.js"
import { captureBenchmark } from "./capture.js"
import { eventsBenchmark } from "./events.js"
import { loadBenchmark } from "./load.js"
import { parserBenchmark } from "./parser.js"
import { rememberedBenchmark } from "./remembered.js"
import { scaleBenchmark } from "./scale.js"
import { scrapeBenchmark } from "./scrape.js"
import { soakBenchmark } from "./soak.js"
import type { Row } from "./stats.js"
import { steadyBenchmark } from "./steady.js"

const lines = Number(process.env.BENCH_LINES ?? 1_000_000)
const runs = Number(process.env.BENCH_RUNS ?? 5)
const only = process.env.BENCH_ONLY?.split(",")
const wanted = (name: string) => only === undefined || only.includes(name)
const why = unavailable()
if (why !== undefined) console.log(`skipping the benchmarks on the real kernel (2, 3, 4, 6, and 5's baseline): ${why}`)
const kernel = why === undefined

const rows: Array<Row> = []
if (wanted("parser")) rows.push(...(await parserBenchmark(lines, runs)))
if (wanted("events")) rows.push(...(await eventsBenchmark(lines, runs, kernel)))
if (wanted("steady")) rows.push(...(await steadyBenchmark()))
if (wanted("remembered")) rows.push(...(await rememberedBenchmark(runs)))
if (wanted("capture") && kernel) rows.push(...(await captureBenchmark()))
if (wanted("scrape")) rows.push(...(await scrapeBenchmark(Math.min(runs, 3))))
if (wanted("load") && kernel) rows.push(...(await loadBenchmark()))
// Last: it fills a namespace with 262,144 entries (nf_conntrack_max is shared by every namespace).
if (wanted("scale") && kernel) rows.push(...(await scaleBenchmark(runs)))
// Ten minutes of churn: only when asked for (BENCH_ONLY=soak, or BENCH_SOAK=1 with the others).
if ((only?.includes("soak") || process.env.BENCH_SOAK === "1") && kernel) rows.push(...(await soakBenchmark()))

const table = [
  "| Benchmark | Figure | Baseline (same run) | Target | Met |",
  "|---|---|---|---|---|",
  ...rows.map((r) => `| ${r.benchmark} | ${r.figure} | ${r.baseline} | ${r.target} | ${r.met ? "yes" : "**no**"} |`)
].join("\n")
console.log(`\n${table}`)

if (only === undefined && kernel) {
  const version = (cmd: string, args: ReadonlyArray<string>) =>
    child.spawnSync(cmd, args, { encoding: "utf8" }).stdout.trim().split("\n")[0] ?? ""
  const file = path.join(import.meta.dirname, "..", "..", "bench", "RESULTS.md")
  fs.writeFileSync(
    file,
    [
      "# Benchmark results",
      "",
      `One full \`npm run bench\` run, ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC: Node ${process.version},`,
      `${version("conntrack", ["--version"])}, Linux ${os.release()}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? "?"}).`,
      `Medians of ${runs} runs where a benchmark repeats; every baseline was measured in the same run.`,
      "",
      table,
      ""
    ].join("\n")
  )
  console.log(`\nwritten to ${path.relative(process.cwd(), file)}`)
}
