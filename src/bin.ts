#!/usr/bin/env node
// A plain `parse FILE` and a plain `dump --count` start without loading Effect (see cli/ParseFile.ts and
// cli/DumpCount.ts); everything else, and a count the fast start hands back, loads the full command line.
import { dumpCount, recognize as recognizeDumpCount } from "./cli/DumpCount.js"
import { parseFile, recognize } from "./cli/ParseFile.js"

const plain = recognize(process.argv)
const count = plain === undefined ? recognizeDumpCount(process.argv, process.env) : undefined
const code = plain !== undefined ? await parseFile(plain) : count !== undefined ? await dumpCount(count) : undefined
if (code === undefined) await import("./cli/Main.js")
else process.exitCode = code
