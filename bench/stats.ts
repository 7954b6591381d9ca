// Small helpers to time and print benchmark figures.
export const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2
}

export const seconds = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e9

export const fmt = (n: number, digits = 0): string =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })

export const gc = (): void => {
  const g = (globalThis as { gc?: () => void }).gc
  if (g === undefined) throw new Error("run node with --expose-gc")
  g()
  g()
}

/** One line of the summary and of bench/RESULTS.md. */
export interface Row {
  readonly benchmark: string
  readonly figure: string
  readonly baseline: string
  readonly target: string
  readonly met: boolean
}
