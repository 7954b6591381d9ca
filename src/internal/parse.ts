/**
 * The byte parser: one line of `conntrack -L -o id` or `-E -o id` read in place from a `Buffer`, part by part
 * (prefix, header, tuples, flags and trailer fields, the [USERSPACE] suffix) over one small cursor.
 *
 * It accepts and rejects exactly what the string parser (`./reference.ts`) does and makes the same flows. A few rare
 * shapes, where a length in bytes and a length in characters would give different answers (non-ASCII text in a line
 * cut at 1023 bytes, or in an unknown field name), are handed back as `SLOW`: the caller decodes the line and asks
 * the string parser.
 *
 * The common TCP and UDP lines are read first by the line scanner (`./lineScanner.ts`, WebAssembly), or where
 * WebAssembly cannot run by the straight reader (`./straight.ts`); they hand every other line back, and this general
 * reader reads it from its start. `ticket` (from the scanner's `load`) says the line lies in the chunk the scanner
 * holds.
 *
 * Not re-entrant: one cursor and one set of drafts serve every call.
 *
 * @internal
 */
import type { EventType, Family, Flow, ProtocolName, Userspace } from "../Flow.js"
import { IPV4, NONE } from "./address.js"
import {
  ascii,
  BRACKET,
  CLOSE_BRACKET,
  EQUALS,
  equals,
  find,
  hasHighByte,
  hexUint,
  SPACE,
  startsWith,
  TAB,
  text,
  uint,
  WordCache,
  wordBytes
} from "./bytes.js"
import { Cursor } from "./cursor.js"
import { clearFlow, clearTuple, emptyFlow, emptyTuple, makeFlow, makeTuple, type TupleDraft } from "./flow.js"
import { available, scan, scannedFlow } from "./lineScanner.js"
import { protocolNumbers } from "./protocols.js"
import { repeats, scanEnd } from "./scan.js"
import { addressText, texts } from "./sharedStrings.js"
import { knownState } from "./states.js"
import { FALLBACK, readStraight } from "./straight.js"

/** The line needs the string parser (see above). */
export const SLOW = 0
/** A flow, the reason the line is not one, or SLOW. */
export type Result = Flow | string | typeof SLOW

/** conntrack prints each flow into a 1024-byte buffer: a flow text of 1023 bytes may have been cut. */
export const MAX_FLOW_TEXT = 1023

const USERSPACE = "[USERSPACE]"
const USERSPACE_SUFFIX = Buffer.from(` ${USERSPACE}`, "latin1")

// The words the parser looks for, as bytes.
const W_USERSPACE = wordBytes(USERSPACE)
const W_ASSURED = wordBytes("[ASSURED]")
const W_DESTROY = wordBytes("[DESTROY]")
const W_HW_OFFLOAD = wordBytes("[HW_OFFLOAD]")
const W_NEW = wordBytes("[NEW]")
const W_OFFLOAD = wordBytes("[OFFLOAD]")
const W_UNREPLIED = wordBytes("[UNREPLIED]")
const W_UPDATE = wordBytes("[UPDATE]")
const W_START = wordBytes("[start=")
const W_STOP = wordBytes("[stop=")
const W_BYTES = wordBytes("bytes")
const W_CODE = wordBytes("code")
const W_DCCP = wordBytes("dccp")
const W_DELTA_TIME = wordBytes("delta-time")
const W_GRE = wordBytes("gre")
const W_HELPER = wordBytes("helper")
const W_ICMP = wordBytes("icmp")
const W_ICMPV6 = wordBytes("icmpv6")
const W_IPV4 = wordBytes("ipv4")
const W_IPV6 = wordBytes("ipv6")
const W_KEY = wordBytes("key")
const W_LABELS = wordBytes("labels")
const W_PACKETS = wordBytes("packets")
const W_PORTID = wordBytes("portid=")
const W_PROGNAME = wordBytes("progname=")
const W_SCTP = wordBytes("sctp")
const W_SECCTX = wordBytes("secctx")
const W_SECMARK = wordBytes("secmark")
const W_SRC = wordBytes("src")
const W_TCP = wordBytes("tcp")
const W_TYPE = wordBytes("type")
const W_UDP = wordBytes("udp")
const W_UDPLITE = wordBytes("udplite")
const W_UNKNOWN = wordBytes("unknown")
const W_ZONE_ORIG = wordBytes("zone-orig")
const W_ZONE_REPLY = wordBytes("zone-reply")

