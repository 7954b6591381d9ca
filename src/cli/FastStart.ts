/**
 * What the command line's fast starts (`ParseFile.ts`, `DumpCount.ts`) do as `Main` does, without Effect: a reader
 * that went away ends the process quietly with 141, and SIGINT or SIGTERM before the end say so and end it with 130 or
 * 143.
 *
 * @internal
 */

/** What the command line says when its output cannot be written (other than to a reader that went away). */
export const cannotWrite = (code: string | undefined): string => `effect-conntrack: cannot write the output (${code})\n`

/** What the command line says when a signal stops it before the end. */
export const stoppedBy = (signal: "SIGINT" | "SIGTERM"): string =>
  `effect-conntrack: stopped by ${signal} before the end: the output is incomplete\n`

/** Installs the handlers; the function returned removes them (before handing over to the full command line). */
export const endLikeMain = (): (() => void) => {
  const onStdoutError = (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") process.stderr.write(cannotWrite(error.code))
    process.exit(141)
  }
  const onStderrError = () => {}
  const stopped = (signal: "SIGINT" | "SIGTERM", code: number) => () => {
    process.stderr.write(stoppedBy(signal))
    process.exit(code)
  }
  const onInt = stopped("SIGINT", 130)
  const onTerm = stopped("SIGTERM", 143)
  process.stdout.on("error", onStdoutError)
  process.stderr.on("error", onStderrError)
  process.once("SIGINT", onInt)
  process.once("SIGTERM", onTerm)
  return () => {
    process.stdout.off("error", onStdoutError)
    process.stderr.off("error", onStderrError)
    process.off("SIGINT", onInt)
    process.off("SIGTERM", onTerm)
  }
}
