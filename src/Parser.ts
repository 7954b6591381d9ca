/**
 * Parsers for the two text formats of the `conntrack` CLI: `-L -o id` (dump) and `-E -o id` (events).
 *
 * Both are pure and total: they return the flow or a `LineParseError` naming the line and the reason, and never
 * throw. They accept the `-o extended`, `-o timestamp`, `-o ktimestamp` and `-o labels` variants, padding of any
 * width, flag tags anywhere, and lines cut at conntrack's 1023-byte limit.
 */
import * as Either from "effect/Either"
import { LineParseError } from "./Errors.js"
import type { EventType, Family, Flow, ProtocolName, Tuple, Userspace } from "./Flow.js"
import { icmpProtocols, portProtocols, protocolNumbers } from "./Flow.js"

/** conntrack prints each flow into a 1024-byte buffer: a flow text of 1023 characters may have been cut. */
export const MAX_FLOW_TEXT = 1023

/** Parses one line of `conntrack -L` output (no event type). */
export const parseDumpLine = (line: string): Either.Either<Flow, LineParseError> => parseLine(line, "dump")

/** Parses one line of `conntrack -E` output (starts with `[NEW]`, `[UPDATE]` or `[DESTROY]`). */
export const parseEventLine = (line: string): Either.Either<Flow, LineParseError> => parseLine(line, "events")

/** The two output formats of the CLI. */
export type LineFormat = "dump" | "events"

/** Parses one line of either format. */
export const parseLine = (line: string, format: LineFormat): Either.Either<Flow, LineParseError> => {
  let result: Flow | string
  try {
    result = parse(line, format === "events")
  } catch (cause) {
    // Not expected: the parser checks everything it reads. Kept so that no input can ever escape as a throw.
    result = `internal parser failure (${String(cause)})`
  }
  return typeof result === "string" ? Either.left(new LineParseError({ line, reason: result })) : Either.right(result)
}

// ---------------------------------------------------------------------------------------------------------------
// Interning: flows kept in a table must not keep the line (or the whole read chunk) they were sliced from alive,
// and the same addresses and words repeat across flows.

const INTERN_LIMIT = 65_536
let interned = new Map<string, string>()

const intern = (s: string): string => {
  const hit = interned.get(s)
  if (hit !== undefined) return hit
  if (interned.size >= INTERN_LIMIT) interned = new Map()
  // A copy that shares no memory with the line the slice came from.
  const copy = s.length < 13 ? s : (JSON.parse(JSON.stringify(s)) as string)
  interned.set(copy, copy)
  return copy
}

// ---------------------------------------------------------------------------------------------------------------

const SPACE = 32
const TAB = 9

const eventTags: Record<string, EventType> = { "[NEW]": "NEW", "[UPDATE]": "UPDATE", "[DESTROY]": "DESTROY" }
const knownProtocols: Record<string, number> = protocolNumbers
const USERSPACE = " [USERSPACE]"

type MutableTuple = { -readonly [K in keyof Tuple]: Tuple[K] }
type MutableFlow = { -readonly [K in keyof Flow]: Flow[K] }

/** A non-negative decimal integer no larger than 2^53 - 1 (so exact), or -1. */
const parseUint = (s: string): number => {
  const n = s.length
  if (n === 0 || n > 16) return -1
  let v = 0
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i) - 48
    if (c < 0 || c > 9) return -1
    v = v * 10 + c
  }
  return v <= Number.MAX_SAFE_INTEGER ? v : -1
}

