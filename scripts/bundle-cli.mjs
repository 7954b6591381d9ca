#!/usr/bin/env node
// Bundles the full command line (src/cli/Main.ts, with Effect and the other dependencies) into dist/cli/Main.js and
// its chunks, in place of what tsc emitted there. Loading Effect's, @effect/cli's and their dependencies' ~750 module
// files one by one cost the command line 0.9-1.9 s before it did anything; a bundle loads in about a third of that.
// The library (what `effect-conntrack` exports) is left as tsc emitted it: an application gets one copy of Effect,
// its own.
// What only `serve` loads (the HTTP server and the OpenTelemetry exporter, about two fifths of the bundle) is split
// into dist/cli/chunks/ and read when `serve` starts: `--version` (the same start as `dump` and `watch`) took 344
// against 384 ms (medians of 8) and 64 against 69 MB of RSS.
// It reads the sources, not tsc's output, so running it twice gives the same files.
import * as fs from "node:fs"
import * as path from "node:path"
import { build } from "esbuild"

const root = path.resolve(import.meta.dirname, "..")
const outdir = path.join(root, "dist", "cli")
fs.rmSync(path.join(outdir, "chunks"), { recursive: true, force: true })

await build({
  entryPoints: [path.join(root, "src", "cli", "Main.ts")],
  outdir,
  chunkNames: "chunks/[name]-[hash]",
  splitting: true,
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
fs.rmSync(path.join(outdir, "Main.js.map"), { force: true })
