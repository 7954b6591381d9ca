/**
 * The lines conntrack prints most, read straight through: TCP and UDP flows with their fields where conntrack puts
 * them, each key matched as whole words of bytes and each number read while it is scanned.
 *
 * Where WebAssembly runs, the line scanner (`./lineScanner.ts`, `native/line-scanner.c`) reads these lines in its
 * place, taking exactly the lines this reader takes (the tests hold the two to each other): this reader serves where
 * WebAssembly cannot run (`node --jitless`), and is the scanner's reference in JavaScript.
 *
 * It accepts only lines the general reader (`./parse.ts`) accepts, and makes the same flows with the same constructors.
 * Anything else (another protocol, another order, a field or flag it does not know, a mistake, a line that may have
 * been cut) is handed back as FALLBACK, and the general reader reads the line from its start and says what is wrong.
 * A line given up late (a field it does not take at its end, such as `labels=` or `[start=...]`) is read twice: such
 * lines are rare, and most lines it does not take are given up at their first words.
 *
 * The readers of its fields return where the field ends (`ports`: where the next one starts), or -1 when it is not
 * one this reader takes; they fill the drafts only with what they checked.
 *
 * Not re-entrant: one set of drafts serves every call. The space (32) and the ranges (0xffff, 0xffffffff) are written
 * as literals, not named constants: see `./scan.ts` for why.
 *
 * @internal
 */
import type { Flow } from "../Flow.js"
import { IPV4, IPV6, NONE } from "./address.js"
import {
  familyOf,
  forget,
  forgetKey,
  keep,
  lengthOf,
  lookup,
  originalOf,
  plainOf,
  replyOf,
  took,
  unrepliedOf,
  worthKeeping
} from "./eventTuples.js"
import {
  clearFlow,
  clearTuple,
  emptyFlow,
  emptyTuple,
  makeFlow,
  makeTuple,
  makeTupleAt,
  type TupleDraft
} from "./flow.js"
import { addressFamily, decimal, repeats, scanEnd, skipSpaces as skip } from "./scan.js"
import { addressText as address, texts } from "./sharedStrings.js"
import { knownState } from "./states.js"

/** The line is not one this reader takes. */
export const FALLBACK = undefined

/** A key (or a flag) as 32-bit words of its bytes, first byte lowest, each with the mask of the bytes it holds. */
interface Key {
  readonly length: number
  readonly w0: number
  readonly m0: number
  readonly w1: number
  readonly m1: number
  readonly w2: number
  readonly m2: number
}

const wordOf = (s: string, from: number): number => {
  let w = 0
  for (let k = 3; k >= 0; k--) w = (w << 8) | (from + k < s.length ? s.charCodeAt(from + k) : 0)
  return w
}
const maskOf = (s: string, from: number): number => {
  const n = Math.max(0, Math.min(4, s.length - from))
  return n === 4 ? -1 : (1 << (8 * n)) - 1
}
const key = (s: string): Key => {
  if (s.length > 12) throw new Error(`key too long: ${s}`)
  return {
    length: s.length,
    w0: wordOf(s, 0),
    m0: maskOf(s, 0),
    w1: wordOf(s, 4),
    m1: maskOf(s, 4),
    w2: wordOf(s, 8),
    m2: maskOf(s, 8)
  }
}

/** The 4 bytes at `i`, first byte lowest (bytes past the buffer read as 0). */
const word = (b: Buffer, i: number): number =>
  (b[i] as number) | ((b[i + 1] as number) << 8) | ((b[i + 2] as number) << 16) | ((b[i + 3] as number) << 24)

/** Whether `k` starts at `i` and ends at or before `end`. */
const isKey = (b: Buffer, i: number, end: number, k: Key): boolean =>
  i + k.length <= end &&
  (word(b, i) & k.m0) === k.w0 &&
  (k.length <= 4 || ((word(b, i + 4) & k.m1) === k.w1 && (k.length <= 8 || (word(b, i + 8) & k.m2) === k.w2)))

/**
 * The key of the line b[start, end) in the cache of event tuples: its last 4 bytes as a number (0, no key, for a line
 * of fewer). In conntrack's `-o id` lines they are the last digits of the connection's id.
 */
const lineKey = (b: Buffer, start: number, end: number): number => (end - start < 4 ? 0 : word(b, end - 4))

