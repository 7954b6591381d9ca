/**
 * How conntrack is run, without Effect: shared by `Conntrack` and the `dump` command's fast start
 * (`cli/DumpCount.ts`), so that both run the same command and read its stderr the same way.
 *
 * @internal
 */

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
