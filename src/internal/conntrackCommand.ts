/**
 * How conntrack is run, without Effect: shared by `Conntrack` and the `dump` command's fast start
 * (`cli/DumpCount.ts`), so that both run the same command and read its stderr the same way.
 *
 * @internal
 */
import * as fs from "node:fs"
import * as path from "node:path"

/** The conntrack binary run when none is named (looked up on the PATH). */
export const DEFAULT_BINARY = "conntrack"
/** The protocol dumped and listened to when none is named. */
export const DEFAULT_PROTOCOL = "tcp"

/** `-p PROTOCOL`, or nothing for every protocol (`all`). */
export const protocolArguments = (protocol: string): ReadonlyArray<string> =>
  protocol === "all" ? [] : ["-p", protocol]

/** The arguments of a dump (`conntrack -L`). */
export const dumpArguments = (
  protocol: string,
  extraArgs: ReadonlyArray<string>,
  dumpArgs: ReadonlyArray<string>
): ReadonlyArray<string> => ["-L", "-o", "id", ...protocolArguments(protocol), ...extraArgs, ...dumpArgs]

/**
 * The size of the blocks a dump is written in (`stdbuf -o`). Into the pipe Node gives a child (a socket pair),
 * conntrack writes 4 KiB at a time, and each write wakes its reader: a dump of 262,144 entries (45 MB) reached the
 * walker in about 6,500 reads, which cost the walker's process 270–390 ms of CPU more than 64 KiB blocks did, taken
 * from conntrack on a machine of 2 cores. Larger blocks (256 KiB) fill the socket's buffer and conntrack waits for
 * its reader: slower again.
 */
export const DUMP_WRITE_SIZE = 65_536

/** The largest `dumpWriteSize` taken (16 MiB). */
export const MAX_DUMP_WRITE_SIZE = 16 * 1024 * 1024

/** Whether `n` is a `dumpWriteSize` stdbuf takes: a whole number of bytes from 0 to `MAX_DUMP_WRITE_SIZE`. */
export const isDumpWriteSize = (n: number): boolean => Number.isSafeInteger(n) && n >= 0 && n <= MAX_DUMP_WRITE_SIZE

/** The first executable `name` in the directories of `searchPath` (a `PATH`), if any. */
export const findOnPath = (name: string, searchPath: string | undefined): string | undefined => {
  for (const dir of (searchPath ?? "").split(":")) {
    if (dir === "") continue
    const file = path.join(dir, name)
    try {
      fs.accessSync(file, fs.constants.X_OK)
      if (fs.statSync(file).isFile()) return file
    } catch {
      // Not here.
    }
  }
  return undefined
}

const stdbufFound = new Map<string, boolean>()

/** Whether `stdbuf` (coreutils) is on the `PATH` and has not failed, looked up once per `PATH`. */
export const hasStdbuf = (searchPath: string | undefined = process.env.PATH): boolean => {
  const key = searchPath ?? ""
  let found = stdbufFound.get(key)
  if (found === undefined) {
    found = findOnPath("stdbuf", searchPath) !== undefined
    stdbufFound.set(key, found)
  }
  return found
}

/** From now on, in this process, `hasStdbuf` says no for this `PATH`: the stdbuf found there failed to run. */
export const stdbufFailed = (searchPath: string | undefined = process.env.PATH): void => {
  stdbufFound.set(searchPath ?? "", false)
}

/**
 * Whether a command run through stdbuf ended because stdbuf itself failed, not conntrack: stdbuf's own failures exit
 * 125 (no `libstdbuf.so`, a size it refuses), and a setpriv that cannot execute it says so. stdbuf's "failed to run
 * command" (exit 126 or 127) is about the program it runs: conntrack.
 */
export const isStdbufFailure = (exitCode: number | undefined, stderr: ReadonlyArray<string>): boolean =>
  (exitCode === 125 && stderr.some((l) => l.startsWith("stdbuf:"))) ||
  stderr.some((l) => l.startsWith("setpriv: failed to execute stdbuf"))

/** How a conntrack command is started: what wraps it, and the size of its dump's writes. */
export interface Wrapping {
  /** Through `setpriv --pdeathsig KILL` (see `dyingWithParent`). */
  readonly dieWithParent: boolean
  /** Bytes written at a time (`stdbuf -o`); 0 leaves conntrack's own buffering (4 KiB into a pipe). */
  readonly writeSize: number
  /** Whether `stdbuf` is there to run (see `hasStdbuf`); without it `writeSize` is not applied. */
  readonly stdbuf: boolean
}

/**
 * The program spawned and its arguments to run `program args`: through `stdbuf -o writeSize` when asked for and
 * there, and through `setpriv` when it is to die with this process (`setpriv` first: stdbuf's preloaded library is for
 * conntrack alone). stdbuf changes nothing but the size of the writes; its preload is ignored for a program with file
 * capabilities run by a user other than root (the dump then arrives 4 KiB at a time, as without it).
 */
export const wrapped = (
  program: string,
  args: ReadonlyArray<string>,
  how: Wrapping
): { readonly command: string; readonly args: ReadonlyArray<string> } => {
  const buffered: ReadonlyArray<string> =
    how.writeSize > 0 && how.stdbuf ? ["stdbuf", "-o", String(how.writeSize), program, ...args] : [program, ...args]
  const line = how.dieWithParent ? ["setpriv", ...dyingWithParent(buffered[0] as string, buffered.slice(1))] : buffered
  return { command: line[0] as string, args: line.slice(1) }
}

/** `program args` run through `setpriv --pdeathsig KILL`: the kernel kills it when this process ends. */
export const dyingWithParent = (program: string, args: ReadonlyArray<string>): ReadonlyArray<string> => [
  "--pdeathsig",
  "KILL",
  "--",
  program,
  ...args
]

/** conntrack's last stderr line after a dump or an event stream: "N flow entries have been shown." */
export const isTrailer = (line: string): boolean =>
  line.includes("flow entries have been shown") || line.includes("flow events have been shown")
