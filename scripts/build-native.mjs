#!/usr/bin/env node
// Builds the conntrack event helper (native/conntrack-events.c) into dist/native/conntrack-events with the system C
// compiler and libnetfilter_conntrack. Run by `npm run build` and by npm's install hook. When the compiler or the
// headers are missing it prints one line saying what to install and exits 0: the walker then uses `conntrack -E`.
import * as child from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")
const source = path.join(root, "native", "conntrack-events.c")
const target = path.join(root, "dist", "native", "conntrack-events")
const fix = "apt-get install -y libnetfilter-conntrack-dev gcc pkg-config, then npm run build:native"

const skip = (why) => {
  console.log(`effect-conntrack: skipped the event helper (${why}): the walker will use conntrack -E; to build it: ${fix}`)
  process.exit(0)
}

if (process.platform !== "linux") {
  console.log("effect-conntrack: skipped the event helper (not Linux)")
  process.exit(0)
}
if (!fs.existsSync(source)) skip(`${path.relative(root, source)} is missing`)

const run = (command, args) => child.spawnSync(command, args, { encoding: "utf8" })
const cc = process.env.CC || "cc"
if (run(cc, ["--version"]).error !== undefined) skip(`no C compiler (${cc})`)

let flags = ["-lnetfilter_conntrack", "-lnfnetlink"]
const pkg = run("pkg-config", ["--cflags", "--libs", "libnetfilter_conntrack"])
if (pkg.status === 0) flags = pkg.stdout.trim().split(/\s+/).filter((f) => f !== "")
else if (pkg.error === undefined) skip("pkg-config does not know libnetfilter_conntrack")

fs.mkdirSync(path.dirname(target), { recursive: true })
const temporary = `${target}.${process.pid}.tmp`
const built = run(cc, ["-O2", "-Wall", "-o", temporary, source, ...flags])
if (built.status !== 0) {
  fs.rmSync(temporary, { force: true })
  const first = (built.stderr || built.error?.message || "").split("\n").find((l) => /error/i.test(l)) ?? "failed"
  skip(`${cc} failed: ${first.trim()}`)
}
fs.renameSync(temporary, target)
console.log(`effect-conntrack: built the event helper ${path.relative(root, target)}`)
