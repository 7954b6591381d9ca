/**
 * The common lines read by a WebAssembly scanner (`native/line-scanner.c`): it checks a line as the straight reader
 * (`./straight.ts`) does, in one pass over its bytes, and says where each value lies; this module makes the strings
 * and the objects. The scanner takes exactly the lines the straight reader takes, and makes the same flows (which
 * tuple objects events read compact share may differ: the two keep their tuples apart).
 *
 * A decoder copies each chunk it is handed into the scanner's memory once (`load`), and its lines are scanned where
 * they lie; any other line is copied on its own. Where WebAssembly cannot run (`node --jitless`), nothing is loaded
 * and every line goes to the JavaScript readers.
 *
 * Not re-entrant: one set of drafts and results serves every call.
 *
 * @internal
 */
import type { Flow, Tuple } from "../Flow.js"
import { KeepCredit } from "./eventTuples.js"
import { clearFlow, clearTuple, emptyFlow, emptyTuple, makeFlow, makeTuple, makeTupleAt } from "./flow.js"
import { lineScannerWasm } from "./lineScannerWasm.js"
import { addressText as address, texts } from "./sharedStrings.js"
import { STATES } from "./states.js"

// The results, as `native/line-scanner.c` numbers them: small numbers and offsets from the line's start in `ints`,
// the numbers that may pass 2^31 in `numbers`, and again in `small` where they fit in 30 bits (-1 where the line has
// no such field, -2 where the number is only in `numbers`). A number taken from a Float64Array stays a heap number
// in the flow (16 bytes each, six or more a flow), where one taken from an Int32Array is a small integer.
const TYPE = 0
const FAMILY = 1
const PROTO = 2
const STATE = 3
const OSRC_FROM = 4
const OSRC_TO = 5
const ODST_FROM = 6
const ODST_TO = 7
const RSRC_FROM = 8
const RSRC_TO = 9
const RDST_FROM = 10
const RDST_TO = 11
const OSPORT = 12
const ODPORT = 13
const RSPORT = 14
const RDPORT = 15
const OZONE = 16
const RZONE = 17
const ZONE = 18
const FLAGS = 19
const SECCTX_FROM = 20
const SECCTX_SAME = 22
const KEY = 26
const SLOT = 27
const TAKEN = 28
const INTS = 29

const TIMEOUT = 0
const OPACKETS = 1
const OBYTES = 2
const RPACKETS = 3
const RBYTES = 4
const MARK = 5
const USE = 6
const ID = 7
const DELTA_TIME = 8
const SECMARK = 9
const NUMBERS = 10

const NEW = 1
const UPDATE = 2
const DESTROY = 3

const F_UNREPLIED = 1
const F_ASSURED = 2
const F_OFFLOAD = 4
const F_HW_OFFLOAD = 8

/** The longest line the scanner takes (as the straight reader). */
const LONGEST = 1000
/** Chunks larger than this are not copied whole: their lines are copied one by one. */
const LARGEST_CHUNK = 4 << 20
const PAGE = 65536

// The few parts of the WebAssembly API used here (the project's types include no DOM); absent under `--jitless`.
interface WebAssemblyApi {
  readonly Module: new (bytes: Uint8Array) => object
  readonly Instance: new (module: object, imports: object) => { readonly exports: unknown }
}

interface Exports {
  readonly memory: { readonly buffer: ArrayBuffer; readonly grow: (pages: number) => number }
  readonly input: () => number
  readonly ints: () => number
  readonly numbers: () => number
  readonly small: () => number
  readonly scan: (from: number, to: number, events: number, tuplesKept: number) => number
  readonly keep: (line: number) => number
  readonly forget: () => number
  readonly forget_all: () => void
}

const instantiate = (): Exports | undefined => {
  const api = (globalThis as { readonly WebAssembly?: WebAssemblyApi }).WebAssembly
  if (api === undefined) return undefined
  try {
    const bytes = Buffer.from(lineScannerWasm, "base64")
    return new api.Instance(new api.Module(bytes), {}).exports as Exports
  } catch {
    return undefined
  }
}

