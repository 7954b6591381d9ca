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
  return reportFailure(cli(own)).pipe(
    Effect.provideService(ConntrackArgs, extra),
    Effect.provide(Logger.replace(Logger.defaultLogger, stderrLogger))
  )
}

/** Logs go to stderr, so that stdout stays clean for --json. */
const stderrLogger = Logger.withConsoleError(Logger.logfmtLogger)