const c = new Cursor()
const flow = emptyFlow()
const original = emptyTuple()
const reply = emptyTuple()

// Strings made while parsing are never slices of the buffer. With `compact`, addresses and free text are also
// shared between flows (the walker keeps its flows for long).
const INTERN_LIMIT = 65_536
let interned = new Map<string, string>()
const intern = (s: string): string => {
  const hit = interned.get(s)
  if (hit !== undefined) return hit
  if (interned.size >= INTERN_LIMIT) interned = new Map()
  interned.set(s, s)
  return s
}
let compact = false
const keep = (s: string): string => (compact ? intern(s) : s)

/** States and other short words from a small vocabulary: always shared. */
const words = new WordCache(256)

/**
 * Parses the line b[start, stop) (without its line break). `events`: a `-E` line (with an event type).
 */
export const parseBytes = (
  b: Buffer,
  start: number,
  stop: number,
  events: boolean,
  compactStrings: boolean,
  ticket = 0
): Result => {
  if (available) {
    const tuplesKept = events && compactStrings
    if (scan(b, start, stop, events, ticket, tuplesKept) === 1)
      return scannedFlow(b, start, stop, compactStrings, tuplesKept)
  } else {
    const straight = readStraight(b, start, stop, events, compactStrings)
    if (straight !== FALLBACK) return straight
  }
  compact = compactStrings
  c.b = b
  c.stop = stop
  return prefix(start, events)
}

// ---------------------------------------------------------------------------------------------------------------
// The prefix: trimming, `-o timestamp`, and lines cut at 1023 bytes.

const prefix = (start: number, events: boolean): Result => {
  const b = c.b
  let end = c.stop
  while (end > start && (b[end - 1] === 10 || b[end - 1] === 13)) end--
  const rawEnd = end
  while (end > start && (b[end - 1] as number) <= SPACE) end--
  let i = start
  while (i < end && b[i] === SPACE) i++
  if (i >= end) return "empty line"

  clearFlow(flow)
  // `-o timestamp`: "[1795597854.401955]\t" is printed before conntrack's 1024-byte flow buffer.
  let bufferStart = start
  if (b[i] === BRACKET) {
    const d = c.byteAt(i + 1)
    if (d >= 48 && d <= 57) {
      const close = find(b, CLOSE_BRACKET, i, end)
      if (close === -1) return "unterminated timestamp prefix"
      const dot = find(b, 46, i, close)
      if (uint(b, i + 1, dot === -1 ? close : dot) < 0 || (dot !== -1 && uint(b, dot + 1, close) < 0)) {
        return `bad timestamp prefix ${text(b, i, close + 1)}`
      }
      flow.timestamp = Number(ascii(b, i + 1, close))
      i = close + 1
      if (c.byteAt(i) === TAB) i++
      bufferStart = i
      while (i < end && (b[i] === TAB || b[i] === SPACE)) i++
    }
  }

  // A flow text of 1023 bytes may have been cut: its last field is unreliable, drop it. The " [USERSPACE] ..."
  // suffix is printed after the buffer, so it is not part of the count.
  if (rawEnd - bufferStart >= MAX_FLOW_TEXT) {
    if (hasHighByte(b, start, c.stop)) return SLOW
    const found = b.subarray(start, end).lastIndexOf(USERSPACE_SUFFIX)
    const us = found === -1 ? -1 : start + found
    const textEnd = us >= i ? us : rawEnd
    if (textEnd - bufferStart >= MAX_FLOW_TEXT) {
      flow.truncated = true
      let bodyEnd = textEnd
      while (bodyEnd > i && b[bodyEnd - 1] !== SPACE) bodyEnd--
      // The suffix is whole: it is read from where it starts.
      return body(i, bodyEnd, us >= i ? us + 1 : end, end, events)
    }
  }
  return body(i, end, end, end, events)
}

