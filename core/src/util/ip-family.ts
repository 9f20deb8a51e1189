import { isIPv4, isIPv6 } from 'node:net'

/**
 * `net.isIP`'s answer (4, 6 or 0), without running Node's IPv6 pattern on text that cannot be an IPv6
 * address: every IPv6 text form has at least two colons (RFC 4291 §2.2: seven, or a `::`). Node
 * compiles that pattern on its first use, ~9 ms of a start (Node 20), and `host:port` or a host name
 * would pay it for nothing. Rule: core asks this, not `net.isIP`.
 */
export function ipFamily(text: string): 0 | 4 | 6 {
  if (isIPv4(text)) return 4
  const colon = text.indexOf(':')
  return colon !== -1 && text.indexOf(':', colon + 1) !== -1 && isIPv6(text) ? 6 : 0
}
