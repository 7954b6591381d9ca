/**
 * The flow model: one connection tracked by the kernel, as the `conntrack` CLI prints it.
 *
 * Every field the CLI can print has a place here; a field the line did not carry is absent, never zero.
 */
import * as Schema from "effect/Schema"

const exact = <S extends Schema.Schema.Any>(schema: S) => Schema.optionalWith(schema, { exact: true })
const Int = Schema.Int.pipe(Schema.nonNegative())

/** The three event types of `conntrack -E`. Dumped flows (`conntrack -L`) have none. */
export const EventType = Schema.Literal("NEW", "UPDATE", "DESTROY")
export type EventType = typeof EventType.Type

/** Address family, from the addresses (or the `ipv4 2` / `ipv6 10` prefix of `-o extended`). */
export const Family = Schema.Literal("ipv4", "ipv6")
export type Family = typeof Family.Type

/** Protocol names the CLI prints; anything else is printed as `unknown N`. */
export const ProtocolName = Schema.Literal("tcp", "udp", "udplite", "sctp", "dccp", "icmp", "icmpv6", "gre", "unknown")
export type ProtocolName = typeof ProtocolName.Type

// Kept in an internal module that does not load effect/Schema, so that `parse` starts fast.
export { icmpProtocols, portProtocols, protocolNumbers } from "./internal/protocols.js"

/** One direction of a flow: the original tuple (as the first packet saw it) or the reply tuple (NAT shows here). */
export const Tuple = Schema.Struct({
  src: Schema.String,
  dst: Schema.String,
  /** Port protocols (tcp, udp, udplite, sctp, dccp). */
  sport: exact(Int),
  dport: exact(Int),
  /** ICMP and ICMPv6: message type, code and echo id. */
  type: exact(Int),
  code: exact(Int),
  id: exact(Int),
  /** GRE keys. */
  srckey: exact(Int),
  dstkey: exact(Int),
  /** `zone-orig=` / `zone-reply=`. */
  zone: exact(Int),
  /** Accounting (`nf_conntrack_acct=1`): only in dumps and DESTROY events. */
  packets: exact(Int),
  bytes: exact(Int)
})
export interface Tuple extends Schema.Schema.Type<typeof Tuple> {}

/** The ` [USERSPACE] portid=N progname=NAME` suffix of events that a netlink request caused. */
export const Userspace = Schema.Struct({
  portid: exact(Int),
  progname: exact(Schema.String)
})
export interface Userspace extends Schema.Schema.Type<typeof Userspace> {}

/** A tracked connection, from one line of `conntrack -L -o id` or `conntrack -E -o id`. */
export const Flow = Schema.Struct({
  /** Event type; absent for dumped flows. */
  type: exact(EventType),
  /** Seconds since the epoch, from the `[sec.usec]` prefix of `-o timestamp`. */
  timestamp: exact(Schema.Number),
  family: Family,
  proto: ProtocolName,
  /** The protocol number (6 for tcp; the N of `unknown N`). */
  protonum: Int,
  /** Seconds left before the kernel forgets the flow; usually absent on DESTROY. */
  timeout: exact(Int),
  /** Protocol state (tcp, sctp, dccp only), e.g. `ESTABLISHED`. */
  state: exact(Schema.String),
  original: Tuple,
  reply: Tuple,
  unreplied: exact(Schema.Literal(true)),
  assured: exact(Schema.Literal(true)),
  offload: exact(Schema.Literal(true)),
  hwOffload: exact(Schema.Literal(true)),
  mark: exact(Int),
  secmark: exact(Int),
  secctx: exact(Schema.String),
  zone: exact(Int),
  /** Seconds since the flow started (`nf_conntrack_timestamp=1`). */
  deltaTime: exact(Int),
  /** `[start=...]` and `[stop=...]` of `-o ktimestamp`, as printed (local time). */
  start: exact(Schema.String),
  stop: exact(Schema.String),
  helper: exact(Schema.String),
  use: exact(Int),
  /** The conntrack id (the `id=` after the reply tuple). */
  id: exact(Int),
  labels: exact(Schema.Array(Schema.String)),
  userspace: exact(Userspace),
  /** The line was cut at conntrack's 1023-byte limit: its last field was dropped as unreliable. */
  truncated: exact(Schema.Literal(true))
})
export interface Flow extends Schema.Schema.Type<typeof Flow> {}

/**
 * The order of each protocol's states within one connection's life (conntrack's names). A conntrack entry only moves
 * forward through them; a SYN on a closed TCP entry makes the kernel destroy it and create a new one.
 */
const stateOrder: { readonly [proto: string]: { readonly [state: string]: number } } = {
  tcp: {
    SYN_SENT: 1,
    SYN_SENT2: 1,
    SYN_RECV: 2,
    ESTABLISHED: 3,
    FIN_WAIT: 4,
    CLOSE_WAIT: 5,
    LAST_ACK: 6,
    TIME_WAIT: 7,
    CLOSE: 8
  },
  sctp: {
    COOKIE_WAIT: 1,
    COOKIE_ECHOED: 2,
    ESTABLISHED: 3,
    SHUTDOWN_SENT: 4,
    SHUTDOWN_RECD: 4,
    SHUTDOWN_ACK_SENT: 5,
    CLOSED: 6
  },
  dccp: { REQUEST: 1, RESPOND: 2, PARTOPEN: 3, OPEN: 4, CLOSEREQ: 5, CLOSING: 6, TIMEWAIT: 7, CLOSED: 8 }
}

/**
 * Where a flow's state stands in its protocol's order (higher is later in the connection's life); 0 when the protocol
 * has no states (udp, icmp, gre) or the state is one without a place in the order (TCP `NONE`, SCTP heartbeats).
 */
export const stateRank = (flow: Flow): number =>
  flow.state === undefined ? 0 : (stateOrder[flow.proto]?.[flow.state] ?? 0)

const closedStates: { readonly [proto: string]: ReadonlySet<string> } = {
  tcp: new Set(["TIME_WAIT", "CLOSE"]),
  sctp: new Set(["CLOSED"]),
  dccp: new Set(["TIMEWAIT", "CLOSED"])
}

/**
 * A connection that is over though the kernel still remembers it: TCP `TIME_WAIT` or `CLOSE`, SCTP `CLOSED`, DCCP
 * `TIMEWAIT` or `CLOSED`. Stateless protocols (udp, icmp, gre) end only by a DESTROY.
 */
export const isClosed = (flow: Flow): boolean =>
  flow.state !== undefined && closedStates[flow.proto]?.has(flow.state) === true