const cutNote = (): string => (flow.truncated ? " (the line was cut at 1023 bytes)" : "")

/** The flow text b[i, bodyEnd), then the [USERSPACE] suffix if it starts at `suffixAt` (before `end`). */
const body = (i: number, bodyEnd: number, suffixAt: number, end: number, events: boolean): Result => {
  c.limit = bodyEnd
  c.i = i
  c.tokenEnd()
  const failed = header(events)
  if (failed !== undefined) return failed
  const userspaceAt = fields(suffixAt < end ? suffixAt : -1)
  if (typeof userspaceAt === "string" || userspaceAt === SLOW) return userspaceAt
  const incomplete = completeness()
  if (incomplete !== undefined) return incomplete
  if (userspaceAt >= 0) {
    const failedSuffix = userspace(userspaceAt + USERSPACE.length, end)
    if (failedSuffix !== undefined) return failedSuffix
  }
  flow.original = makeTuple(original)
  flow.reply = makeTuple(reply)
  return makeFlow(flow)
}

// ---------------------------------------------------------------------------------------------------------------
// The header: [EVENT] [ipvN N] proto N [timeout] [STATE]

/** The event type whose tag is b[i, j), if any. */
const eventTag = (i: number, j: number): EventType | undefined => {
  const b = c.b
  switch (j - i) {
    case 5:
      return equals(b, i, j, W_NEW) ? "NEW" : undefined
    case 8:
      return equals(b, i, j, W_UPDATE) ? "UPDATE" : undefined
    case 9:
      return equals(b, i, j, W_DESTROY) ? "DESTROY" : undefined
    default:
      return undefined
  }
}

/** The protocol named b[i, j), if the CLI prints that name. */
const protocolName = (i: number, j: number): ProtocolName | undefined => {
  const b = c.b
  switch (j - i) {
    case 3:
      return equals(b, i, j, W_TCP)
        ? "tcp"
        : equals(b, i, j, W_UDP)
          ? "udp"
          : equals(b, i, j, W_GRE)
            ? "gre"
            : undefined
    case 4:
      return equals(b, i, j, W_ICMP)
        ? "icmp"
        : equals(b, i, j, W_SCTP)
          ? "sctp"
          : equals(b, i, j, W_DCCP)
            ? "dccp"
            : undefined
    case 6:
      return equals(b, i, j, W_ICMPV6) ? "icmpv6" : undefined
    case 7:
      return equals(b, i, j, W_UDPLITE) ? "udplite" : equals(b, i, j, W_UNKNOWN) ? "unknown" : undefined
    default:
      return undefined
  }
}

/** Whether b[i, j) is upper case letters, digits and underscores, starting with a letter. */
const isStateWord = (i: number, j: number): boolean => {
  const b = c.b
  const first = b[i] as number
  if (first < 65 || first > 90) return false
  for (let k = i + 1; k < j; k++) {
    const d = b[k] as number
    if (!((d >= 65 && d <= 90) || (d >= 48 && d <= 57) || d === 95)) return false
  }
  return true
}

// What the header says about the tuples that follow.
let declaredFamily: Family | undefined
let portTuples = false
let icmpTuples = false
let greTuples = false

