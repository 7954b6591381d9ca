// The package as a user gets it: the work tree is copied (without node_modules or any build output), built, packed
// with `npm pack`, and the tarball installed into a scratch app beside the lowest effect and @effect/platform that
// our peer ranges allow. Installing needs npm and the registry, or npm's cache holding the packages (it runs with
// --prefer-offline); without them the suite is skipped with one line saying why, unless CI is set, which makes that a
// failure.
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

const root = path.join(import.meta.dirname, "..")
const manifest = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as {
  readonly name: string
  readonly version: string
  readonly bin: Record<string, string>
  readonly exports: Record<string, { readonly types: string; readonly default: string }>
  readonly peerDependencies: Record<string, string>
  readonly dependencies?: Record<string, string>
}
const required = process.env.CI !== undefined && process.env.CI !== "" && process.env.CI !== "false"
const tsc = path.join(root, "node_modules/typescript/bin/tsc")

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
  readonly timedOut: boolean
}

const run = (command: string, args: ReadonlyArray<string>, cwd: string, timeout = 120_000) =>
  new Promise<Run>((resolve, reject) =>
    execFile(command, args, { cwd, timeout, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      // A string code (ENOENT, ...) means the command could not start; a number is its exit code.
      if (typeof error?.code === "string") return reject(error)
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1
      resolve({ code, stdout, stderr, timedOut: error?.killed === true })
    })
  )

const npmFlags = ["--no-audit", "--no-fund", "--loglevel=error", "--fetch-retries=1"]
/** npm's words for "the registry cannot be reached and the cache does not hold what is needed". */
const unreachable = /\b(ENOTCACHED|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH)\b/

/** The lowest version a range like `^3.22.2` or `>=3.22.2 <4` allows. */
const lowest = (range: string): string => {
  const match = /^(?:\^|~|>=\s*)?(\d+\.\d+\.\d+)(?:\s|$)/.exec(range.trim())
  if (match?.[1] === undefined) throw new Error(`cannot tell the lowest version of the range "${range}"`)
  return match[1]
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-conntrack-packaging-"))
const app = path.join(dir, "app")
const global = path.join(dir, "global")
let why: string | undefined
let tarball: { readonly file: string; readonly files: ReadonlyArray<string> } | undefined

/** Copies the work tree, builds it as `npm pack` would (prepack) and packs it; returns the tarball and what it holds. */
const pack = async () => {
  const stage = path.join(dir, "stage")
  const skipped = new Set(["node_modules", ".git", "dist", "dist-bench", "scratch", "dist-scratch"])
  const copied = (source: string) => !skipped.has(path.relative(root, source)) && !source.endsWith(".log")
  fs.cpSync(root, stage, { recursive: true, filter: copied })
  fs.symlinkSync(path.join(root, "node_modules"), path.join(stage, "node_modules"), "dir")
  // What `npm pack` runs first: package.json's prepack (tsc, then the command line bundled: Main.js and its chunks).
  // It is run here, then packing skips scripts, so that the test builds exactly what the script says.
  const build = await run("npm", ["run", "prepack", "--silent"], stage)
  if (build.code !== 0) throw new Error(`the build (npm run prepack) failed:\n${build.stdout}${build.stderr}`)
  const packed = await run("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", dir, ...npmFlags], stage)
  if (packed.code !== 0) throw new Error(`npm pack failed:\n${packed.stderr}`)
  const [result] = JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>
  if (result === undefined) throw new Error(`npm pack printed no result:\n${packed.stdout}`)
  return { file: path.join(dir, result.filename), files: result.files.map((f) => f.path) }
}

beforeAll(async () => {
  try {
    await run("npm", ["--version"], dir)
  } catch (error) {
    why = `npm cannot run (${(error as Error).message})`
  }
  if (why === undefined) await install()
  if (why !== undefined && !required) console.warn(`skip: packaging: ${why}`)
}, 240_000)

/** Packs the tarball and installs it into the scratch app; sets `why` when the registry and cache cannot serve it. */
const install = async () => {
  tarball = await pack()
  fs.mkdirSync(path.join(app, "src"), { recursive: true })
  const dependencies = {
    effect: lowest(manifest.peerDependencies.effect ?? ""),
    "@effect/platform": lowest(manifest.peerDependencies["@effect/platform"] ?? ""),
    [manifest.name]: `file:${tarball.file}`
  }
  fs.writeFileSync(
    path.join(app, "package.json"),
    JSON.stringify({ name: "scratch-app", private: true, type: "module", dependencies }, null, 2)
  )
  // The app's install and a global one (what `npm i -g` gives a command-line user) run side by side.
  const flags = ["--prefer-offline", "--ignore-scripts", ...npmFlags]
  const [installed, globally] = await Promise.all([
    run("npm", ["install", ...flags], app),
    run("npm", ["install", "--global", "--prefix", global, ...flags, tarball.file], dir)
  ])
  for (const [what, result] of [
    ["into the app", installed],
    ["globally", globally]
  ] as const) {
    if (result.code === 0 || why !== undefined) continue
    // Offline with a cold cache, npm can report a misleading ERESOLVE ("Found: @effect/platform@undefined"): ask it
    // for one package's metadata to tell an unreachable registry from a real failure.
    const probe = await run("npm", ["view", `effect@${dependencies.effect}`, "version", "--prefer-offline"], app)
    const code = unreachable.exec(result.stderr) ?? unreachable.exec(probe.stderr)
    if (code === null) throw new Error(`npm install of the tarball ${what} failed:\n${result.stderr}`)
    why = `npm could not fetch the packages (${code[1]}: no registry, and npm's cache does not hold them)`
  }
}

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }), 60_000)

