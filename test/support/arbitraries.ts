// Generators of flows that conntrack could print, for property tests.
import * as fc from "effect/FastCheck"
import type { EventType, Family, Flow, ProtocolName, Tuple } from "../../src/Flow.js"
import { protocolNumbers } from "../../src/Flow.js"

const u8 = fc.integer({ min: 0, max: 255 })
const u16 = fc.integer({ min: 0, max: 65535 })
const u32 = fc.integer({ min: 0, max: 0xffffffff })
const counter = fc.maxSafeInteger().map((n) => Math.abs(n))
const word = fc.stringMatching(/^[a-z][a-z0-9_:.-]{0,20}$/)

const ipv4 = fc.tuple(u8, u8, u8, u8).map((o) => o.join("."))
const ipv6 = fc.oneof(
  fc.ipV6().filter((a) => !a.includes(".") || /^[0-9a-f:]*:[0-9.]+$/.test(a)),
  fc.constantFrom("::1", "fe80::1", "2001:db8::dead:beef", "::ffff:127.0.0.1")
)
const address = (family: Family) => (family === "ipv4" ? ipv4 : ipv6)

const protocol = fc.constantFrom<ProtocolName>(
  "tcp",
  "udp",
  "udplite",
  "sctp",
  "dccp",
  "icmp",
  "icmpv6",
  "gre",
  "unknown"
)

const tuple = (family: Family, proto: ProtocolName): fc.Arbitrary<Tuple> => {
  const shape: Record<string, fc.Arbitrary<unknown>> = { src: address(family), dst: address(family) }
  const required = ["src", "dst"]
  if (proto === "tcp" || proto === "udp" || proto === "udplite" || proto === "sctp" || proto === "dccp") {
    shape.sport = u16
    shape.dport = u16
    required.push("sport", "dport")
  } else if (proto === "icmp" || proto === "icmpv6") {
    shape.type = u8
    shape.code = u8
    shape.id = u16
    required.push("type", "code", "id")
  } else if (proto === "gre") {
    shape.srckey = u16
    shape.dstkey = u16
    required.push("srckey", "dstkey")
  }
  return fc
    .record({
      fields: fc.record(shape, { requiredKeys: required as Array<never> }),
      zone: fc.option(u16, { nil: undefined }),
      counters: fc.option(fc.tuple(counter, counter), { nil: undefined })
    })
    .map(({ fields, zone, counters }) => {
      const t = { ...fields } as { -readonly [K in keyof Tuple]: Tuple[K] }
      if (zone !== undefined) t.zone = zone
      if (counters !== undefined) {
        t.packets = counters[0]
        t.bytes = counters[1]
      }
      return t as Tuple
    })
}

const states: Partial<Record<ProtocolName, ReadonlyArray<string>>> = {
  tcp: ["NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE"],
  sctp: ["CLOSED", "COOKIE_WAIT", "ESTABLISHED", "SHUTDOWN_SENT", "HEARTBEAT_SENT"],
  dccp: ["REQUEST", "RESPOND", "PARTOPEN", "OPEN", "CLOSEREQ", "TIMEWAIT"]
}

const date = fc
  .record({
    d: fc.constantFrom("Mon", "Tue", "Wed"),
    m: fc.constantFrom("Jan", "Nov"),
    day: fc.integer({ min: 1, max: 28 }),
    t: fc.integer({ min: 0, max: 86399 }),
    y: fc.integer({ min: 2020, max: 2030 })
  })
  .map(({ d, m, day, t, y }) => {
    const hms = [Math.floor(t / 3600), Math.floor(t / 60) % 60, t % 60].map((n) => String(n).padStart(2, "0"))
    return `${d} ${m} ${String(day).padStart(2, " ")} ${hms.join(":")} ${y}`
  })

const optionals = {
  timestamp: fc
    .integer({ min: 0, max: 4_000_000_000 })
    .chain((s) => fc.integer({ min: 0, max: 999_999 }).map((us) => (s * 1e6 + us) / 1e6)),
  timeout: fc.integer({ min: 0, max: 2_000_000 }),
  unreplied: fc.constant(true as const),
  mark: u32,
  secmark: u32,
  secctx: word,
  zone: u16,
  deltaTime: u32,
  start: date,
  stop: date,
  helper: word,
  use: u32,
  id: u32,
  labels: fc.array(fc.stringMatching(/^[a-z][a-z0-9_-]{0,10}$/), { minLength: 1, maxLength: 3 }),
  userspace: fc.record({ portid: u32, progname: fc.stringMatching(/^[a-z][a-z0-9_-]{0,10}$/) }, { requiredKeys: [] })
}

/** Any flow conntrack could print; `eventType` chooses dumped (undefined) or event flows. */
export const flow = (eventType: fc.Arbitrary<EventType | undefined>): fc.Arbitrary<Flow> =>
  fc
    .record({
      family: fc.constantFrom<Family>("ipv4", "ipv6"),
      proto: protocol,
      unknownNumber: fc.integer({ min: 0, max: 255 }).filter((n) => !Object.values(protocolNumbers).includes(n))
    })
    .chain(({ family, proto, unknownNumber }) =>
      fc
        .record(
          {
            type: eventType,
            original: tuple(family, proto),
            reply: tuple(family, proto),
            state: states[proto]
              ? fc.option(fc.constantFrom(...(states[proto] ?? [])), { nil: undefined })
              : fc.constant(undefined),
            status: fc.constantFrom(undefined, "assured", "offload", "hwOffload"),
            rest: fc.record(optionals, { requiredKeys: [] })
          },
          { requiredKeys: ["original", "reply", "state", "status", "rest", "type"] }
        )
        .map(({ type, original, reply, state, status, rest }) => {
          const f: Record<string, unknown> = {
            family,
            proto,
            protonum: proto === "unknown" ? unknownNumber : protocolNumbers[proto],
            original,
            reply,
            ...rest
          }
          if (type !== undefined) f.type = type
          if (state !== undefined) f.state = state
          if (status !== undefined) f[status] = true
          return f as unknown as Flow
        })
    )