const wasm = instantiate()
/** Whether the scanner runs here. */
export const available = wasm !== undefined

// Memory: one line's room, then the chunk loaded last. A margin past each: the scanner compares keys as 64-bit words,
// reading up to 8 bytes past a line's end (and masking them off).
const lineAt = wasm === undefined ? 0 : wasm.input()
const chunkAt = lineAt + LONGEST + 64
let memory = new Uint8Array(0)
let ints = new Int32Array(0)
let numbers = new Float64Array(0)
let small = new Int32Array(0)
const views = () => {
  if (wasm === undefined) return
  memory = new Uint8Array(wasm.memory.buffer)
  ints = new Int32Array(wasm.memory.buffer, wasm.ints(), INTS)
  numbers = new Float64Array(wasm.memory.buffer, wasm.numbers(), NUMBERS)
  small = new Int32Array(wasm.memory.buffer, wasm.small(), NUMBERS)
}
/** The number the line scanned last has in slot `k` (a small integer where it fits), or undefined. */
const number = (k: number): number | undefined => {
  const n = small[k] as number
  return n >= 0 ? n : n === -1 ? undefined : (numbers[k] as number)
}

/** Grows memory to hold `bytes` bytes. */
const reserve = (bytes: number): void => {
  if (wasm === undefined || bytes <= memory.length) return
  wasm.memory.grow(Math.ceil((bytes - memory.length) / PAGE))
  views()
}
views()
reserve(chunkAt)

// The chunk in memory, by the ticket `load` gave for it: a line of another chunk, or of one loaded since, is copied.
let loaded = 0

/**
 * Copies a chunk into the scanner's memory: the ticket for scanning its lines in place, good until the next `load`
 * (0 when it is not loaded).
 */
export const load = (b: Uint8Array): number => {
  if (wasm === undefined || b.length > LARGEST_CHUNK) return 0
  reserve(chunkAt + b.length + 64)
  memory.set(b, chunkAt)
  loaded = (loaded + 1) | 0 || 1
  return loaded
}

const flow = emptyFlow()
const original = emptyTuple()
const reply = emptyTuple()

// Where in memory the line scanned last starts.
let lineStart = 0

/**
 * Scans the line b[start, end) (no line break), in place when `ticket` is the chunk's, else copied: 1 when it is one
 * the scanner takes (`scannedFlow` then makes its flow), else 0. `tuplesKept`: an event read compact, whose tuples
 * may be those kept for its connection.
 */
export const scan = (
  b: Buffer,
  start: number,
  end: number,
  events: boolean,
  ticket: number,
  tuplesKept: boolean
): number => {
  if (wasm === undefined || end - start > LONGEST || end <= start) return 0
  if (ticket === loaded && ticket !== 0) lineStart = chunkAt + start
  else {
    memory.set(b.subarray(start, end), lineAt)
    lineStart = lineAt
  }
  return wasm.scan(lineStart, lineStart + (end - start), events ? 1 : 0, tuplesKept ? 1 : 0)
}

/*
 * The tuple objects of each connection's last event, by the scanner's slot (`native/line-scanner.c` keeps their
 * bytes): an event read compact whose tuples repeat, byte for byte, those kept for its line's key (the last digits of
 * conntrack's id) takes them instead of making new ones. The reply's zone and counters follow the bytes kept, so a
 * reply with them is made anew; a DESTROY forgets its slot. Sharing the objects between a connection's flows saves
 * the strings and tuples, and lets the table see at once that two flows are the same connection.
 */
const SLOTS = 4096
const originals: Array<Tuple | undefined> = new Array(SLOTS).fill(undefined)
const replies: Array<Tuple | undefined> = new Array(SLOTS).fill(undefined)
const plainReplies: Array<boolean> = new Array(SLOTS).fill(false)
const credit = new KeepCredit()

/** Empties the kept tuples and restores the credit (for tests that count what is taken). */
export const resetKept = (): void => {
  wasm?.forget_all()
  originals.fill(undefined)
  replies.fill(undefined)
  plainReplies.fill(false)
  credit.reset()
}

