// The heap a walker holds at 262,144 flows, measured in a process of its own (as a daemon runs it): run by
// bench/scale.ts with `--expose-gc` and the conntrack wrapper as argument; prints one JSON line.
import { startWalker } from "./live.js"
import { gc } from "./stats.js"

const binary = process.argv[2] as string
const entries = Number(process.argv[3])
gc()
const before = process.memoryUsage().heapUsed
const walker = await startWalker({ binary })
gc()
const heap = process.memoryUsage().heapUsed - before
const walked = (await walker.walk()).length
console.log(JSON.stringify({ bytesPerFlow: heap / entries, rss: process.memoryUsage().rss, walked }))
await walker.close()
