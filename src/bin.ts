#!/usr/bin/env node
// A plain `parse FILE` starts without loading Effect (see cli/ParseFile.ts); everything else loads the full command
// line.
import { parseFile, recognize } from "./cli/ParseFile.js"

const plain = recognize(process.argv)
if (plain === undefined) await import("./cli/Main.js")
else process.exitCode = await parseFile(plain)
