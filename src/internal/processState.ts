/**
 * What the kernel says of a process, from `/proc/<pid>/stat` (Linux, as conntrack is): for a child that seems not to
 * end, to tell one that is still running from one that has ended while this process's event loop, held up, had not
 * yet read its exit.
 *
 * @internal
 */
import * as fs from "node:fs"
import * as Effect from "effect/Effect"

export type ProcessState =
  /** No entry: it has ended and been reaped. */
  | { readonly _tag: "Gone" }
  /** Its state letter: R running, S sleeping, D in uninterruptible sleep, Z ended but not reaped, ... */
  | { readonly _tag: "State"; readonly state: string }
  /** The entry could not be read (e.g. `/proc` mounted with `hidepid`). */
  | { readonly _tag: "Unknown"; readonly reason: string }

/** The state letter of a `/proc/<pid>/stat` line: the field after the command name, which is in parentheses. */
export const stateOfStat = (stat: string): string | undefined => {
  const close = stat.lastIndexOf(")")
  const state = close === -1 ? "" : stat.charAt(close + 2)
  return /^[A-Za-z]$/.test(state) ? state : undefined
}

export const processState = (pid: number, procRoot = "/proc"): Effect.Effect<ProcessState> =>
  Effect.sync((): ProcessState => {
    let stat: string
    try {
      stat = fs.readFileSync(`${procRoot}/${pid}/stat`, "latin1")
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      return code === "ENOENT" || code === "ESRCH"
        ? { _tag: "Gone" }
        : { _tag: "Unknown", reason: code ?? String(error) }
    }
    const state = stateOfStat(stat)
    return state === undefined ? { _tag: "Unknown", reason: "unreadable stat line" } : { _tag: "State", state }
  })

/** Whether the process has ended (reaped, or a zombie waiting to be). */
export const hasEnded = (s: ProcessState): boolean =>
  s._tag === "Gone" || (s._tag === "State" && (s.state === "Z" || s.state === "X"))

/** For a message: "gone", "in state D", "state unknown: EACCES". */
export const describeState = (s: ProcessState): string =>
  s._tag === "Gone" ? "gone" : s._tag === "State" ? `in state ${s.state}` : `state unknown: ${s.reason}`
