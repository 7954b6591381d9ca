/**
 * The string parser of effect-conntrack 0.1 (a line decoded to a string, read with `charCodeAt` and `slice`), kept
 * unchanged as the reference the byte parser (`./parse.ts`) is tested against, and as the slow path for the rare
 * lines the byte parser hands back (non-ASCII text where lengths in bytes and in characters differ).
 *
 * @internal
 */
import type { EventType, Family, Flow, ProtocolName, Userspace } from "../Flow.js"
import { clearTuple, emptyTuple, makeFlow, makeTuple, type TupleDraft } from "./flow.js"
import { icmpProtocols, portProtocols, protocolNumbers } from "./protocols.js"

/** conntrack prints each flow into a 1024-byte buffer: a flow text of 1023 characters may have been cut. */
const MAX_FLOW_TEXT = 1023

// ---------------------------------------------------------------------------------------------------------------
// Strings in a parsed flow are slices of the line (and V8 keeps the whole line, or the whole chunk it was read
// in, alive for them). A flow that will be kept long is parsed with `compact`: its strings are copied out, and
// the same words and addresses are shared between flows.

const INTERN_LIMIT = 65_536
let interned = new Map<string, string>()

const intern = (s: string): string => {
  const hit = interned.get(s)
  if (hit !== undefined) return hit
  if (interned.size >= INTERN_LIMIT) interned = new Map()
  const copy = s.length < 13 ? s : detach(s)
  interned.set(copy, copy)
  return copy
}

const codes: Array<number> = []
/**
 * A copy of `s` that shares no memory with the string it was sliced from (V8 copies slices shorter than 13
 * characters already). Measured: toLowerCase can return the slice itself, and JSON round trips are slower.
 */
const detach = (s: string): string => {
  codes.length = s.length
  for (let k = 0; k < s.length; k++) codes[k] = s.charCodeAt(k)
  return String.fromCharCode.apply(null, codes)
}

const words = new Map<string, string>()
/** Short words (states) from a small vocabulary: always shared. */
const word = (s: string): string => {
  const hit = words.get(s)
  if (hit !== undefined) return hit
  const copy = s.length < 13 ? s : detach(s)
  if (words.size < 256) words.set(copy, copy)
  return copy
}

// ---------------------------------------------------------------------------------------------------------------

const SPACE = 32
const TAB = 9
const BRACKET = 91
const CLOSE_BRACKET = 93
const USERSPACE = "[USERSPACE]"

const knownProtocols = new Map<string, [ProtocolName, number]>(
  Object.entries(protocolNumbers).map(([name, number]) => [name, [name as ProtocolName, number]])
)

// Flows are built by the same constructors as the fast path's (internal/flow.ts): same fields, same order.

// The parser is synchronous and not re-entrant: one set of drafts serves every call.
const originalDraft = emptyTuple()
const replyDraft = emptyTuple()

/** The decimal integer in line[from, to), exact (at most 2^53 - 1), or -1. */
const uint = (line: string, from: number, to: number): number => {
  if (to <= from || to - from > 16) return -1
  let v = 0
  for (let k = from; k < to; k++) {
    const c = line.charCodeAt(k) - 48
    if (c < 0 || c > 9) return -1
    v = v * 10 + c
  }
  return v <= Number.MAX_SAFE_INTEGER ? v : -1
}

/** The `0x..` hexadecimal integer in line[from, to), or -1. */
const hexUint = (line: string, from: number, to: number): number => {
  if (to - from < 3 || to - from > 15 || line.charCodeAt(from) !== 48 || (line.charCodeAt(from + 1) | 32) !== 120) {
    return -1
  }
  let v = 0
  for (let k = from + 2; k < to; k++) {
    const c = line.charCodeAt(k) | 32
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1
    if (d < 0) return -1
    v = v * 16 + d
  }
  return v
}

const isIPv4 = (s: string): boolean => {
  let dots = 0
  let digits = 0
  let octet = 0
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k)
    if (c === 46) {
      if (digits === 0) return false
      dots++
      digits = 0
      octet = 0
    } else if (c >= 48 && c <= 57) {
      octet = octet * 10 + c - 48
      if (++digits > 3 || octet > 255) return false
    } else {
      return false
    }
  }
  return dots === 3 && digits > 0
}

