// This process's environment without the variables the full command line reads: with one of them set (CI sets
// CONNTRACK_KERNEL_TESTS), `dump --count` leaves its fast start for the full command line.
import { readByFullCommandLine } from "../../src/cli/DumpCount.js"

export const plainEnv = (): Record<string, string | undefined> =>
  Object.fromEntries(Object.entries(process.env).filter(([name]) => !readByFullCommandLine(name)))
