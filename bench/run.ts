// `npm run bench`: every benchmark, figures printed next to their baselines.
import { parserBenchmark } from "./parser.js"

const lines = Number(process.env.BENCH_LINES ?? 1_000_000)
const runs = Number(process.env.BENCH_RUNS ?? 5)
await parserBenchmark(lines, runs)