/** One pass over an IPv6 address: hex groups of 1 to 4 digits, at most one "::", an optional dotted IPv4 tail. */
const isIPv6 = (s: string): boolean => {
  const n = s.length
  if (n < 2 || n > 45) return false
  let k = 0
  let groups = 0
  let digits = 0
  let gap = false
  let afterGap = false
  if (s.charCodeAt(0) === 58) {
    if (s.charCodeAt(1) !== 58) return false
    gap = true
    afterGap = true
    k = 2
  }
  let groupStart = k
  for (; k < n; k++) {
    const c = s.charCodeAt(k)
    if (c === 58) {
      if (digits === 0) return false
      groups++
      digits = 0
      afterGap = false
      if (k + 1 < n && s.charCodeAt(k + 1) === 58) {
        if (gap) return false
        gap = true
        afterGap = true
        k++
      }
      groupStart = k + 1
    } else if (c === 46) {
      if (!isIPv4(s.slice(groupStart))) return false
      groups += 2
      return gap ? groups <= 7 : groups === 8
    } else {
      const h = c | 32
      if (!((c >= 48 && c <= 57) || (h >= 97 && h <= 102)) || ++digits > 4) return false
      afterGap = false
    }
  }
  if (digits > 0) groups++
  else if (!afterGap) return false
  return gap ? groups <= 7 : groups === 8
}

/** The family of a valid address, or undefined. */
const familyOf = (s: string): Family | undefined =>
  s.includes(":") ? (isIPv6(s) ? "ipv6" : undefined) : isIPv4(s) ? "ipv4" : undefined

/** Whether a state word is upper case letters, digits and underscores, starting with a letter. */
const isStateWord = (line: string, i: number, j: number): boolean => {
  const c = line.charCodeAt(i)
  if (c < 65 || c > 90) return false
  for (let k = i + 1; k < j; k++) {
    const d = line.charCodeAt(k)
    if (!((d >= 65 && d <= 90) || (d >= 48 && d <= 57) || d === 95)) return false
  }
  return true
}

/** The end of the token that starts at `i`: the next space, or `limit`. */
const tokenEnd = (line: string, i: number, limit: number): number => {
  const j = line.indexOf(" ", i)
  return j === -1 || j > limit ? limit : j
}

/** The index of the next non-space at or after `i`. */
const skipSpaces = (line: string, i: number, limit: number): number => {
  while (i < limit && line.charCodeAt(i) === SPACE) i++
  return i
}

const EVENT_TAGS: ReadonlyArray<[string, EventType]> = [
  ["[NEW]", "NEW"],
  ["[UPDATE]", "UPDATE"],
  ["[DESTROY]", "DESTROY"]
]

/** The event type whose tag is line[i, j), if any. */
const eventTag = (line: string, i: number, j: number): EventType | undefined => {
  for (const [tag, type] of EVENT_TAGS) if (j - i === tag.length && line.startsWith(tag, i)) return type
  return undefined
}

const cutNote = (truncated: boolean) => (truncated ? " (the line was cut at 1023 bytes)" : "")

const same = (s: string): string => s

/** The flow, or the reason the line is not one. */
export const parseReference = (line: string, events: boolean, compact: boolean): Flow | string => {
  const keep = compact ? intern : same

  let end = line.length
  while (end > 0 && (line.charCodeAt(end - 1) === 10 || line.charCodeAt(end - 1) === 13)) end--
  const rawEnd = end
  while (end > 0 && line.charCodeAt(end - 1) <= SPACE) end--
  let i = skipSpaces(line, 0, end)
  if (i >= end) return "empty line"

  // `-o timestamp`: "[1795597854.401955]\t" is printed before conntrack's 1024-byte flow buffer.
  let bufferStart = 0
  let timestamp: number | undefined
  if (line.charCodeAt(i) === BRACKET) {
    const c = line.charCodeAt(i + 1)
    if (c >= 48 && c <= 57) {
      const close = line.indexOf("]", i)
      if (close === -1 || close > end) return "unterminated timestamp prefix"
      const dot = line.indexOf(".", i)
      const hasDot = dot !== -1 && dot < close
      if (uint(line, i + 1, hasDot ? dot : close) < 0 || (hasDot && uint(line, dot + 1, close) < 0)) {
        return `bad timestamp prefix ${line.slice(i, close + 1)}`
      }
      timestamp = Number(line.slice(i + 1, close))
      i = close + 1
      if (line.charCodeAt(i) === TAB) i++
      bufferStart = i
      while (i < end && (line.charCodeAt(i) === TAB || line.charCodeAt(i) === SPACE)) i++
    }
  }

  // A flow text of 1023 characters may have been cut: its last field is unreliable, drop it. The
  // " [USERSPACE] ..." suffix is printed after the buffer, so it is not part of the count.
  let bodyEnd = end
  let truncated = false
  if (rawEnd - bufferStart >= MAX_FLOW_TEXT) {
    const us = line.lastIndexOf(` ${USERSPACE}`, end)
    const textEnd = us >= i ? us : rawEnd
    if (textEnd - bufferStart >= MAX_FLOW_TEXT) {
      truncated = true
      bodyEnd = textEnd
      while (bodyEnd > i && line.charCodeAt(bodyEnd - 1) !== SPACE) bodyEnd--
      // The suffix is whole: it is read from where it starts.
      if (us >= i) return parseFields(line, i, bodyEnd, us + 1, end, events, keep, timestamp, truncated)
    }
  }
  return parseFields(line, i, bodyEnd, end, end, events, keep, timestamp, truncated)
}

