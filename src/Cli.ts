/**
 * The `effect-conntrack` command line.
 */
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import { dumpCommand } from "./cli/DumpCommand.js"
import { ConntrackArgs } from "./cli/Input.js"
import { parseCommand } from "./cli/ParseCommand.js"
import { reportFailure } from "./cli/Report.js"
import { serveCommand } from "./cli/ServeCommand.js"
import { watchCommand } from "./cli/WatchCommand.js"
import * as LogLimit from "./LogLimit.js"

export const command = Command.make("effect-conntrack").pipe(
  Command.withDescription("A live table of the kernel's tracked connections (netfilter conntrack)."),
  Command.withSubcommands([watchCommand, dumpCommand, parseCommand, serveCommand])
)

const cli = Command.run(command, { name: "effect-conntrack", version: "0.1.0" })

/**
 * Runs the command line on `process.argv`-shaped arguments (`["node", "bin", ...args]`); a failure is printed as
 * one sentence on stderr and kept, so that the caller exits non-zero.
 */
export const run = (args: ReadonlyArray<string>) => {
  // What follows `--` goes to conntrack untouched; anything unknown before it is a bad flag.
  const separator = args.indexOf("--")
  const own = separator === -1 ? args : args.slice(0, separator)
  const extra = separator === -1 ? [] : args.slice(separator + 1)
  return reportFailure(cli(builtInsFirst(own))).pipe(
    // What the log rate limit held back is summed up before the process ends.
    Effect.ensuring(LogLimit.flush),
    Effect.provideService(ConntrackArgs, extra),
    Effect.provide(Logger.replace(Logger.defaultLogger, stderrLogger))
  )
}

const subcommands = new Set(["watch", "dump", "parse"])

/**
 * @effect/cli takes its built-in options (`--log-level`, `--help`) only before a subcommand's own options: moves
 * them to just after the subcommand, so that `watch --json --log-level debug` works as a user expects.
 */
export const builtInsFirst = (args: ReadonlyArray<string>): ReadonlyArray<string> => {
  const at = args.findIndex((a, k) => k >= 2 && subcommands.has(a))
  if (at === -1) return args
  const builtIns: Array<string> = []
  const rest: Array<string> = []
  for (let k = at + 1; k < args.length; k++) {
    const arg = args[k] as string
    if (arg === "--help" || arg === "-h" || arg.startsWith("--log-level=")) builtIns.push(arg)
    else if (arg === "--log-level" && k + 1 < args.length) builtIns.push(arg, args[++k] as string)
    else rest.push(arg)
  }
  return [...args.slice(0, at + 1), ...builtIns, ...rest]
}

/** Logs go to stderr, so that stdout stays clean for --json. */
const stderrLogger = Logger.withConsoleError(Logger.logfmtLogger)
