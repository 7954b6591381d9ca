#!/usr/bin/env node
// Bundles the full command line (src/cli/Main.ts, with Effect and the other dependencies) into dist/cli/Main.js, in
// place of what tsc emitted there. Loading Effect's, @effect/cli's and their dependencies' ~750 module files one by
// one cost the command line 0.9-1.9 s before it did anything; one file loads in about a third of that. The library
// (what `effect-conntrack` exports) is left as tsc emitted it: an application gets one copy of Effect, its own.
// It reads the sources, not tsc's output, so running it twice gives the same file.
import * as fs from "node:fs"
import * as path from "node:path"
import { build } from "esbuild"

const root = path.resolve(import.meta.dirname, "..")
const outfile = path.join(root, "dist", "cli", "Main.js")

await build({
  entryPoints: [path.join(root, "src", "cli", "Main.ts")],
  outfile,
  allowOverwrite: true,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  logLevel: "warning",
  // The CommonJS dependencies (the OpenTelemetry exporter's) call require(); an ES module has none of its own.
  banner: { js: 'import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);' }
})
// tsc's source map described the file this one replaced. The bundle has none: its frames would point into the
// dependencies' sources, which an installed copy does not hold.
fs.rmSync(`${outfile}.map`, { force: true })