/**
 * Parses the flow text line[i, bodyEnd) and, from `suffixAt` to `end`, the [USERSPACE] suffix if it is there.
 */
const parseFields = (
  line: string,
  i: number,
  bodyEnd: number,
  suffixAt: number,
  end: number,
  events: boolean,
  keep: (s: string) => string,
  timestamp: number | undefined,
  truncated: boolean
): Flow | string => {
  // ---- header: [EVENT] [ipvN N] proto N [timeout] [STATE]
  let j = tokenEnd(line, i, bodyEnd)
  let type: EventType | undefined
  if (line.charCodeAt(i) === BRACKET) {
    type = eventTag(line, i, j)
    if (type !== undefined) {
      if (!events) return `an event line (${line.slice(i, j)}) where a dump line was expected`
      i = skipSpaces(line, j, bodyEnd)
      if (i >= bodyEnd) return "nothing after the event type"
      j = tokenEnd(line, i, bodyEnd)
    }
  }
  if (events && type === undefined) return "no event type ([NEW], [UPDATE] or [DESTROY]) at the start of the line"

  let declaredFamily: Family | undefined
  if (j - i === 4 && (line.startsWith("ipv4", i) || line.startsWith("ipv6", i))) {
    declaredFamily = line.charCodeAt(i + 3) === 52 ? "ipv4" : "ipv6"
    i = skipSpaces(line, j, bodyEnd)
    j = tokenEnd(line, i, bodyEnd)
    const n = uint(line, i, j)
    if (n !== (declaredFamily === "ipv4" ? 2 : 10)) return `bad number after ${declaredFamily}: ${line.slice(i, j)}`
    i = skipSpaces(line, j, bodyEnd)
    if (i >= bodyEnd) return "no protocol"
    j = tokenEnd(line, i, bodyEnd)
  }

  const protoWord = line.slice(i, j)
  const known = knownProtocols.get(protoWord)
  if (known === undefined && protoWord !== "unknown") return `unknown protocol name: ${protoWord}`
  const proto: ProtocolName = known === undefined ? "unknown" : known[0]
  i = skipSpaces(line, j, bodyEnd)
  if (i >= bodyEnd) return "no protocol number"
  j = tokenEnd(line, i, bodyEnd)
  const protonum = uint(line, i, j)
  if (protonum < 0 || protonum > 255) return `bad protocol number: ${line.slice(i, j)}`
  if (known !== undefined && known[1] !== protonum) return `protocol ${proto} is number ${known[1]}, not ${protonum}`
  const ports = portProtocols.has(proto)
  const icmp = icmpProtocols.has(proto)
  const gre = proto === "gre"
  i = skipSpaces(line, j, bodyEnd)
  j = tokenEnd(line, i, bodyEnd)

  let timeout: number | undefined
  if (i < bodyEnd) {
    const n = uint(line, i, j)
    if (n >= 0) {
      timeout = n
      i = skipSpaces(line, j, bodyEnd)
      j = tokenEnd(line, i, bodyEnd)
    }
  }
  let state: string | undefined
  if (i < bodyEnd && line.charCodeAt(i) !== BRACKET) {
    const eq = line.indexOf("=", i)
    if (eq === -1 || eq >= j) {
      if (!isStateWord(line, i, j)) return `bad state: ${line.slice(i, j)}`
      state = word(line.slice(i, j))
      i = skipSpaces(line, j, bodyEnd)
    }
  }

  // ---- fields
  let family: Family | undefined
  clearTuple(originalDraft)
  clearTuple(replyDraft)
  let tuples = 0
  let current: TupleDraft | undefined
  let unreplied = false
  let assured = false
  let offload = false
  let hwOffload = false
  let mark: number | undefined
  let secmark: number | undefined
  let secctx: string | undefined
  let zone: number | undefined
  let deltaTime: number | undefined
  let start: string | undefined
  let stop: string | undefined
  let helper: string | undefined
  let use: number | undefined
  let id: number | undefined
  let labels: Array<string> | undefined
  let userspaceAt = suffixAt < end ? suffixAt : -1

  while (i < bodyEnd) {
    j = tokenEnd(line, i, bodyEnd)
    const first = line.charCodeAt(i)
    if (first === BRACKET) {
      if (line.charCodeAt(j - 1) !== CLOSE_BRACKET) {
        // A bracketed field may hold spaces: "[start=Wed Nov 25 09:11:29 2026]".
        const close = line.indexOf("]", j)
        if (close !== -1 && close < bodyEnd) j = close + 1
      }
      const n = j - i
      if (n === 9 && line.startsWith("[ASSURED]", i)) assured = true
      else if (n === 11 && line.startsWith("[UNREPLIED]", i)) unreplied = true
      else if (n === 9 && line.startsWith("[OFFLOAD]", i)) offload = true
      else if (n === 12 && line.startsWith("[HW_OFFLOAD]", i)) hwOffload = true
      else if (n === 11 && line.startsWith(USERSPACE, i)) {
        userspaceAt = i
        break
      } else if (line.startsWith("[start=", i)) start = keep(line.slice(i + 7, j - 1))
      else if (line.startsWith("[stop=", i)) stop = keep(line.slice(i + 6, j - 1))
      else if (eventTag(line, i, j) !== undefined) return `event type ${line.slice(i, j)} in the middle of the line`
      i = skipSpaces(line, j, bodyEnd)
      continue
    }
    const eq = line.indexOf("=", i)
    if (eq <= i || eq >= j) return `unexpected word: ${line.slice(i, j)}`
    const v = eq + 1
    switch (eq - i) {
      case 3:
        if (first === 115 /* s */ && line.startsWith("src", i)) {
          if (tuples === 2) return "a third src= field"
          const src = line.slice(v, j)
          const f = familyOf(src)
          if (f === undefined) return `bad address in src=${src}`
          if (family === undefined) family = f
          else if (family !== f) return `mixed address families: src=${src}`
          current = tuples++ === 0 ? originalDraft : replyDraft
          current.src = keep(src)
        } else if (first === 100 /* d */ && line.startsWith("dst", i)) {
          if (current === undefined) return "dst= before src="
          const dst = line.slice(v, j)
          if (familyOf(dst) !== family) return `bad address in dst=${dst}`
          current.dst = keep(dst)
        } else if (first === 117 /* u */ && line.startsWith("use", i)) {
          use = uint(line, v, j)
          if (use < 0 || use > 0xffffffff) return `bad number in ${line.slice(i, j)}`
        }
        break
      case 2:
        if (first === 105 /* i */ && line.charCodeAt(i + 1) === 100 /* d */) {
          const n = uint(line, v, j)
          if (icmp && current !== undefined && current.code !== undefined && current.id === undefined) {
            // The ICMP echo id inside a tuple, not the conntrack id.
            if (n < 0 || n > 65535) return `bad ICMP id: ${line.slice(i, j)}`
            current.id = n
          } else {
            if (n < 0 || n > 0xffffffff) return `bad number in ${line.slice(i, j)}`
            id = n
          }
        }
        break
      case 4:
        if (first === 116 /* t */ && line.startsWith("type", i)) {
          if (current === undefined) return "type= before src="
          const n = uint(line, v, j)
          if (n < 0 || n > 255) return `ICMP type out of range: ${line.slice(i, j)}`
          current.type = n
        } else if (first === 99 /* c */ && line.startsWith("code", i)) {
          if (current === undefined) return "code= before src="
          const n = uint(line, v, j)
          if (n < 0 || n > 255) return `ICMP code out of range: ${line.slice(i, j)}`
          current.code = n
        } else if (first === 109 /* m */ && line.startsWith("mark", i)) {
          mark = uint(line, v, j)
          if (mark < 0 || mark > 0xffffffff) return `bad number in ${line.slice(i, j)}`
        } else if (first === 122 /* z */ && line.startsWith("zone", i)) {
          zone = uint(line, v, j)
          if (zone < 0 || zone > 65535) return `bad zone: ${line.slice(i, j)}`
        }
        break
      case 5:
        if ((first === 115 || first === 100) && line.startsWith("port", i + 1)) {
          if (current === undefined) return `${line.slice(i, eq)}= before src=`
          const n = uint(line, v, j)
          if (n < 0 || n > 65535) return `port out of range: ${line.slice(i, j)}`
          if (first === 115) current.sport = n
          else current.dport = n
        } else if (first === 98 /* b */ && line.startsWith("bytes", i)) {
          if (current === undefined) return "bytes= before src="
          const n = uint(line, v, j)
          if (n < 0) return `bad number in ${line.slice(i, j)}`
          current.bytes = n
        }
        break
      case 6:
        if (
          (first === 115 || first === 100) &&
          line.startsWith("key", i + 3) &&
          line.startsWith("src", i) !== (first === 100)
        ) {
          if (current === undefined) return `${line.slice(i, eq)}= before src=`
          const n = hexUint(line, v, j)
          if (n < 0) return `bad key in ${line.slice(i, j)}`
          if (first === 115) current.srckey = n
          else current.dstkey = n
        } else if (line.startsWith("secctx", i)) {
          secctx = keep(line.slice(v, j))
        } else if (line.startsWith("helper", i)) {
          helper = keep(line.slice(v, j))
        } else if (line.startsWith("labels", i)) {
          labels = v === j ? [] : line.slice(v, j).split(",").map(keep)
        }
        break
      case 7:
        if (first === 112 /* p */ && line.startsWith("packets", i)) {
          if (current === undefined) return "packets= before src="
          const n = uint(line, v, j)
          if (n < 0) return `bad number in ${line.slice(i, j)}`
          current.packets = n
        } else if (first === 115 && line.startsWith("secmark", i)) {
          secmark = uint(line, v, j)
          if (secmark < 0 || secmark > 0xffffffff) return `bad number in ${line.slice(i, j)}`
        }
        break
      case 9:
      case 10:
        if (line.startsWith("zone-orig", i) || line.startsWith("zone-reply", i)) {
          const target = eq - i === 9 ? originalDraft : replyDraft
          if (target.src === undefined) return `${line.slice(i, eq)}= before its tuple`
          const n = uint(line, v, j)
          if (n < 0 || n > 65535) return `bad zone: ${line.slice(i, j)}`
          target.zone = n
        } else if (line.startsWith("delta-time", i)) {
          deltaTime = uint(line, v, j)
          if (deltaTime < 0) return `bad number in ${line.slice(i, j)}`
        }
        break
      default:
      // Unknown key=value fields are ignored.
    }
    i = skipSpaces(line, j, bodyEnd)
  }

  // ---- completeness
  if (tuples === 0) return `no original tuple${cutNote(truncated)}`
  if (tuples === 1) return `no reply tuple${cutNote(truncated)}`
  for (const tuple of [originalDraft, replyDraft]) {
    const name = tuple === originalDraft ? "original" : "reply"
    if (tuple.dst === undefined) return `no dst= in the ${name} tuple${cutNote(truncated)}`
    if (ports && (tuple.sport === undefined || tuple.dport === undefined)) {
      return `no sport=/dport= in the ${name} tuple${cutNote(truncated)}`
    }
    if (icmp && (tuple.type === undefined || tuple.code === undefined || tuple.id === undefined)) {
      return `no type=/code=/id= in the ${name} tuple${cutNote(truncated)}`
    }
    if (gre && (tuple.srckey === undefined || tuple.dstkey === undefined)) {
      return `no srckey=/dstkey= in the ${name} tuple${cutNote(truncated)}`
    }
  }
  if (declaredFamily !== undefined && declaredFamily !== family) {
    return `the line says ${declaredFamily} but its addresses are ${family}`
  }

  // ---- the [USERSPACE] suffix
  let userspace: { -readonly [K in keyof Userspace]: Userspace[K] } | undefined
  if (userspaceAt >= 0) {
    userspace = {}
    for (const field of line.slice(userspaceAt + USERSPACE.length, end).split(" ")) {
      if (field.startsWith("portid=")) {
        const n = uint(field, 7, field.length)
        if (n < 0 || n > 0xffffffff) return `bad number in ${field}`
        userspace.portid = n
      } else if (field.startsWith("progname=")) {
        userspace.progname = keep(field.slice(9))
      }
    }
  }

  return makeFlow({
    type,
    timestamp,
    family,
    proto,
    protonum,
    timeout,
    state,
    original: makeTuple(originalDraft),
    reply: makeTuple(replyDraft),
    unreplied: unreplied ? true : undefined,
    assured: assured ? true : undefined,
    offload: offload ? true : undefined,
    hwOffload: hwOffload ? true : undefined,
    mark,
    secmark,
    secctx,
    zone,
    deltaTime,
    start,
    stop,
    helper,
    use,
    id,
    labels,
    userspace,
    truncated: truncated ? true : undefined
  })
}
