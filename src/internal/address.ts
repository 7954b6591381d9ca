/**
 * IPv4 and IPv6 addresses checked in place, in a `Buffer`: the same rules as the string parser's.
 *
 * @internal
 */

/** No valid address. */
export const NONE = 0
export const IPV4 = 4
export const IPV6 = 6

/** Whether b[from, to) is a dotted IPv4 address (four decimal octets of 1 to 3 digits, each at most 255). */
export const isIPv4 = (b: Buffer, from: number, to: number): boolean => {
  let dots = 0
  let digits = 0
  let octet = 0
  for (let k = from; k < to; k++) {
    const c = b[k] as number
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
export const isIPv6 = (b: Buffer, from: number, to: number): boolean => {
  const n = to - from
  if (n < 2 || n > 45) return false
  let k = from
  let groups = 0
  let digits = 0
  let gap = false
  let afterGap = false
  if (b[from] === 58) {
    if (b[from + 1] !== 58) return false
    gap = true
    afterGap = true
    k = from + 2
  }
  let groupStart = k
  for (; k < to; k++) {
    const c = b[k] as number
    if (c === 58) {
      if (digits === 0) return false
      groups++
      digits = 0
      afterGap = false
      if (k + 1 < to && b[k + 1] === 58) {
        if (gap) return false
        gap = true
        afterGap = true
        k++
      }
      groupStart = k + 1
    } else if (c === 46) {
      if (!isIPv4(b, groupStart, to)) return false
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
