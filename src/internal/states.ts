/**
 * The states conntrack prints, read from a line's bytes.
 *
 * @internal
 */
import { equals, wordBytes } from "./bytes.js"

/**
 * The states conntrack prints (TCP, SCTP, DCCP), as the one string each flow shares. The line scanner
 * (`native/line-scanner.c`) knows them in this order.
 */
export const STATES: ReadonlyArray<string> = [
  "NONE",
  "SYN_SENT",
  "SYN_RECV",
  "ESTABLISHED",
  "FIN_WAIT",
  "CLOSE_WAIT",
  "LAST_ACK",
  "TIME_WAIT",
  "CLOSE",
  "SYN_SENT2",
  "CLOSED",
  "COOKIE_WAIT",
  "COOKIE_ECHOED",
  "SHUTDOWN_SENT",
  "SHUTDOWN_RECD",
  "SHUTDOWN_ACK_SENT",
  "HEARTBEAT_SENT",
  "HEARTBEAT_ACKED",
  "REQUEST",
  "RESPOND",
  "PARTOPEN",
  "OPEN",
  "CLOSEREQ",
  "CLOSING",
  "TIMEWAIT"
]

interface State {
  readonly word: string
  readonly bytes: Uint8Array
}

/** The states by their length, first and last byte: one each (a list, should a new state share its shape). */
const byShape = new Map<number, Array<State>>()
const shapeOf = (length: number, first: number, last: number): number => (length << 16) | (first << 8) | last
for (const word of STATES) {
  const shape = shapeOf(word.length, word.charCodeAt(0), word.charCodeAt(word.length - 1))
  const states = byShape.get(shape) ?? []
  states.push({ word, bytes: wordBytes(word) })
  byShape.set(shape, states)
}

/** The state b[i, j) if it is one conntrack prints (the one string all flows share), else undefined. */
export const knownState = (b: Buffer, i: number, j: number): string | undefined => {
  if (j <= i) return undefined
  const states = byShape.get(shapeOf(j - i, b[i] as number, b[j - 1] as number))
  if (states === undefined) return undefined
  for (const state of states) if (equals(b, i, j, state.bytes)) return state.word
  return undefined
}