/** Reads the header into `flow`; the reason it is wrong, if it is. */
const header = (events: boolean): string | undefined => {
  const b = c.b
  if (c.byteAt(c.i) === BRACKET) {
    flow.type = eventTag(c.i, c.j)
    if (flow.type !== undefined) {
      if (!events) return `an event line (${c.token()}) where a dump line was expected`
      c.skipSpaces(c.j)
      if (c.i >= c.limit) return "nothing after the event type"
      c.tokenEnd()
    }
  }
  if (events && flow.type === undefined) return "no event type ([NEW], [UPDATE] or [DESTROY]) at the start of the line"

  declaredFamily = undefined
  if (equals(b, c.i, c.j, W_IPV4) || equals(b, c.i, c.j, W_IPV6)) {
    declaredFamily = b[c.i + 3] === 52 ? "ipv4" : "ipv6"
    c.next()
    if (uint(b, c.i, c.j) !== (declaredFamily === "ipv4" ? 2 : 10)) {
      return `bad number after ${declaredFamily}: ${c.token()}`
    }
    c.skipSpaces(c.j)
    if (c.i >= c.limit) return "no protocol"
    c.tokenEnd()
  }

  const proto = protocolName(c.i, c.j)
  if (proto === undefined) return `unknown protocol name: ${c.token()}`
  flow.proto = proto
  c.skipSpaces(c.j)
  if (c.i >= c.limit) return "no protocol number"
  c.tokenEnd()
  const protonum = uint(b, c.i, c.j)
  if (protonum < 0 || protonum > 255) return `bad protocol number: ${c.token()}`
  const known = proto === "unknown" ? undefined : protocolNumbers[proto]
  if (known !== undefined && known !== protonum) return `protocol ${proto} is number ${known}, not ${protonum}`
  flow.protonum = protonum
  portTuples = proto === "tcp" || proto === "udp" || proto === "udplite" || proto === "sctp" || proto === "dccp"
  icmpTuples = proto === "icmp" || proto === "icmpv6"
  greTuples = proto === "gre"
  c.next()

  if (c.i < c.limit) {
    const n = uint(b, c.i, c.j)
    if (n >= 0) {
      flow.timeout = n
      c.next()
    }
  }
  if (c.i < c.limit) {
    const known = knownState(b, c.i, c.j)
    if (known !== undefined) {
      flow.state = known
      c.skipSpaces(c.j)
    } else if (b[c.i] !== BRACKET && find(b, EQUALS, c.i, c.j) === -1) {
      if (!isStateWord(c.i, c.j)) return `bad state: ${c.token()}`
      flow.state = words.get(b, c.i, c.j)
      c.skipSpaces(c.j)
    }
  }
  return undefined
}

// ---------------------------------------------------------------------------------------------------------------
// Tuples, flags and trailer fields, in any order. The second src= starts the reply tuple.

let family = NONE
let tuples = 0
let current: TupleDraft | undefined
// Where the original tuple's addresses are in the line: a reply that mirrors them (no NAT) shares their strings.
let srcFrom = 0
let srcTo = 0
let dstFrom = 0
let dstTo = 0

const familyName = (f: number): Family => (f === IPV4 ? "ipv4" : "ipv6")

/** The address in b[v, j) as a string, remembering where the original tuple's addresses are. */
const addressString = (v: number, j: number, isSrc: boolean): string => {
  if (current === original) {
    if (isSrc) {
      srcFrom = v
      srcTo = j
    } else {
      dstFrom = v
      dstTo = j
    }
  }
  return addressText(c.b, v, j, compact)
}

/**
 * The reply's address from `v` when it repeats the original's b[from, to) (no NAT): that address was checked and
 * made already; its end goes into `c.j`. Undefined when it does not.
 */
const mirrored = (v: number, from: number, to: number, made: string | undefined): string | undefined => {
  if (made === undefined || !repeats(c.b, v, c.limit, from, to)) return undefined
  c.j = scanEnd
  return made
}