/** Skips with one line saying why (a failure under CI) when npm or the registry/cache is unreachable. */
const needsInstall = (skip: (note: string) => never) => {
  if (why === undefined) return
  if (required) throw new Error(`the packaging test is required under CI but cannot run: ${why}`)
  skip(why)
}

describe("the packed tarball", () => {
  it("holds the built library with types for every export, its bin and changelog, and no tests or benchmarks", ({
    skip
  }) => {
    if (tarball === undefined) needsInstall(skip) // packing needs npm, not the registry
    const files = tarball?.files ?? []
    const stray = files.filter(
      (f) => /^(test|fixtures|bench|dist-bench|examples|scratch|\.ci)\//.test(f) || /\.test\.|RESULTS\.md$/.test(f)
    )
    expect(stray).toEqual([])
    for (const [subpath, entry] of Object.entries(manifest.exports)) {
      expect(files, `${subpath} types`).toContain(path.normalize(entry.types))
      expect(files, `${subpath} code`).toContain(path.normalize(entry.default))
    }
    // The command line's bundle is split into chunks (dist/cli/chunks/) that only it imports: they are not modules.
    const withoutTypes = files
      .filter((f) => f.startsWith("dist/") && f.endsWith(".js") && !f.startsWith("dist/cli/chunks/"))
      .filter((f) => !files.includes(f.replace(/\.js$/, ".d.ts")))
    expect(withoutTypes).toEqual([])
    for (const bin of Object.values(manifest.bin)) expect(files).toContain(path.normalize(bin))
    expect(files).toEqual(expect.arrayContaining(["package.json", "README.md", "CHANGELOG.md"]))
  })
})

describe("the packed command line", () => {
  it("holds every chunk its bundle imports, serve's too (read only when serve starts)", ({ skip }) => {
    if (tarball === undefined) needsInstall(skip)
    const files = new Set(tarball?.files ?? [])
    const stage = path.join(dir, "stage")
    const pending = ["dist/cli/Main.js"]
    const seen = new Set<string>()
    for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
      if (seen.has(file)) continue
      seen.add(file)
      expect(files.has(file), `${file} in the tarball`).toBe(true)
      const code = fs.readFileSync(path.join(stage, file), "utf8")
      for (const m of code.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*"(\.\.?\/[^"]+)"/g)) {
        pending.push(path.posix.join(path.posix.dirname(file), m[1] as string))
      }
    }
    expect([...seen].filter((f) => /^dist\/cli\/chunks\/ServeRun-.*\.js$/.test(f))).toHaveLength(1)
  })
})

describe("installed into an app that pins the lowest effect and @effect/platform the peer ranges allow", () => {
  it("leaves exactly one copy of effect in the app, with every peer satisfied", async ({ skip }) => {
    needsInstall(skip)
    const ls = await run("npm", ["ls", "effect", "--all", "--json", "--long"], app)
    const tree = JSON.parse(ls.stdout) as Node
    interface Node {
      readonly version?: string
      readonly path?: string
      readonly problems?: ReadonlyArray<string>
      readonly dependencies?: Record<string, Node>
    }
    const copies = new Set<string>()
    const walk = (node: Node) => {
      for (const [name, child] of Object.entries(node.dependencies ?? {})) {
        if (name === "effect") copies.add(`${path.relative(app, child.path ?? "?")}@${child.version}`)
        walk(child)
      }
    }
    walk(tree)
    expect([...copies]).toEqual([`node_modules/effect@${lowest(manifest.peerDependencies.effect ?? "")}`])
    expect(tree.problems ?? []).toEqual([])
    expect(ls.code).toBe(0)
  }, 60_000)

  it("type-checks an app importing FlowWalker, Parser and effect-conntrack/testing (strict, NodeNext)", async ({
    skip
  }) => {
    needsInstall(skip)
    const checked = await typecheck()
    expect(checked.stdout + checked.stderr).toBe("")
    expect(checked.code).toBe(0)
  }, 120_000)

  it("records the walker's metrics in the app's own registry, and the app exits when done", async ({ skip }) => {
    needsInstall(skip)
    await typecheck() // emits dist/app.js even when it finds type errors (they fail the test above)
    expect(fs.existsSync(path.join(app, "dist/app.js"))).toBe(true)
    const ran = await run(process.execPath, ["dist/app.js"], app, 30_000)
    expect(ran.timedOut, "the app did not exit by itself").toBe(false)
    const lines = ran.stdout.trimEnd().split("\n")
    const result = lines.find((line) => line.startsWith("{"))
    expect(result, `the app printed no result:\n${ran.stdout.slice(-3000)}${ran.stderr.slice(-3000)}`).toBeDefined()
    expect(JSON.parse(result ?? "")).toEqual({ parsed: true, walked: 2, events: 1 })
    expect({ logs: lines.filter((line) => line !== result), stderr: ran.stderr }).toEqual({ logs: [], stderr: "" })
    expect(ran.code).toBe(0)
  }, 120_000)

  it("runs its bin: effect-conntrack parse --count", async ({ skip }) => {
    needsInstall(skip)
    expect(await parseCount(path.join(app, "node_modules/.bin"))).toEqual(counted)
  }, 60_000)

  it("runs its full command line, bundled: effect-conntrack --version", async ({ skip }) => {
    needsInstall(skip)
    expect(await fullCommandLine(path.join(app, "node_modules/.bin"))).toEqual(versioned)
  }, 60_000)
})

