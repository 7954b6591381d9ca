/**
 * `dump --count [--json] [--conntrack PATH]` without Effect: the fast start of the `dump` command's count. The full
 * command line spawned conntrack 190–290 ms after Node started (Node alone takes 80 ms here): loading Effect, its
 * platform and the command line library comes first. This path spawns it 80–100 ms after, as the full command line
 * would (`setpriv --pdeathsig KILL -- stdbuf -o 65536 conntrack -L -o id -p tcp`, see `conntrackCommand.wrapped`), and
 * prints what it would print.
 *
 * It finishes only a dump that goes as expected: conntrack exits 0, every line of its stdout is a flow, and its stderr
 * holds nothing but its trailer. Anything else (a spawn that fails, another exit code or a signal, a line that is not
 * a flow, any other stderr line) is handed to the full command line, which runs the dump again and reports it in its
 * own words, so that its messages, logs and exit codes stay one. Nothing is printed before that. So a dump that fails
 * once and then succeeds prints the second one's count, and a dump with a line the parser refuses runs twice. A
 * command line of any other shape, or a `CONNTRACK_*` variable in the environment (the full command line reads them),
 * goes to the full command line at once.
 *
 * @internal
 */
import * as child from "node:child_process"
import type { Readable } from "node:stream"
import {
  DEFAULT_BINARY,
  DEFAULT_PROTOCOL,
  DUMP_WRITE_SIZE,
  dumpArguments,
  hasStdbuf,
  isTrailer,
  wrapped
} from "../internal/conntrackCommand.js"
import { makeLineDecoder } from "../internal/decode.js"
import { endLikeMain } from "./FastStart.js"
import { countReport, countState } from "./Render.js"

/** A plain `dump --count`. */
export interface DumpCount {
  readonly json: boolean
  readonly binary: string
}

/** Whether the full command line reads this environment variable (then the fast start leaves the count to it). */
export const readByFullCommandLine = (name: string): boolean => name.startsWith("CONNTRACK_")

/** The plain `dump --count` this process was asked for (`process.argv`, `process.env`), if it is one. */
export const recognize = (argv: ReadonlyArray<string>, env: NodeJS.ProcessEnv): DumpCount | undefined => {
  if (argv[2] !== "dump" || Object.keys(env).some(readByFullCommandLine)) return undefined
  let count = false
  let json = false
  let binary: string | undefined
  for (let k = 3; k < argv.length; k++) {
    const arg = argv[k] as string
    if (arg === "--count" && !count) count = true
    else if (arg === "--json" && !json) json = true
    else if (arg === "--conntrack" && binary === undefined && k + 1 < argv.length) {
      binary = argv[++k] as string
      if (binary === "" || binary.startsWith("-")) return undefined
    } else return undefined
  }
  return count ? { json, binary: binary ?? DEFAULT_BINARY } : undefined
}

/**
 * Runs it: the exit code, or undefined when the dump did not go as expected and the full command line must run it.
 */
export const dumpCount = (run: DumpCount): Promise<number | undefined> =>
  new Promise((resolve) => {
    const release = endLikeMain()
    let proc: child.ChildProcessByStdio<null, Readable, Readable> | undefined
    let settled = false
    const handOver = () => {
      if (settled) return
      settled = true
      release()
      // Not read any further: a conntrack still running is ended before the full command line runs its own.
      if (proc !== undefined && proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL")
      resolve(undefined)
    }
    const counts = new Map<string, number>()
    let unexpected = false
    const decoder = makeLineDecoder(false, false, {
      flow: (flow) => {
        countState(counts, flow)
      },
      error: () => {
        unexpected = true
      }
    })
    let stderr = ""
    try {
      const spawned = wrapped(run.binary, dumpArguments(DEFAULT_PROTOCOL, [], []), {
        dieWithParent: true,
        writeSize: DUMP_WRITE_SIZE,
        stdbuf: hasStdbuf()
      })
      proc = child.spawn(spawned.command, spawned.args, { stdio: ["ignore", "pipe", "pipe"] })
    } catch {
      return handOver()
    }
    // Not started: setpriv missing, or no file descriptor left for the pipes (then they are missing).
    proc.on("error", handOver)
    if (!proc.stdout || !proc.stderr) return handOver()
    proc.stdout.on("error", handOver)
    proc.stderr.on("error", handOver)
    proc.stdout.on("data", (chunk: Buffer) => decoder.push(chunk))
    proc.stderr.setEncoding("utf8").on("data", (text: string) => {
      // Only the trailer is expected: a longer stderr is not (and is not kept).
      if (stderr.length < 4096) stderr += text
      else unexpected = true
    })
    proc.on("close", (code, signal) => {
      if (settled) return
      decoder.end()
      const quiet = stderr.split(/\r?\n/).every((line) => line.trim() === "" || isTrailer(line))
      if (unexpected || code !== 0 || signal !== null || !quiet) return handOver()
      settled = true
      process.stdout.write(`${countReport(counts, run.json)}\n`)
      resolve(0)
    })
  })