const parseHex = (s: string): number => {
  if (s.length < 3 || s.length > 18 || s.charCodeAt(0) !== 48 || (s.charCodeAt(1) | 32) !== 120) return -1
  let v = 0
  for (let i = 2; i < s.length; i++) {
    const c = s.charCodeAt(i) | 32
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
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
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

const isHexGroup = (g: string): boolean => {
  if (g.length === 0 || g.length > 4) return false
  for (let i = 0; i < g.length; i++) {
    const c = g.charCodeAt(i) | 32
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false
  }
  return true
}

/** Groups of an IPv6 address side ("a:b:c" or "a:b:1.2.3.4"), counting a dotted tail as two; -1 if invalid. */
const ipv6Groups = (side: string): number => {
  if (side === "") return 0
  const groups = side.split(":")
  let count = 0
  for (let k = 0; k < groups.length; k++) {
    const g = groups[k] as string
    if (k === groups.length - 1 && g.includes(".")) {
      if (!isIPv4(g)) return -1
      count += 2
    } else if (isHexGroup(g)) {
      count++
    } else {
      return -1
    }
  }
  return count
}

const isIPv6 = (s: string): boolean => {
  if (s.length < 2 || s.length > 45) return false
  const gap = s.indexOf("::")
  if (gap === -1) return ipv6Groups(s) === 8
  if (s.indexOf("::", gap + 1) !== -1) return false
  const head = ipv6Groups(s.slice(0, gap))
  const tail = ipv6Groups(s.slice(gap + 2))
  if (head < 0 || tail < 0 || head + tail > 7) return false
  // A dotted IPv4 tail must come last: "::1.2.3.4" yes, "1.2.3.4::" no.
  return !s.slice(0, gap).includes(".")
}

// Addresses already seen valid, interned. Membership is validity, so the hot path does one lookup.
const ADDRESS_LIMIT = 65_536
let addresses = new Map<string, string>()

/** The interned address, or undefined when it is not an IPv4 or IPv6 address. */
const address = (s: string): string | undefined => {
  const hit = addresses.get(s)
  if (hit !== undefined) return hit
  if (!isIPv4(s) && !isIPv6(s)) return undefined
  if (addresses.size >= ADDRESS_LIMIT) addresses = new Map()
  const copy = intern(s)
  addresses.set(copy, copy)
  return copy
}

const familyOf = (address: string): Family => (address.includes(":") ? "ipv6" : "ipv4")

const tupleFields = new Set(["sport", "dport", "type", "code", "srckey", "dstkey", "packets", "bytes"])

const describeTuple = (which: 1 | 2) => (which === 1 ? "original" : "reply")

/** The flow, or the reason the line is not one. */
const parse = (line: string, events: boolean): Flow | string => {
  let end = line.length
  while (end > 0 && (line.charCodeAt(end - 1) === 10 || line.charCodeAt(end - 1) === 13)) end--
  const rawEnd = end
  while (end > 0 && line.charCodeAt(end - 1) <= SPACE) end--
  let pos = 0
  while (pos < end && line.charCodeAt(pos) === SPACE) pos++
  if (pos >= end) return "empty line"
  // Where conntrack's 1024-byte flow buffer starts: the line start, or after the timestamp prefix.
  let bufferStart = 0

  const flow = {} as MutableFlow

  // `-o timestamp`: "[1795597854.401955]\t" before the flow text.
  if (line.charCodeAt(pos) === 91 /* [ */) {
    const c = line.charCodeAt(pos + 1)
    if (c >= 48 && c <= 57) {
      const close = line.indexOf("]", pos)
      if (close === -1 || close > end) return "unterminated timestamp prefix"
      const ts = line.slice(pos + 1, close)
      const dot = ts.indexOf(".")
      const sec = parseUint(dot === -1 ? ts : ts.slice(0, dot))
      const usec = dot === -1 ? 0 : parseUint(ts.slice(dot + 1))
      if (sec < 0 || usec < 0) return `bad timestamp prefix [${ts}]`
      flow.timestamp = dot === -1 ? sec : Number(ts)
      pos = close + 1
      if (line.charCodeAt(pos) === TAB) pos++
      bufferStart = pos
      while (pos < end && (line.charCodeAt(pos) === TAB || line.charCodeAt(pos) === SPACE)) pos++
    }
  }

  // The ` [USERSPACE] portid=N progname=NAME` suffix is printed after the (possibly cut) flow text.
  let bodyEnd = end
  const us = line.lastIndexOf(USERSPACE, end)
  if (us >= pos) bodyEnd = us
  const truncated = (us >= pos ? us : rawEnd) - bufferStart >= MAX_FLOW_TEXT

  // ---- header: [EVENT] [ipvN N] proto N [timeout] [STATE]
  let i = pos
  let token = ""
  const next = (): boolean => {
    while (i < bodyEnd && line.charCodeAt(i) === SPACE) i++
    if (i >= bodyEnd) return false
    let j = line.indexOf(" ", i)
    if (j === -1 || j > bodyEnd) j = bodyEnd
    // A bracketed field may hold spaces: "[start=Wed Nov 25 09:11:29 2026]".
    if (line.charCodeAt(i) === 91 && line.charCodeAt(j - 1) !== 93) {
      const close = line.indexOf("]", j)
      if (close !== -1 && close < bodyEnd) j = close + 1
    }
    token = line.slice(i, j)
    i = j
    return true
  }
  // The last field of a cut line is unreliable: drop it.
  if (truncated) {
    let cut = bodyEnd
    while (cut > pos && line.charCodeAt(cut - 1) !== SPACE) cut--
    bodyEnd = cut
  }

  if (!next()) return "empty line"
  const eventType = eventTags[token]
  if (eventType !== undefined) {
    if (!events) return `an event line (${token}) where a dump line was expected`
    flow.type = eventType
    if (!next()) return "nothing after the event type"
  } else if (events) {
    return "no event type ([NEW], [UPDATE] or [DESTROY]) at the start of the line"
  }

  let declaredFamily: Family | undefined
  if (token === "ipv4" || token === "ipv6") {
    declaredFamily = token
    if (!next()) return "nothing after the address family"
    const n = parseUint(token)
    if (n !== (declaredFamily === "ipv4" ? 2 : 10)) return `bad number after ${declaredFamily}: ${token}`
    if (!next()) return "no protocol"
  }

  const protoName = token
  const expected = protoName === "unknown" ? -1 : knownProtocols[protoName]
  if (expected === undefined) return `unknown protocol name: ${protoName}`
  if (!next()) return "no protocol number"
  const protonum = parseUint(token)
  if (protonum < 0 || protonum > 255) return `bad protocol number: ${token}`
  if (expected !== -1 && expected !== protonum) return `protocol ${protoName} is number ${expected}, not ${protonum}`
  flow.proto = protoName as ProtocolName
  flow.protonum = protonum
  const proto = flow.proto

  let more = next()
  if (more) {
    const timeout = parseUint(token)
    if (timeout >= 0) {
      flow.timeout = timeout
      more = next()
    }
  }
  if (more && token.indexOf("=") === -1 && token.charCodeAt(0) !== 91) {
    if (!/^[A-Z][A-Z0-9_]*$/.test(token)) return `bad state: ${token}`
    flow.state = intern(token)
    more = next()
  }

  // ---- fields: tuples, tags, key=value
  let original: MutableTuple | undefined
  let reply: MutableTuple | undefined
  let current: MutableTuple | undefined
  let which: 0 | 1 | 2 = 0
  while (more) {
    const t = token
    const eq = t.indexOf("=")
    if (t.charCodeAt(0) === 91 /* [ */) {
      if (eq === -1) {
        switch (t) {
          case "[UNREPLIED]":
            flow.unreplied = true
            break
          case "[ASSURED]":
            flow.assured = true
            break
          case "[OFFLOAD]":
            flow.offload = true
            break
          case "[HW_OFFLOAD]":
            flow.hwOffload = true
            break
          default:
            if (eventTags[t] !== undefined) return `event type ${t} in the middle of the line`
        }
      } else if (t.charCodeAt(t.length - 1) === 93) {
        const key = t.slice(1, eq)
        if (key === "start") flow.start = intern(t.slice(eq + 1, -1))
        else if (key === "stop") flow.stop = intern(t.slice(eq + 1, -1))
      }
      more = next()
      continue
    }
    if (eq <= 0) return `unexpected word: ${t}`
    const key = t.slice(0, eq)
    const value = t.slice(eq + 1)
    if (key === "src") {
      if (which === 2) return "a third src= field"
      which = which === 0 ? 1 : 2
      current = { src: "", dst: "" }
      if (which === 1) original = current
      else reply = current
      const src = address(value)
      if (src === undefined) return `bad address in src=${value}`
      const family = familyOf(src)
      current.src = src
      if (flow.family === undefined) flow.family = family
      else if (flow.family !== family) return `mixed address families: src=${value}`
    } else if (key === "dst") {
      if (current === undefined) return "dst= before src="
      const dst = address(value)
      if (dst === undefined || familyOf(dst) !== flow.family) return `bad address in dst=${value}`
      current.dst = dst
    } else if (
      key === "id" &&
      current !== undefined &&
      icmpProtocols.has(proto) &&
      current.code !== undefined &&
      current.id === undefined
    ) {
      const n = parseUint(value)
      if (n < 0 || n > 65535) return `bad ICMP id: ${t}`
      current.id = n
    } else if (tupleFields.has(key)) {
      if (current === undefined) return `${key}= before src=`
      const n = key === "srckey" || key === "dstkey" ? parseHex(value) : parseUint(value)
      if (n < 0) return `bad number in ${t}`
      if ((key === "sport" || key === "dport") && n > 65535) return `port out of range: ${t}`
      if ((key === "type" || key === "code") && n > 255) return `ICMP ${key} out of range: ${t}`
      current[key as "sport"] = n
    } else if (key === "zone-orig" || key === "zone-reply") {
      const target = key === "zone-orig" ? original : reply
      if (target === undefined) return `${key}= before its tuple`
      const n = parseUint(value)
      if (n < 0 || n > 65535) return `bad zone: ${t}`
      target.zone = n
    } else if (key === "portid" || key === "progname") {
      // Only after " [USERSPACE]", which ends the body; elsewhere an unknown field.
    } else {
      switch (key) {
        case "mark":
        case "secmark":
        case "zone":
        case "use":
        case "id":
        case "delta-time": {
          const n = parseUint(value)
          if (n < 0) return `bad number in ${t}`
          if (key !== "delta-time" && n > 0xffffffff) return `${key}= out of range: ${t}`
          if (key === "delta-time") flow.deltaTime = n
          else flow[key] = n
          break
        }
        case "secctx":
          flow.secctx = intern(value)
          break
        case "helper":
          flow.helper = intern(value)
          break
        case "labels":
          flow.labels = value === "" ? [] : value.split(",").map(intern)
          break
        default:
        // Unknown key=value fields are ignored.
      }
    }
    more = next()
  }

  // ---- the [USERSPACE] suffix
  if (bodyEnd < end && line.startsWith(USERSPACE, us)) {
    const userspace: { -readonly [K in keyof Userspace]: Userspace[K] } = {}
    for (const field of line.slice(us + USERSPACE.length, end).split(" ")) {
      if (field.startsWith("portid=")) {
        const n = parseUint(field.slice(7))
        if (n < 0) return `bad number in ${field}`
        userspace.portid = n
      } else if (field.startsWith("progname=")) {
        userspace.progname = intern(field.slice(9))
      }
    }
    flow.userspace = userspace
  }

  // ---- completeness
  const cutNote = truncated ? " (the line was cut at 1023 bytes)" : ""
  for (const w of [1, 2] as const) {
    const tuple = w === 1 ? original : reply
    const name = describeTuple(w)
    if (tuple === undefined) return `no ${name} tuple${cutNote}`
    if (tuple.dst === "") return `no dst= in the ${name} tuple${cutNote}`
    if (portProtocols.has(proto) && (tuple.sport === undefined || tuple.dport === undefined)) {
      return `no sport=/dport= in the ${name} tuple${cutNote}`
    }
    if (icmpProtocols.has(proto) && (tuple.type === undefined || tuple.code === undefined)) {
      return `no type=/code= in the ${name} tuple${cutNote}`
    }
    if (proto === "gre" && (tuple.srckey === undefined || tuple.dstkey === undefined)) {
      return `no srckey=/dstkey= in the ${name} tuple${cutNote}`
    }
  }
  if (declaredFamily !== undefined && declaredFamily !== flow.family) {
    return `the line says ${declaredFamily} but its addresses are ${flow.family}`
  }
  flow.original = original as Tuple
  flow.reply = reply as Tuple
  if (truncated) flow.truncated = true
  return flow
}
