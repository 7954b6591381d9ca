// A Console that records what a program prints, for tests that compare output.
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"

export interface Recorded {
  readonly console: Console.Console
  readonly stdout: () => string
  readonly stderr: () => string
}

export const recordingConsole = (): Recorded => {
  const out: Array<string> = []
  const err: Array<string> = []
  const write =
    (to: Array<string>) =>
    (...args: ReadonlyArray<unknown>) =>
      Effect.sync(() => {
        to.push(`${args.map(String).join(" ")}\n`)
      })
  const noop = () => Effect.void
  const unsafe = {
    ...globalThis.console,
    log: (...args: ReadonlyArray<unknown>) => out.push(`${args.map(String).join(" ")}\n`),
    error: (...args: ReadonlyArray<unknown>) => err.push(`${args.map(String).join(" ")}\n`)
  } as unknown as Console.UnsafeConsole
  const console: Console.Console = {
    [Console.TypeId]: Console.TypeId,
    assert: noop,
    clear: Effect.void,
    count: noop,
    countReset: noop,
    debug: write(err),
    dir: noop,
    dirxml: noop,
    error: write(err),
    group: noop,
    groupEnd: Effect.void,
    info: write(out),
    log: write(out),
    table: noop,
    time: noop,
    timeEnd: noop,
    timeLog: noop,
    trace: noop,
    warn: write(err),
    unsafe
  }
  return { console, stdout: () => out.join(""), stderr: () => err.join("") }
}