// The secctx of the last line the scanner took that had one: the scanner says when a line has the same one.
let lastSecctx = ""

/** The flow of the line `scan` took last. */
export const scannedFlow = (b: Buffer, start: number, end: number, compact: boolean, tuplesKept: boolean): Flow => {
  const r = ints
  clearFlow(flow)
  const type = r[TYPE] as number
  if (type !== 0) flow.type = type === NEW ? "NEW" : type === UPDATE ? "UPDATE" : "DESTROY"
  const state = r[STATE] as number
  if (state !== 0) flow.state = STATES[state - 1]
  flow.family = r[FAMILY] === 4 ? "ipv4" : "ipv6"
  const protonum = r[PROTO] as number
  flow.proto = protonum === 6 ? "tcp" : "udp"
  flow.protonum = protonum
  flow.timeout = number(TIMEOUT)

  const plain = (r[RZONE] as number) < 0 && small[RPACKETS] === -1 && small[RBYTES] === -1
  const slot = r[SLOT] as number
  const keyed = tuplesKept && r[KEY] !== 0
  if (keyed && r[TAKEN] === 1) {
    credit.took()
    flow.original = originals[slot]
    const known = replies[slot] as Tuple
    if (plain && plainReplies[slot] === true) flow.reply = known
    else {
      clearTuple(reply)
      replyExtras(r)
      flow.reply = makeTupleAt(reply, known)
    }
  } else {
    clearTuple(original)
    original.src = address(b, start + (r[OSRC_FROM] as number), start + (r[OSRC_TO] as number), compact)
    original.dst = address(b, start + (r[ODST_FROM] as number), start + (r[ODST_TO] as number), compact)
    original.sport = r[OSPORT] as number
    original.dport = r[ODPORT] as number
    if ((r[OZONE] as number) >= 0) original.zone = r[OZONE] as number
    original.packets = number(OPACKETS)
    original.bytes = number(OBYTES)
    flow.original = makeTuple(original)

    clearTuple(reply)
    const rsrc = r[RSRC_FROM] as number
    reply.src = rsrc < 0 ? original.dst : address(b, start + rsrc, start + (r[RSRC_TO] as number), compact)
    const rdst = r[RDST_FROM] as number
    reply.dst = rdst < 0 ? original.src : address(b, start + rdst, start + (r[RDST_TO] as number), compact)
    reply.sport = r[RSPORT] as number
    reply.dport = r[RDPORT] as number
    replyExtras(r)
    flow.reply = makeTuple(reply)
    if (keyed && type !== DESTROY && credit.worthKeeping() && wasm?.keep(lineStart) === 1) {
      credit.kept()
      originals[slot] = flow.original
      replies[slot] = flow.reply
      plainReplies[slot] = plain
    }
  }
  if (keyed && type === DESTROY && wasm?.forget() === 1) originals[slot] = replies[slot] = undefined

  const flags = r[FLAGS] as number
  if (flags !== 0) {
    if (flags & F_UNREPLIED) flow.unreplied = true
    if (flags & F_ASSURED) flow.assured = true
    if (flags & F_OFFLOAD) flow.offload = true
    if (flags & F_HW_OFFLOAD) flow.hwOffload = true
  }
  flow.mark = number(MARK)
  flow.use = number(USE)
  flow.id = number(ID)
  if ((r[ZONE] as number) >= 0) flow.zone = r[ZONE] as number
  flow.deltaTime = number(DELTA_TIME)
  flow.secmark = number(SECMARK)
  const secctx = r[SECCTX_FROM] as number
  if (secctx >= 0) {
    if (r[SECCTX_SAME] !== 1) lastSecctx = texts.getToken(b, start + secctx, end)
    flow.secctx = lastSecctx
  }

  return makeFlow(flow)
}

/** The reply's zone and counters, read after its ports. */
const replyExtras = (r: Int32Array): void => {
  if ((r[RZONE] as number) >= 0) reply.zone = r[RZONE] as number
  reply.packets = number(RPACKETS)
  reply.bytes = number(RBYTES)
}