/** Reads the fields up to `limit`: where a [USERSPACE] suffix starts (or `suffixAt`), the reason, or SLOW. */
const fields = (suffixAt: number): number | string | typeof SLOW => {
  const b = c.b
  family = NONE
  tuples = 0
  current = undefined
  clearTuple(original)
  clearTuple(reply)
  let userspaceAt = suffixAt
  const limit = c.limit

  while (c.i < limit) {
    const i = c.i
    const first = b[i] as number
    if (first === BRACKET) {
      c.tokenEnd()
      let j = c.j
      if (b[j - 1] !== CLOSE_BRACKET) {
        // A bracketed field may hold spaces: "[start=Wed Nov 25 09:11:29 2026]".
        const close = find(b, CLOSE_BRACKET, j, limit)
        if (close !== -1) j = close + 1
        else if (hasHighByte(b, i, j)) return SLOW
        c.j = j
      }
      const failed = flag(i, j)
      if (failed === USERSPACE_FOUND) {
        userspaceAt = i
        break
      }
      if (failed !== undefined) return failed
      c.skipSpaces(j)
      continue
    }
    // src= and dst=, the most common fields, without looking for the key's end.
    if (i + 3 < limit && b[i + 3] === EQUALS) {
      const isSrc = first === 115 && b[i + 1] === 114 && b[i + 2] === 99
      if (isSrc || (first === 100 && b[i + 1] === 115 && b[i + 2] === 116)) {
        const failed = isSrc ? src(i + 4) : dst(i + 4)
        if (failed !== undefined) return failed
        c.skipSpaces(c.j)
        continue
      }
    }
    const usual = usualField(i, first)
    if (usual !== UNUSUAL) {
      if (usual !== undefined) return usual
      c.skipSpaces(c.j)
      continue
    }
    // key=value: the key ends at the first "=" of the token; the value parsers find the token's end.
    let eq = i
    while (eq < limit) {
      const d = b[eq]
      if (d === EQUALS || d === SPACE) break
      eq++
    }
    if (eq === i || eq === limit || b[eq] === SPACE) {
      c.tokenEnd()
      return `unexpected word: ${c.token()}`
    }
    const failed = field(i, eq, first)
    if (failed !== undefined) return failed
    c.skipSpaces(c.j)
  }
  return userspaceAt
}

const USERSPACE_FOUND = 1

/** A bracketed flag or field b[i, j). */
const flag = (i: number, j: number): string | undefined | typeof USERSPACE_FOUND => {
  const b = c.b
  const n = j - i
  if (n === 9 && equals(b, i, j, W_ASSURED)) flow.assured = true
  else if (n === 11 && equals(b, i, j, W_UNREPLIED)) flow.unreplied = true
  else if (n === 9 && equals(b, i, j, W_OFFLOAD)) flow.offload = true
  else if (n === 12 && equals(b, i, j, W_HW_OFFLOAD)) flow.hwOffload = true
  else if (n === 11 && equals(b, i, j, W_USERSPACE)) return USERSPACE_FOUND
  else if (startsWith(b, i, c.stop, W_START)) flow.start = keep(text(b, i + 7, j - 1))
  else if (startsWith(b, i, c.stop, W_STOP)) flow.stop = keep(text(b, i + 6, j - 1))
  else if (eventTag(i, j) !== undefined) return `event type ${text(b, i, j)} in the middle of the line`
  return undefined
}

/*
 * The fields conntrack prints on every line, told apart by their first byte and their key with its "=": no search
 * for the key's end. Anything else (an unknown key, a key with odd bytes) goes through `field`.
 */
const W_SPORT_ = wordBytes("sport=")
const W_DPORT_ = wordBytes("dport=")
const W_PACKETS_ = wordBytes("packets=")
const W_BYTES_ = wordBytes("bytes=")
const W_ZONE_ = wordBytes("zone=")
const W_ZONE_ORIG_ = wordBytes("zone-orig=")
const W_ZONE_REPLY_ = wordBytes("zone-reply=")
const W_MARK_ = wordBytes("mark=")
const W_USE_ = wordBytes("use=")
const W_ID_ = wordBytes("id=")
const W_SECCTX_ = wordBytes("secctx=")
const W_DELTA_TIME_ = wordBytes("delta-time=")

/** Not one of the usual fields: `field` reads it. */
const UNUSUAL = 2