const K_NEW = key("[NEW]")
const K_UPDATE = key("[UPDATE]")
const K_DESTROY = key("[DESTROY]")
const K_IPV4 = key("ipv4 ")
const K_IPV6 = key("ipv6 ")
const K_TCP = key("tcp ")
const K_UDP = key("udp ")
const K_SRC = key("src=")
const K_DST = key("dst=")
const K_SPORT = key("sport=")
const K_DPORT = key("dport=")
const K_ZONE_ORIG = key("zone-orig=")
const K_ZONE_REPLY = key("zone-reply=")
const K_PACKETS = key("packets=")
const K_BYTES = key("bytes=")
const K_UNREPLIED = key("[UNREPLIED]")
const K_ASSURED = key("[ASSURED]")
const K_OFFLOAD = key("[OFFLOAD]")
const K_HW_OFFLOAD = key("[HW_OFFLOAD]")
const K_MARK = key("mark=")
const K_SECMARK = key("secmark=")
const K_SECCTX = key("secctx=")
const K_ZONE = key("zone=")
const K_DELTA_TIME = key("delta-time=")
const K_USE = key("use=")
const K_ID = key("id=")

const flow = emptyFlow()
const original = emptyTuple()
const reply = emptyTuple()

/** Reads the line b[start, end) (no line break), or FALLBACK. */
export const readStraight = (
  b: Buffer,
  start: number,
  end: number,
  events: boolean,
  compact: boolean
): Flow | typeof FALLBACK => {
  // Longer than 1,000 bytes: a margin below conntrack's 1023-byte cut (`MAX_FLOW_TEXT`), for the general reader.
  if (end - start > 1000 || end <= start || (b[end - 1] as number) <= 32) return FALLBACK
  clearFlow(flow)
  let i = skip(b, start, end)

  // [EVENT] [ipvN N] proto N [timeout] [STATE]
  if (b[i] === 91) {
    if (!events) return FALLBACK
    const tag = isKey(b, i, end, K_NEW)
      ? K_NEW
      : isKey(b, i, end, K_UPDATE)
        ? K_UPDATE
        : isKey(b, i, end, K_DESTROY)
          ? K_DESTROY
          : undefined
    if (tag === undefined) return FALLBACK
    i += tag.length
    if (i >= end || b[i] !== 32) return FALLBACK
    flow.type = tag === K_NEW ? "NEW" : tag === K_UPDATE ? "UPDATE" : "DESTROY"
    i = skip(b, i, end)
  } else if (events) return FALLBACK

  let declared = NONE
  if (isKey(b, i, end, K_IPV4) || isKey(b, i, end, K_IPV6)) {
    declared = b[i + 3] === 52 ? IPV4 : IPV6
    i = skip(b, i + 5, end)
    if (decimal(b, i, end) !== (declared === IPV4 ? 2 : 10)) return FALLBACK
    i = skip(b, scanEnd, end)
  }
  let protonum: number
  if (isKey(b, i, end, K_TCP)) {
    flow.proto = "tcp"
    protonum = 6
  } else if (isKey(b, i, end, K_UDP)) {
    flow.proto = "udp"
    protonum = 17
  } else return FALLBACK
  i = skip(b, i + 4, end)
  if (decimal(b, i, end) !== protonum) return FALLBACK
  flow.protonum = protonum
  i = skip(b, scanEnd, end)
  if (i < end && (b[i] as number) >= 48 && (b[i] as number) <= 57) {
    const timeout = decimal(b, i, end)
    if (timeout < 0) return FALLBACK
    flow.timeout = timeout
    i = skip(b, scanEnd, end)
  }
  if (i < end && (b[i] as number) >= 65 && (b[i] as number) <= 90) {
    let e = i
    while (e < end && b[e] !== 32) e++
    const state = knownState(b, i, e)
    if (state === undefined) return FALLBACK
    flow.state = state
    i = skip(b, e, end)
  }

  // The original tuple, what may follow it, and the reply tuple: read, or taken from the connection's last event.
  if (!isKey(b, i, end, K_SRC)) return FALLBACK
  clearTuple(original)
  clearTuple(reply)
  const tuplesFrom = i
  const key = events && compact ? lineKey(b, start, end) : 0
  const kept = key === 0 ? -1 : lookup(b, i, end, key)
  let family: number
  if (kept >= 0) {
    family = familyOf(kept)
    if (declared !== NONE && declared !== family) return FALLBACK
    if (unrepliedOf(kept)) flow.unreplied = true
    i = skip(b, i + lengthOf(kept), end)
  } else {
    i = tuples(b, i, end, declared, compact)
    if (i < 0) return FALLBACK
    family = tuplesFamily
  }

  // What follows the reply tuple, in any order.
  while (i < end) {
    const next = trailer(b, i, end)
    if (next < 0) return FALLBACK
    i = skip(b, next, end)
  }

  flow.family = family === IPV4 ? "ipv4" : "ipv6"
  // The reply's zone and counters follow its ports, outside the bytes kept: a reply with them is made anew.
  const plain = reply.zone === undefined && reply.packets === undefined && reply.bytes === undefined
  if (kept >= 0) {
    took()
    flow.original = originalOf(kept)
    const known = replyOf(kept)
    if (plain && plainOf(kept)) flow.reply = known
    else flow.reply = makeTupleAt(reply, known)
    if (flow.type === "DESTROY") forget(kept)
  } else {
    flow.original = makeTuple(original)
    flow.reply = makeTuple(reply)
    if (key !== 0) {
      if (flow.type === "DESTROY") forgetKey(key)
      else if (worthKeeping())
        keep(b, tuplesFrom, tuplesEnd, key, family, tuplesUnreplied, flow.original, flow.reply, plain)
    }
  }
  return makeFlow(flow)
}

