// `npm run bench`: every benchmark, figures printed next to their baselines.
import { captureBenchmark } from "./capture.js"
import { eventsBenchmark } from "./events.js"
import { parserBenchmark } from "./parser.js"
import { scaleBenchmark } from "./scale.js"

const lines = Number(process.env.BENCH_LINES ?? 1_000_000)
const runs = Number(process.env.BENCH_RUNS ?? 5)
const only = process.env.BENCH_ONLY?.split(",")
const wanted = (name: string) => only === undefined || only.includes(name)

if (wanted("parser")) await parserBenchmark(lines, runs)
if (wanted("events")) await eventsBenchmark(lines, runs, true)
if (wanted("capture")) await captureBenchmark()
if (wanted("scale")) await scaleBenchmark(runs)
