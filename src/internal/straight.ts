/**
 * The lines conntrack prints most, read straight through: TCP and UDP flows with their fields where conntrack puts
 * them, each key matched as whole words of bytes and each number read while it is scanned.
 *
 * It accepts only lines the general reader (`./parse.ts`) accepts, and makes the same flows from the same drafts.
 * Anything else (another protocol, another order, a field or flag it does not know, a mistake, a line that may have
 * been cut) is handed back as FALLBACK, and the general reader reads the line from its start and says what is wrong.
 *
 * Not re-entrant: one set of drafts serves every call.
 *
 * @internal
 */
import type { EventType, Flow } from "../Flow.js"
import { IPV4, IPV6, isIPv6, NONE } from "./address.js"
import { cachedAddress } from "./addressCache.js"
import { ascii } from "./ascii.js"
import { WordCache } from "./bytes.js"
import { clearFlow, clearTuple, emptyFlow, emptyTuple, makeFlow, makeTuple, type TupleDraft } from "./flow.js"
import { knownState } from "./states.js"

/** The line is not one this reader takes. */
export const FALLBACK = undefined

/** Longer lines may have been cut at 1023 bytes: the general reader decides. */
const LONGEST = 1000
const SPACE = 32

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
const texts = new WordCache(1024)

/** Where the value read last ends. */
let after = 0

/**
 * The decimal number from `k` to the next space or `end`: -1 if it is not one. At most 15 digits (exact as a
 * number); longer ones go to the general reader.
 */
const decimal = (b: Buffer, k: number, end: number): number => {
  const from = k
  let n = 0
  while (k < end) {
    const d = (b[k] as number) - 48
    if (d < 0 || d > 9) break
    n = n * 10 + d
    k++
  }
  after = k
  return k === from || k - from > 15 || (k < end && b[k] !== SPACE) ? -1 : n
}

/** The family of the address from `k` to the next space or `end` (NONE if it is not one); its end in `after`. */
const addressFamily = (b: Buffer, k: number, end: number): number => {
  const from = k
  let ok = true
  let colon = false
  let dots = 0
  let digits = 0
  let octet = 0
  for (; k < end; k++) {
    const d = b[k] as number
    if (d === SPACE) break
    if (d === 46) {
      if (digits === 0) ok = false
      dots++
      digits = 0
      octet = 0
    } else if (d >= 48 && d <= 57) {
      octet = octet * 10 + d - 48
      if (++digits > 3 || octet > 255) ok = false
    } else if (d === 58) {
      colon = true
    } else {
      ok = false
    }
  }
  after = k
  if (colon) return isIPv6(b, from, k) ? IPV6 : NONE
  return ok && dots === 3 && digits > 0 ? IPV4 : NONE
}

/** Whether b[v, v + (to - from)) repeats b[from, to) and ends there. */
const repeats = (b: Buffer, v: number, end: number, from: number, to: number): boolean => {
  const stop = v + (to - from)
  if (stop > end || (stop < end && b[stop] !== SPACE)) return false
  for (let k = 0; k < to - from; k++) if (b[v + k] !== b[from + k]) return false
  return true
}

const skip = (b: Buffer, i: number, end: number): number => {
  while (i < end && b[i] === SPACE) i++
  return i
}