const usualField = (i: number, first: number): string | undefined | typeof UNUSUAL => {
  const b = c.b
  const limit = c.limit
  switch (first) {
    case 115 /* s */:
      if (startsWith(b, i, limit, W_SPORT_)) return port(i + 6, true, i)
      if (startsWith(b, i, limit, W_SECCTX_)) return secctx(i + 7)
      break
    case 100 /* d */:
      if (startsWith(b, i, limit, W_DPORT_)) return port(i + 6, false, i)
      if (startsWith(b, i, limit, W_DELTA_TIME_)) return deltaTime(i + 11)
      break
    case 112 /* p */:
      if (startsWith(b, i, limit, W_PACKETS_)) return counter(i + 8, true)
      break
    case 98 /* b */:
      if (startsWith(b, i, limit, W_BYTES_)) return counter(i + 6, false)
      break
    case 122 /* z */:
      if (startsWith(b, i, limit, W_ZONE_)) return flowZone(i + 5)
      if (startsWith(b, i, limit, W_ZONE_ORIG_)) return tupleZone(i + 10, original, i)
      if (startsWith(b, i, limit, W_ZONE_REPLY_)) return tupleZone(i + 11, reply, i)
      break
    case 109 /* m */:
      if (startsWith(b, i, limit, W_MARK_)) return mark(i + 5)
      break
    case 117 /* u */:
      if (startsWith(b, i, limit, W_USE_)) return use(i + 4)
      break
    case 105 /* i */:
      if (startsWith(b, i, limit, W_ID_)) return id(i + 3)
      break
  }
  return UNUSUAL
}

/** sport= and dport=: the key starts at `i`. */
const port = (v: number, isSrc: boolean, i: number): string | undefined => {
  if (current === undefined) return `${text(c.b, i, v - 1)}= before src=`
  const n = c.uintValue(v)
  if (n < 0 || n > 65535) return `port out of range: ${c.token()}`
  if (isSrc) current.sport = n
  else current.dport = n
  return undefined
}

/** packets= and bytes= */
const counter = (v: number, packets: boolean): string | undefined => {
  if (current === undefined) return packets ? "packets= before src=" : "bytes= before src="
  const n = c.uintValue(v)
  if (n < 0) return `bad number in ${c.token()}`
  if (packets) current.packets = n
  else current.bytes = n
  return undefined
}

/** A 32-bit number, or undefined. */
const u32 = (v: number): number | undefined => {
  const n = c.uintValue(v)
  return n < 0 || n > 0xffffffff ? undefined : n
}

const mark = (v: number): string | undefined => {
  flow.mark = u32(v)
  return flow.mark === undefined ? `bad number in ${c.token()}` : undefined
}

const use = (v: number): string | undefined => {
  flow.use = u32(v)
  return flow.use === undefined ? `bad number in ${c.token()}` : undefined
}

const secmark = (v: number): string | undefined => {
  flow.secmark = u32(v)
  return flow.secmark === undefined ? `bad number in ${c.token()}` : undefined
}

/** id=: the ICMP echo id inside an ICMP tuple that has its code and no id yet, else the conntrack id. */
const id = (v: number): string | undefined => {
  const n = c.uintValue(v)
  if (icmpTuples && current !== undefined && current.code !== undefined && current.id === undefined) {
    if (n < 0 || n > 65535) return `bad ICMP id: ${c.token()}`
    current.id = n
    return undefined
  }
  if (n < 0 || n > 0xffffffff) return `bad number in ${c.token()}`
  flow.id = n
  return undefined
}

const flowZone = (v: number): string | undefined => {
  const n = c.uintValue(v)
  if (n < 0 || n > 65535) return `bad zone: ${c.token()}`
  flow.zone = n
  return undefined
}

/** zone-orig= and zone-reply=: the key starts at `i`. */
const tupleZone = (v: number, target: TupleDraft, i: number): string | undefined => {
  if (target.src === undefined) return `${text(c.b, i, v - 1)}= before its tuple`
  const n = c.uintValue(v)
  if (n < 0 || n > 65535) return `bad zone: ${c.token()}`
  target.zone = n
  return undefined
}

const deltaTime = (v: number): string | undefined => {
  const n = c.uintValue(v)
  if (n < 0) return `bad number in ${c.token()}`
  flow.deltaTime = n
  return undefined
}

