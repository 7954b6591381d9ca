/**
 * `parse --format F [--count] [FILE]` without Effect: the fast start of the `parse` command. Loading the full command
 * line (Effect, its platform and the command line library, bundled by `scripts/bundle-cli.mjs`) costs a whole process
 * about 0.45 s here; this path, which loads only the byte parser, about 0.17 s. It prints exactly what `ParseCommand`
 * prints (and `Main` for standard input that cannot be read) and ends with the same exit codes. Any other shape of the
 * command line (`--help`, a bad flag, a repeated one, a missing or unreadable file) is left to the full command line
 * (`recognize` returns undefined), so its messages stay one.
 *
 * @internal
 */
import * as fs from "node:fs"
import { makeLineDecoder } from "../internal/decode.js"
import { endLikeMain } from "./FastStart.js"

/** A plain `parse` of a readable regular file, or of standard input (`file` undefined). */
export interface ParseFile {
  readonly events: boolean
  readonly count: boolean
  readonly file: string | undefined
}

/** The plain `parse` this process was asked for (`process.argv`), if it is one. */
export const recognize = (argv: ReadonlyArray<string>): ParseFile | undefined => {
  if (argv[2] !== "parse") return undefined
  let format: string | undefined
  let count = false
  let file: string | undefined
  for (let k = 3; k < argv.length; k++) {
    const arg = argv[k] as string
    if (arg === "--format" && format === undefined && k + 1 < argv.length) format = argv[++k]
    else if (arg === "--count" && !count) count = true
    else if (file === undefined && arg !== "" && !arg.startsWith("-")) file = arg
    else return undefined
  }
  if (format !== "dump" && format !== "events") return undefined
  if (file === undefined) return { events: format === "events", count, file }
  try {
    if (!fs.statSync(file).isFile()) return undefined
    fs.accessSync(file, fs.constants.R_OK)
  } catch {
    return undefined
  }
  return { events: format === "events", count, file }
}

const CHUNK = 1 << 20

/** Runs it; resolves with the exit code (the process may also end on its own: 141 when stdout goes away). */
export const parseFile = async (run: ParseFile): Promise<number> => {
  // A reader that went away (`| head -1`), or a signal: as the full command line ends.
  endLikeMain()

  let parsed = 0
  let failed = 0
  let out = ""
  let err = ""
  const decoder = makeLineDecoder(run.events, false, {
    flow: (flow) => {
      parsed++
      if (!run.count) out += `${JSON.stringify(flow)}\n`
    },
    error: (reason, _line, lineNumber) => {
      failed++
      if (!run.count) err += `line ${lineNumber}: ${reason}\n`
    }
  })
  const flush = () => {
    if (err !== "") process.stderr.write(err)
    if (out !== "") process.stdout.write(out)
    out = err = ""
  }
  const input = run.file === undefined ? stdin() : fs.createReadStream(run.file, { highWaterMark: CHUNK })
  if (typeof input === "string") return unreadable(input)
  try {
    for await (const chunk of input) {
      decoder.push(chunk as Buffer)
      flush()
    }
  } catch (error) {
    flush()
    const code = (error as NodeJS.ErrnoException).code ?? String(error)
    if (run.file === undefined) return unreadable(`could not be read (${code})`)
    process.stderr.write(`effect-conntrack: ${run.file} could not be read (${code})\n`)
    return 1
  }
  decoder.end()
  flush()
  if (run.count) process.stdout.write(`parsed ${parsed}, failed ${failed}\n`)
  if (failed === 0) return 0
  process.stderr.write(`effect-conntrack: ${failed} of ${parsed + failed} lines could not be parsed\n`)
  return 1
}

/** Standard input, or why it cannot be read (as `Main` says it). */
const stdin = (): NodeJS.ReadableStream | string => {
  let stat: fs.Stats
  try {
    stat = fs.fstatSync(0)
  } catch (error) {
    return `is closed (${(error as NodeJS.ErrnoException).code ?? String(error)})`
  }
  return stat.isDirectory() ? "is a directory" : process.stdin
}

const unreadable = (reason: string): number => {
  process.stderr.write(`effect-conntrack: standard input ${reason}: give a FILE, or pipe conntrack output in\n`)
  return 1
}