/**
 * Of the tuples `tuples` read last: their family, where their bytes end (the reply's `dport=` value), and whether
 * `[UNREPLIED]` stood between them.
 */
let tuplesFamily = NONE
let tuplesEnd = 0
let tuplesUnreplied = false

/**
 * The original tuple, what may follow it, and the reply tuple, from the original's `src=` at `i`, into the drafts:
 * where the next field starts, or -1.
 */
const tuples = (b: Buffer, i: number, end: number, declared: number, compact: boolean): number => {
  let unreplied = false
  const srcFrom = i + 4
  const family = addressFamily(b, srcFrom, end)
  const srcTo = scanEnd
  if (family === NONE || (declared !== NONE && declared !== family)) return -1
  original.src = address(b, srcFrom, srcTo, compact)
  i = skip(b, srcTo, end)
  if (!isKey(b, i, end, K_DST)) return -1
  const dstFrom = i + 4
  if (addressFamily(b, dstFrom, end) !== family) return -1
  const dstTo = scanEnd
  original.dst = address(b, dstFrom, dstTo, compact)
  i = ports(b, skip(b, dstTo, end), end, original)
  if (i < 0) return -1

  // What may follow the original tuple, up to the reply's src=.
  for (;;) {
    const first = b[i]
    if (first === 115 /* s */ && isKey(b, i, end, K_SRC)) break
    let next: number
    if (first === 122 /* z */) {
      const zone = numberAt(b, i, end, K_ZONE_ORIG, 0xffff)
      if (zone >= 0) original.zone = zone
      next = zone < 0 ? -1 : scanEnd
    } else if (first === 91 /* [ */) {
      next = flagAt(b, i, end, K_UNREPLIED)
      if (next >= 0) flow.unreplied = unreplied = true
    } else next = counter(b, i, end, original)
    if (next < 0) return -1
    i = skip(b, next, end)
  }

  const v = i + 4
  if (repeats(b, v, end, dstFrom, dstTo)) {
    reply.src = original.dst
  } else {
    if (addressFamily(b, v, end) !== family) return -1
    reply.src = address(b, v, scanEnd, compact)
  }
  i = skip(b, scanEnd, end)
  if (!isKey(b, i, end, K_DST)) return -1
  const w = i + 4
  if (repeats(b, w, end, srcFrom, srcTo)) {
    reply.dst = original.src
  } else {
    if (addressFamily(b, w, end) !== family) return -1
    reply.dst = address(b, w, scanEnd, compact)
  }
  i = ports(b, skip(b, scanEnd, end), end, reply)
  if (i < 0) return -1
  tuplesFamily = family
  tuplesEnd = scanEnd
  tuplesUnreplied = unreplied
  return i
}

