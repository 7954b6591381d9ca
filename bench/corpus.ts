// Deterministic corpora of rich conntrack lines (counters, zones, marks, secctx, IPv6, NAT) for benchmarks.
import * as fs from "node:fs"
import type { Flow } from "../src/Flow.js"
import { formatDumpLine, formatEventLine } from "../src/Format.js"

const states = ["ESTABLISHED", "ESTABLISHED", "ESTABLISHED", "TIME_WAIT", "SYN_SENT", "FIN_WAIT", "CLOSE_WAIT"]
const events = ["NEW", "UPDATE", "UPDATE", "UPDATE", "DESTROY"] as const

const address = (i: number, v6: boolean, side: number) =>
  v6
    ? `2001:db8:${side.toString(16)}::${((i >>> 16) & 0xffff).toString(16)}:${(i & 0xffff).toString(16)}`
    : `127.${side}.${(i >>> 8) & 255}.${i & 255}`

/** The i-th flow of a corpus: every third is IPv6, every fifth is DNAT'ed, all carry counters and marks. */
export const richFlow = (i: number, type?: Flow["type"]): Flow => {
  const v6 = i % 3 === 0
  const nat = i % 5 === 0
  const src = address(i, v6, 1)
  const dst = address(i >>> 4, v6, 2)
  const sport = 1024 + (i % 60000)
  const dport = [443, 80, 5432, 6379][i % 4] ?? 443
  const counters = type === undefined || type === "DESTROY"
  const flow: { -readonly [K in keyof Flow]: Flow[K] } = {
    family: v6 ? "ipv6" : "ipv4",
    proto: "tcp",
    protonum: 6,
    timeout: 431999 - (i % 1000),
    state: type === "NEW" ? "SYN_SENT" : (states[i % states.length] ?? "ESTABLISHED"),
    original: {
      src,
      dst,
      sport,
      dport,
      zone: i % 7,
      ...(counters ? { packets: i % 1000, bytes: (i % 1000) * 1400 } : {})
    },
    reply: {
      src: nat ? address(i, v6, 3) : dst,
      dst: src,
      sport: nat ? 8443 : dport,
      dport: sport,
      ...(counters ? { packets: i % 900, bytes: (i % 900) * 1200 } : {})
    },
    assured: true,
    mark: i % 16,
    secctx: "system_u:object_r:unlabeled_t:s0",
    zone: i % 7,
    deltaTime: i % 3600,
    id: (2654435761 * (i + 1)) >>> 0
  }
  if (type !== undefined) {
    flow.type = type
    delete flow.secctx
  } else {
    flow.use = 1
  }
  return flow
}

/** Writes `count` lines of the given format to `file`. */
export const writeCorpus = (file: string, format: "dump" | "events", count: number): void => {
  const fd = fs.openSync(file, "w")
  let buffer = ""
  for (let i = 0; i < count; i++) {
    buffer +=
      format === "dump"
        ? `${formatDumpLine(richFlow(i))}\n`
        : `${formatEventLine(richFlow(i, events[i % events.length]))}\n`
    if (buffer.length > 1 << 20) {
      fs.writeSync(fd, buffer)
      buffer = ""
    }
  }
  fs.writeSync(fd, buffer)
  fs.closeSync(fd)
}

/** The phases of one connection's life as `conntrack -E` prints them. */
const lifecycle: ReadonlyArray<readonly [NonNullable<Flow["type"]>, string]> = [
  ["NEW", "SYN_SENT"],
  ["UPDATE", "SYN_RECV"],
  ["UPDATE", "ESTABLISHED"],
  ["UPDATE", "FIN_WAIT"],
  ["UPDATE", "TIME_WAIT"],
  ["DESTROY", "TIME_WAIT"]
]

/**
 * Writes `count` rich event lines of connections living their whole lives (NEW to DESTROY), interleaved so that
 * about `open` connections are alive at any time, as on a busy host.
 */
export const writeLifecycleCorpus = (file: string, count: number, open = 1200): void => {
  const fd = fs.openSync(file, "w")
  const gap = Math.ceil(open / lifecycle.length)
  let buffer = ""
  let written = 0
  for (let step = 0; written < count; step++) {
    for (let phase = 0; phase < lifecycle.length && written < count; phase++) {
      const connection = step - phase * gap
      if (connection < 0) continue
      const [type, state] = lifecycle[phase] as (typeof lifecycle)[number]
      buffer += `${formatEventLine({ ...richFlow(connection, type), state })}\n`
      written++
    }
    if (buffer.length > 1 << 20) {
      fs.writeSync(fd, buffer)
      buffer = ""
    }
  }
  fs.writeSync(fd, buffer)
  fs.closeSync(fd)
}