const secctx = (v: number): undefined => {
  flow.secctx = texts.getToken(c.b, v, c.limit)
  c.j = texts.end
  return undefined
}

/** type= and code= of an ICMP tuple. */
const icmpByte = (v: number, isType: boolean): string | undefined => {
  if (current === undefined) return isType ? "type= before src=" : "code= before src="
  const n = c.uintValue(v)
  if (n < 0 || n > 255) return `ICMP ${isType ? "type" : "code"} out of range: ${c.token()}`
  if (isType) current.type = n
  else current.code = n
  return undefined
}

/** srckey= and dstkey= of a GRE tuple: the key starts at `i`. */
const greKey = (v: number, isSrc: boolean, i: number): string | undefined => {
  if (current === undefined) return `${text(c.b, i, v - 1)}= before src=`
  const n = hexUint(c.b, v, c.endFrom(v))
  if (n < 0) return `bad key in ${c.token()}`
  if (isSrc) current.srckey = n
  else current.dstkey = n
  return undefined
}

/** A key=value field: key b[i, eq), the value from eq + 1. Unknown keys are ignored. */
const field = (i: number, eq: number, first: number): string | undefined | typeof SLOW => {
  const b = c.b
  const v = eq + 1
  // A key with non-ASCII bytes has another length in characters, by which the string parser tells keys apart
  // ("dékey" is 5 characters, 6 bytes like "dstkey"): it decides.
  if (hasHighByte(b, i, eq)) {
    c.endFrom(v)
    return SLOW
  }
  switch (eq - i) {
    case 3:
      if (first === 115 /* s */ && b[i + 1] === 114 && b[i + 2] === 99) return src(v)
      if (first === 100 /* d */ && b[i + 1] === 115 && b[i + 2] === 116) return dst(v)
      if (first === 117 /* u */ && b[i + 1] === 115 && b[i + 2] === 101) return use(v)
      break
    case 2:
      if (first === 105 /* i */ && b[i + 1] === 100 /* d */) return id(v)
      break
    case 4:
      if (first === 116 /* t */ && startsWith(b, i, eq, W_TYPE)) return icmpByte(v, true)
      if (first === 99 /* c */ && startsWith(b, i, eq, W_CODE)) return icmpByte(v, false)
      if (first === 109 /* m */ && b[i + 1] === 97 && b[i + 2] === 114 && b[i + 3] === 107) return mark(v)
      if (first === 122 /* z */ && b[i + 1] === 111 && b[i + 2] === 110 && b[i + 3] === 101) return flowZone(v)
      break
    case 5:
      if ((first === 115 || first === 100) && b[i + 1] === 112 && b[i + 2] === 111 && b[i + 3] === 114) {
        if (b[i + 4] !== 116) break
        return port(v, first === 115, i)
      }
      if (first === 98 /* b */ && startsWith(b, i, eq, W_BYTES)) return counter(v, false)
      break
    case 6:
      // As the string parser reads it: "src" + "key", or "d" + any two + "key".
      if (
        (first === 115 || first === 100) &&
        startsWith(b, i + 3, eq, W_KEY) &&
        startsWith(b, i, eq, W_SRC) !== (first === 100)
      ) {
        return greKey(v, first === 115, i)
      }
      if (startsWith(b, i, eq, W_SECCTX)) return secctx(v)
      if (startsWith(b, i, eq, W_HELPER)) {
        flow.helper = texts.get(b, v, c.endFrom(v))
        return undefined
      }
      if (startsWith(b, i, eq, W_LABELS)) {
        flow.labels = labels(v, c.endFrom(v))
        return undefined
      }
      break
    case 7:
      if (first === 112 /* p */ && startsWith(b, i, eq, W_PACKETS)) return counter(v, true)
      if (first === 115 && startsWith(b, i, eq, W_SECMARK)) return secmark(v)
      break
    case 9:
    case 10:
      // As the string parser reads it: "zone-orig" + any one character is the reply's zone too.
      if (startsWith(b, i, eq, W_ZONE_ORIG) || startsWith(b, i, eq, W_ZONE_REPLY)) {
        return tupleZone(v, eq - i === 9 ? original : reply, i)
      }
      if (startsWith(b, i, eq, W_DELTA_TIME)) return deltaTime(v)
      break
  }
  // An unknown key: ignored.
  c.endFrom(v)
  return undefined
}

