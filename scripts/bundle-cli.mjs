#!/usr/bin/env node
// Bundles the full command line (dist/cli/Main.js, as tsc emitted it, with Effect and the other dependencies) into
// that one file. Loading Effect's, @effect/cli's and their dependencies' ~750 module files one by one cost the
// command line 0.9-1.9 s before it did anything; one file loads in about a third of that. The library (what
// `effect-conntrack` exports) is left as tsc emitted it: an application gets one copy of Effect, its own.
import * as path from "node:path"
import { build } from "esbuild"

const root = path.resolve(import.meta.dirname, "..")
const main = path.join(root, "dist", "cli", "Main.js")

await build({
  entryPoints: [main],
  outfile: main,
  allowOverwrite: true,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: "linked",
  sourcesContent: false,
  logLevel: "warning",
  // The CommonJS dependencies (the OpenTelemetry exporter's) call require(); an ES module has none of its own.
  banner: { js: 'import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);' }
})
