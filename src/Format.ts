/**
 * Prints flows the way `conntrack -o id` does, field for field, so that parse(format(flow)) can be checked and
 * fake conntrack output can be generated for tests and benchmarks.
 */
import type { Flow, Tuple } from "./Flow.js"

const eventColumn = { NEW: "    [NEW]", UPDATE: " [UPDATE]", DESTROY: "[DESTROY]" } as const

const hex = (n: number) => `0x${n.toString(16)}`

const tupleText = (t: Tuple, zoneKey: string, unreplied: boolean): string => {
  let s = `src=${t.src} dst=${t.dst} `
  if (t.sport !== undefined) s += `sport=${t.sport} dport=${t.dport} `
  if (t.type !== undefined) {
    s += `type=${t.type} code=${t.code} `
    if (t.id !== undefined) s += `id=${t.id} `
  }
  if (t.srckey !== undefined) s += `srckey=${hex(t.srckey)} dstkey=${hex(t.dstkey ?? 0)} `
  if (t.zone !== undefined) s += `${zoneKey}=${t.zone} `
  if (t.packets !== undefined) s += `packets=${t.packets} bytes=${t.bytes} `
  if (unreplied) s += "[UNREPLIED] "
  return s
}

/** Options for the formatter: which `-o` variants to print. */
export interface FormatOptions {
  /** Print the `ipv4     2` / `ipv6     10` prefix of `-o extended`. */
  readonly extended?: boolean
}

const flowText = (flow: Flow, options: FormatOptions): string => {
  let s = ""
  if (flow.timestamp !== undefined) s += `[${flow.timestamp.toFixed(6)}]\t`
  if (flow.type !== undefined) s += `${eventColumn[flow.type]} `
  if (options.extended === true) s += flow.family === "ipv4" ? "ipv4     2 " : "ipv6     10 "
  s += `${flow.proto.padEnd(8)} ${flow.protonum} `
  if (flow.timeout !== undefined) s += `${flow.timeout} `
  if (flow.state !== undefined) s += `${flow.state} `
  s += tupleText(flow.original, "zone-orig", flow.unreplied === true)
  s += tupleText(flow.reply, "zone-reply", false)
  // conntrack prints one of these three, in this order of precedence.
  if (flow.hwOffload) s += "[HW_OFFLOAD] "
  else if (flow.offload) s += "[OFFLOAD] "
  else if (flow.assured) s += "[ASSURED] "
  if (flow.mark !== undefined) s += `mark=${flow.mark} `
  if (flow.secmark !== undefined) s += `secmark=${flow.secmark} `
  if (flow.secctx !== undefined) s += `secctx=${flow.secctx} `
  if (flow.zone !== undefined) s += `zone=${flow.zone} `
  if (flow.deltaTime !== undefined) s += `delta-time=${flow.deltaTime} `
  if (flow.start !== undefined) s += `[start=${flow.start}] `
  if (flow.stop !== undefined) s += `[stop=${flow.stop}] `
  if (flow.helper !== undefined) s += `helper=${flow.helper} `
  if (flow.use !== undefined) s += `use=${flow.use} `
  if (flow.id !== undefined) s += `id=${flow.id} `
  if (flow.labels !== undefined) s += `labels=${flow.labels.join(",")} `
  s = s.slice(0, -1)
  if (flow.userspace !== undefined) {
    s += " [USERSPACE]"
    if (flow.userspace.portid !== undefined) s += ` portid=${flow.userspace.portid}`
    if (flow.userspace.progname !== undefined) s += ` progname=${flow.userspace.progname}`
  }
  return s
}

/** A flow as one line of `conntrack -L -o id` (the event type, if any, is not printed). */
export const formatDumpLine = (flow: Flow, options: FormatOptions = {}): string => {
  const { type: _type, ...dumped } = flow
  return flowText(dumped, options)
}

/** A flow as one line of `conntrack -E -o id`; a flow without an event type is printed as `[UPDATE]`. */
export const formatEventLine = (flow: Flow, options: FormatOptions = {}): string =>
  flowText(flow.type === undefined ? { ...flow, type: "UPDATE" } : flow, options)