/** src= starts a tuple: the original, then the reply. */
const src = (v: number): string | undefined => {
  if (tuples === 2) return "a third src= field"
  if (tuples === 1) {
    const same = mirrored(v, dstFrom, dstTo, original.dst)
    if (same !== undefined) {
      tuples = 2
      current = reply
      reply.src = same
      return undefined
    }
  }
  const f = c.addressValue(v)
  const j = c.j
  if (f === NONE) return `bad address in src=${text(c.b, v, j)}`
  if (family === NONE) family = f
  else if (family !== f) return `mixed address families: src=${text(c.b, v, j)}`
  current = tuples++ === 0 ? original : reply
  current.src = addressString(v, j, true)
  return undefined
}

const dst = (v: number): string | undefined => {
  if (current === undefined) return "dst= before src="
  if (current === reply) {
    const same = mirrored(v, srcFrom, srcTo, original.src)
    if (same !== undefined) {
      reply.dst = same
      return undefined
    }
  }
  const f = c.addressValue(v)
  const j = c.j
  if (f !== family) return `bad address in dst=${text(c.b, v, j)}`
  current.dst = addressString(v, j, false)
  return undefined
}

/** labels=a,b: comma-separated, possibly empty. */
const labels = (v: number, j: number): Array<string> => {
  const out: Array<string> = []
  if (v === j) return out
  let from = v
  for (let k = v; k <= j; k++) {
    if (k === j || c.b[k] === 44) {
      out.push(keep(text(c.b, from, k)))
      from = k + 1
    }
  }
  return out
}

// ---------------------------------------------------------------------------------------------------------------
// Completeness, and the [USERSPACE] suffix.

const completeness = (): string | undefined => {
  if (tuples === 0) return `no original tuple${cutNote()}`
  if (tuples === 1) return `no reply tuple${cutNote()}`
  const missing = incomplete(original, "original") ?? incomplete(reply, "reply")
  if (missing !== undefined) return missing
  const f = familyName(family)
  if (declaredFamily !== undefined && declaredFamily !== f)
    return `the line says ${declaredFamily} but its addresses are ${f}`
  flow.family = f
  return undefined
}

/** What a tuple lacks for its protocol, if anything. */
const incomplete = (tuple: TupleDraft, name: string): string | undefined => {
  if (tuple.dst === undefined) return `no dst= in the ${name} tuple${cutNote()}`
  if (portTuples && (tuple.sport === undefined || tuple.dport === undefined)) {
    return `no sport=/dport= in the ${name} tuple${cutNote()}`
  }
  if (icmpTuples && (tuple.type === undefined || tuple.code === undefined || tuple.id === undefined)) {
    return `no type=/code=/id= in the ${name} tuple${cutNote()}`
  }
  if (greTuples && (tuple.srckey === undefined || tuple.dstkey === undefined)) {
    return `no srckey=/dstkey= in the ${name} tuple${cutNote()}`
  }
  return undefined
}

/** ` [USERSPACE] portid=N progname=NAME`: the fields in b[from, end), separated by single spaces. */
const userspace = (from: number, end: number): string | undefined => {
  const b = c.b
  const suffix: { -readonly [K in keyof Userspace]: Userspace[K] } = {}
  let k = from
  while (k <= end) {
    let e = k
    while (e < end && b[e] !== SPACE) e++
    if (startsWith(b, k, e, W_PORTID)) {
      const n = uint(b, k + 7, e)
      if (n < 0 || n > 0xffffffff) return `bad number in ${text(b, k, e)}`
      suffix.portid = n
    } else if (startsWith(b, k, e, W_PROGNAME)) {
      suffix.progname = keep(text(b, k + 9, e))
    }
    k = e + 1
  }
  flow.userspace = suffix
  return undefined
}