/** sport=N dport=N at `i`: where the next field starts, or -1. */
const ports = (b: Buffer, i: number, end: number, tuple: TupleDraft): number => {
  const sport = numberAt(b, i, end, K_SPORT, 0xffff)
  if (sport < 0) return -1
  i = skip(b, scanEnd, end)
  const dport = numberAt(b, i, end, K_DPORT, 0xffff)
  if (dport < 0) return -1
  tuple.sport = sport
  tuple.dport = dport
  return skip(b, scanEnd, end)
}

/** packets=N or bytes=N of `tuple` at `i`: where it ends, or -1. */
const counter = (b: Buffer, i: number, end: number, tuple: TupleDraft): number => {
  const first = b[i]
  const k = first === 112 /* p */ ? K_PACKETS : first === 98 /* b */ ? K_BYTES : undefined
  const n = k === undefined ? -1 : numberAt(b, i, end, k, Number.MAX_SAFE_INTEGER)
  if (n < 0) return -1
  if (k === K_PACKETS) tuple.packets = n
  else tuple.bytes = n
  return scanEnd
}

/** The end of the flag `k` at `i`, if it is there and ends there (at a space or `end`); else -1. */
const flagAt = (b: Buffer, i: number, end: number, k: Key): number => {
  if (!isKey(b, i, end, k)) return -1
  const e = i + k.length
  return e < end && b[e] !== 32 ? -1 : e
}

/** The flag that may follow the reply tuple at `i`, if it is one. */
const trailingFlag = (b: Buffer, i: number, end: number): Key | undefined =>
  isKey(b, i, end, K_ASSURED)
    ? K_ASSURED
    : isKey(b, i, end, K_OFFLOAD)
      ? K_OFFLOAD
      : isKey(b, i, end, K_UNREPLIED)
        ? K_UNREPLIED
        : isKey(b, i, end, K_HW_OFFLOAD)
          ? K_HW_OFFLOAD
          : undefined

/** The number after the key `k` at `i` (its end in `scanEnd`), if the key is there and the number at most `max`; else -1. */
const numberAt = (b: Buffer, i: number, end: number, k: Key, max: number): number => {
  if (!isKey(b, i, end, k)) return -1
  const n = decimal(b, i + k.length, end)
  return n > max ? -1 : n
}

/** One field or flag after the reply tuple: where it ends, or -1. */
const trailer = (b: Buffer, i: number, end: number): number => {
  switch (b[i]) {
    case 91 /* [ */:
      {
        const k = trailingFlag(b, i, end)
        const e = k === undefined ? -1 : flagAt(b, i, end, k)
        if (e < 0) return -1
        if (k === K_ASSURED) flow.assured = true
        else if (k === K_OFFLOAD) flow.offload = true
        else if (k === K_UNREPLIED) flow.unreplied = true
        else flow.hwOffload = true
        return e
      }
    case 109 /* m */:
      {
        const n = numberAt(b, i, end, K_MARK, 0xffffffff)
        if (n >= 0) flow.mark = n
        return n < 0 ? -1 : scanEnd
      }
    case 117 /* u */:
      {
        const n = numberAt(b, i, end, K_USE, 0xffffffff)
        if (n >= 0) flow.use = n
        return n < 0 ? -1 : scanEnd
      }
    case 105 /* i */:
      {
        const n = numberAt(b, i, end, K_ID, 0xffffffff)
        if (n >= 0) flow.id = n
        return n < 0 ? -1 : scanEnd
      }
    case 122 /* z */:
      {
        const zone = numberAt(b, i, end, K_ZONE, 0xffff)
        if (zone >= 0) {
          flow.zone = zone
          return scanEnd
        }
        const n = numberAt(b, i, end, K_ZONE_REPLY, 0xffff)
        if (n >= 0) reply.zone = n
        return n < 0 ? -1 : scanEnd
      }
    case 100 /* d */:
      {
        const n = numberAt(b, i, end, K_DELTA_TIME, Number.MAX_SAFE_INTEGER)
        if (n >= 0) flow.deltaTime = n
        return n < 0 ? -1 : scanEnd
      }
    case 115 /* s */:
      {
        if (isKey(b, i, end, K_SECCTX)) {
          if (i + 7 >= end || b[i + 7] === 32) return -1
          flow.secctx = texts.getToken(b, i + 7, end)
          return texts.end
        }
        const n = numberAt(b, i, end, K_SECMARK, 0xffffffff)
        if (n >= 0) flow.secmark = n
        return n < 0 ? -1 : scanEnd
      }
    default:
      return counter(b, i, end, reply)
  }
}