/** Reads the line b[start, end) (no line break), or FALLBACK. */
export const readStraight = (
  b: Buffer,
  start: number,
  end: number,
  events: boolean,
  compact: boolean
): Flow | typeof FALLBACK => {
  if (end - start > LONGEST || end <= start || (b[end - 1] as number) <= SPACE) return FALLBACK
  clearFlow(flow)
  let i = skip(b, start, end)

  // [EVENT] [ipvN N] proto N [timeout] [STATE]
  if (b[i] === 91) {
    if (!events) return FALLBACK
    let type: EventType
    if (isKey(b, i, end, K_NEW)) type = "NEW"
    else if (isKey(b, i, end, K_UPDATE)) type = "UPDATE"
    else if (isKey(b, i, end, K_DESTROY)) type = "DESTROY"
    else return FALLBACK
    i += type.length + 2
    if (i >= end || b[i] !== SPACE) return FALLBACK
    flow.type = type
    i = skip(b, i, end)
  } else if (events) return FALLBACK

  let declared = NONE
  if (isKey(b, i, end, K_IPV4) || isKey(b, i, end, K_IPV6)) {
    declared = b[i + 3] === 52 ? IPV4 : IPV6
    i = skip(b, i + 5, end)
    if (decimal(b, i, end) !== (declared === IPV4 ? 2 : 10)) return FALLBACK
    i = skip(b, after, end)
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
  i = skip(b, after, end)
  if (i < end && (b[i] as number) >= 48 && (b[i] as number) <= 57) {
    const timeout = decimal(b, i, end)
    if (timeout < 0) return FALLBACK
    flow.timeout = timeout
    i = skip(b, after, end)
  }
  if (i < end && (b[i] as number) >= 65 && (b[i] as number) <= 90) {
    let e = i
    while (e < end && b[e] !== SPACE) e++
    const state = knownState(b, i, e)
    if (state === undefined) return FALLBACK
    flow.state = state
    i = skip(b, e, end)
  }

  // The original tuple, what may follow it, and the reply tuple.
  clearTuple(original)
  clearTuple(reply)
  if (!isKey(b, i, end, K_SRC)) return FALLBACK
  const srcFrom = i + 4
  const family = addressFamily(b, srcFrom, end)
  const srcTo = after
  if (family === NONE || (declared !== NONE && declared !== family)) return FALLBACK
  original.src = compact ? cachedAddress(b, srcFrom, srcTo) : ascii(b, srcFrom, srcTo)
  i = skip(b, srcTo, end)
  if (!isKey(b, i, end, K_DST)) return FALLBACK
  const dstFrom = i + 4
  if (addressFamily(b, dstFrom, end) !== family) return FALLBACK
  const dstTo = after
  original.dst = compact ? cachedAddress(b, dstFrom, dstTo) : ascii(b, dstFrom, dstTo)
  i = ports(b, skip(b, dstTo, end), end, original)
  if (i < 0) return FALLBACK

  for (;;) {
    if (isKey(b, i, end, K_SRC)) break
    if (isKey(b, i, end, K_ZONE_ORIG)) {
      const zone = decimal(b, i + 10, end)
      if (zone < 0 || zone > 65535) return FALLBACK
      original.zone = zone
    } else if (isKey(b, i, end, K_UNREPLIED)) {
      flow.unreplied = true
      if (flagEnd(b, i, end, K_UNREPLIED) < 0) return FALLBACK
    } else if (counter(b, i, end, original) < 0) return FALLBACK
    i = skip(b, after, end)
  }

  const v = i + 4
  if (repeats(b, v, end, dstFrom, dstTo)) {
    reply.src = original.dst
    after = v + (dstTo - dstFrom)
  } else {
    if (addressFamily(b, v, end) !== family) return FALLBACK
    reply.src = compact ? cachedAddress(b, v, after) : ascii(b, v, after)
  }
  i = skip(b, after, end)
  if (!isKey(b, i, end, K_DST)) return FALLBACK
  const w = i + 4
  if (repeats(b, w, end, srcFrom, srcTo)) {
    reply.dst = original.src
    after = w + (srcTo - srcFrom)
  } else {
    if (addressFamily(b, w, end) !== family) return FALLBACK
    reply.dst = compact ? cachedAddress(b, w, after) : ascii(b, w, after)
  }
  i = ports(b, skip(b, after, end), end, reply)
  if (i < 0) return FALLBACK

  // What follows the reply tuple, in any order.
  while (i < end) {
    if (trailer(b, i, end) < 0) return FALLBACK
    i = skip(b, after, end)
  }

  flow.family = family === IPV4 ? "ipv4" : "ipv6"
  flow.original = makeTuple(original)
  flow.reply = makeTuple(reply)
  return makeFlow(flow)
}

/** sport=N dport=N at `i`: where the next field starts, or -1. */
const ports = (b: Buffer, i: number, end: number, tuple: TupleDraft): number => {
  if (!isKey(b, i, end, K_SPORT)) return -1
  const sport = decimal(b, i + 6, end)
  if (sport < 0 || sport > 65535) return -1
  i = skip(b, after, end)
  if (!isKey(b, i, end, K_DPORT)) return -1
  const dport = decimal(b, i + 6, end)
  if (dport < 0 || dport > 65535) return -1
  tuple.sport = sport
  tuple.dport = dport
  return skip(b, after, end)
}

/** packets=N or bytes=N of `tuple` at `i` (its end in `after`), or -1. */
const counter = (b: Buffer, i: number, end: number, tuple: TupleDraft): number => {
  if (isKey(b, i, end, K_PACKETS)) {
    const n = decimal(b, i + 8, end)
    if (n >= 0) tuple.packets = n
    return n
  }
  if (isKey(b, i, end, K_BYTES)) {
    const n = decimal(b, i + 6, end)
    if (n >= 0) tuple.bytes = n
    return n
  }
  return -1
}

/** The flag `k` at `i` ends there (into `after`): -1 if more follows it before a space. */
const flagEnd = (b: Buffer, i: number, end: number, k: Key): number => {
  after = i + k.length
  return after < end && b[after] !== SPACE ? -1 : 0
}

/** A 32-bit number, or -1. */
const u32 = (b: Buffer, v: number, end: number): number => {
  const n = decimal(b, v, end)
  return n > 0xffffffff ? -1 : n
}

/** One field or flag after the reply tuple (its end in `after`): -1 if it is not one this reader takes. */
const trailer = (b: Buffer, i: number, end: number): number => {
  switch (b[i]) {
    case 91 /* [ */:
      if (isKey(b, i, end, K_ASSURED)) {
        flow.assured = true
        return flagEnd(b, i, end, K_ASSURED)
      }
      if (isKey(b, i, end, K_OFFLOAD)) {
        flow.offload = true
        return flagEnd(b, i, end, K_OFFLOAD)
      }
      if (isKey(b, i, end, K_UNREPLIED)) {
        flow.unreplied = true
        return flagEnd(b, i, end, K_UNREPLIED)
      }
      if (isKey(b, i, end, K_HW_OFFLOAD)) {
        flow.hwOffload = true
        return flagEnd(b, i, end, K_HW_OFFLOAD)
      }
      return -1
    case 109 /* m */:
      if (!isKey(b, i, end, K_MARK)) return -1
      flow.mark = u32(b, i + 5, end)
      return flow.mark
    case 117 /* u */:
      if (!isKey(b, i, end, K_USE)) return -1
      flow.use = u32(b, i + 4, end)
      return flow.use
    case 105 /* i */:
      if (!isKey(b, i, end, K_ID)) return -1
      flow.id = u32(b, i + 3, end)
      return flow.id
    case 122 /* z */:
      if (isKey(b, i, end, K_ZONE)) {
        const zone = decimal(b, i + 5, end)
        flow.zone = zone
        return zone > 65535 ? -1 : zone
      }
      if (isKey(b, i, end, K_ZONE_REPLY)) {
        const zone = decimal(b, i + 11, end)
        reply.zone = zone
        return zone > 65535 ? -1 : zone
      }
      return -1
    case 100 /* d */:
      if (!isKey(b, i, end, K_DELTA_TIME)) return -1
      flow.deltaTime = decimal(b, i + 11, end)
      return flow.deltaTime
    case 115 /* s */:
      if (isKey(b, i, end, K_SECCTX)) {
        if (i + 7 >= end || b[i + 7] === SPACE) return -1
        flow.secctx = texts.getToken(b, i + 7, end)
        after = texts.end
        return 0
      }
      if (!isKey(b, i, end, K_SECMARK)) return -1
      flow.secmark = u32(b, i + 8, end)
      return flow.secmark
    default:
      return counter(b, i, end, reply)
  }
}