let typechecked: Promise<Run> | undefined
/** Copies test/packaging/app.ts into the app and type-checks (and emits) it there, once. */
const typecheck = () => {
  typechecked ??= (async () => {
    fs.copyFileSync(path.join(import.meta.dirname, "packaging/app.ts"), path.join(app, "src/app.ts"))
    fs.writeFileSync(
      path.join(app, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          // The DOM library stands in for @types/node: Effect's own types name AbortSignal, URL and ReadableStream.
          lib: ["ES2022", "DOM"],
          types: [],
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          exactOptionalPropertyTypes: true,
          // Our declaration files are checked too, not only the app's use of them.
          skipLibCheck: false,
          rootDir: "src",
          outDir: "dist"
        },
        include: ["src"]
      })
    )
    return run(process.execPath, [tsc, "-p", "."], app)
  })()
  return typechecked
}

describe("installed globally (npm i -g), with no peer installed by hand", () => {
  it("runs its bin: effect-conntrack parse --count", async ({ skip }) => {
    needsInstall(skip)
    expect(await parseCount(path.join(global, "bin"))).toEqual(counted)
  }, 60_000)

  it("runs its full command line, bundled: effect-conntrack --version", async ({ skip }) => {
    needsInstall(skip)
    expect(await fullCommandLine(path.join(global, "bin"))).toEqual(versioned)
  }, 60_000)
})

const versioned = { version: manifest.version, stderr: "", code: 0, bundled: true }
/** Runs `effect-conntrack --version` (the full command line) from this bin directory; whether it ran the bundle. */
const fullCommandLine = async (bins: string) => {
  const bin = fs.realpathSync(path.join(bins, Object.keys(manifest.bin)[0] ?? ""))
  const main = fs.readFileSync(path.join(path.dirname(bin), "cli", "Main.js"), "utf8")
  const ran = await run(bin, ["--version"], dir, 30_000)
  // tsc's Main.js imports the command line's modules; the bundle holds them (and Effect) in itself and its chunks.
  return { version: ran.stdout.trim(), stderr: ran.stderr, code: ran.code, bundled: !/from "\.\.\/Cli\.js"/.test(main) }
}

const counted = { stdout: "parsed 2, failed 0\n", stderr: "", code: 0 }
/** Runs `effect-conntrack parse --format dump --count` from this bin directory on two dump lines. */
const parseCount = async (bins: string) => {
  const file = path.join(dir, "flows.txt")
  fs.writeFileSync(
    file,
    [
      "tcp      6 431999 ESTABLISHED src=127.0.0.1 dst=127.0.0.1 sport=37838 dport=8084 src=127.0.0.1 dst=127.0.0.1 sport=8084 dport=37838 [ASSURED] mark=0 use=1 id=1983568462",
      "udp      17 29 src=::1 dst=::1 sport=48619 dport=9003 src=::1 dst=::1 sport=9003 dport=48619 mark=0 use=1 id=3035404700",
      ""
    ].join("\n")
  )
  const ran = await run(
    path.join(bins, Object.keys(manifest.bin)[0] ?? ""),
    ["parse", "--format", "dump", "--count", file],
    dir,
    30_000
  )
  return { stdout: ran.stdout, stderr: ran.stderr, code: ran.code }
}

describe("README's Install section", () => {
  it("states the supported ranges of package.json", () => {
    const readme = fs.readFileSync(path.join(root, "README.md"), "utf8")
    const section = /^## Install\n([\s\S]*?)^## /m.exec(readme)?.[1] ?? ""
    const ranges = {
      effect: manifest.peerDependencies.effect,
      "@effect/platform": manifest.peerDependencies["@effect/platform"],
      "@effect/platform-node": manifest.dependencies?.["@effect/platform-node"]
    }
    for (const [name, range] of Object.entries(ranges)) expect(section).toContain(`\`${name}\` \`${range}\``)
  })
})
