/**
 * The protocol facts the parsers need, without the schemas of `Flow.ts` (loading `effect/Schema` costs a whole
 * process about 0.5 s, and `parse` needs none of it).
 *
 * @internal
 */
import type { ProtocolName } from "../Flow.js"

/** The protocol number the CLI prints next to each known name. */
export const protocolNumbers: { readonly [K in Exclude<ProtocolName, "unknown">]: number } = {
  tcp: 6,
  udp: 17,
  udplite: 136,
  sctp: 132,
  dccp: 33,
  icmp: 1,
  icmpv6: 58,
  gre: 47
}

/** Protocols whose tuples carry `sport=` and `dport=`. */
export const portProtocols: ReadonlySet<ProtocolName> = new Set(["tcp", "udp", "udplite", "sctp", "dccp"])
/** Protocols whose tuples carry `type=`, `code=` and `id=` (the ICMP id, not the conntrack id). */
export const icmpProtocols: ReadonlySet<ProtocolName> = new Set(["icmp", "icmpv6"])
