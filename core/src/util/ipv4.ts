/** IPv4 addresses as unsigned 32-bit integers, and CIDR subnets. Pure code. */
import { BlockList, isIPv6 } from 'node:net'

export interface Ipv4Subnet {
  /** Network address as an unsigned 32-bit integer. */
  network: number
  prefix: number
  /** Number of addresses, network and broadcast included. */
  size: number
  broadcast: number
  /** Canonical text, e.g. `10.107.0.0/16`. */
  cidr: string
}

const QUAD = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/

export function isIpv4(text: string): boolean {
  return QUAD.test(text)
}

export function ipv4ToInt(text: string): number {
  if (!isIpv4(text)) throw new TypeError(`not an IPv4 address: ${JSON.stringify(text)}`)
  return text.split('.').reduce((acc, part) => acc * 256 + Number(part), 0)
}

export function intToIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.')
}

/** Parses `a.b.c.d/n`. Host bits must be zero unless `strict` is false (then they are cleared). */
export function parseSubnet(cidr: string, { strict = true }: { strict?: boolean } = {}): Ipv4Subnet {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(cidr.trim())
  if (!m || !isIpv4(m[1]!) || Number(m[2]) > 32) throw new TypeError(`not an IPv4 CIDR subnet: ${JSON.stringify(cidr)} (expected e.g. 10.107.0.0/16)`)
  const prefix = Number(m[2])
  const size = 2 ** (32 - prefix)
  const addr = ipv4ToInt(m[1]!)
  const network = addr - (addr % size)
  if (strict && network !== addr) {
    throw new TypeError(`${cidr} has host bits set; the network address is ${intToIpv4(network)}/${prefix}`)
  }
  return { network, prefix, size, broadcast: network + size - 1, cidr: `${intToIpv4(network)}/${prefix}` }
}

export function subnetContains(subnet: Ipv4Subnet, address: string | number): boolean {
  const a = typeof address === 'number' ? address : ipv4ToInt(address)
  return a >= subnet.network && a <= subnet.broadcast
}

export function subnetsOverlap(a: Ipv4Subnet, b: Ipv4Subnet): boolean {
  return a.network <= b.broadcast && b.network <= a.broadcast
}

/** An IPv4 range with a special purpose, which endpoint addresses must not come from. */
export interface SpecialIpv4Range {
  cidr: string
  /** What it is, for error messages: `multicast (RFC 5771)`. */
  purpose: string
}

/**
 * Ranges of the IANA IPv4 Special-Purpose Address Registry (RFC 6890) and the multicast and reserved
 * blocks that an interface address must never take: packets to them are not routed like unicast
 * (multicast, broadcast), belong to the machine itself (0/8, loopback) or to one link (link-local).
 */
export const SPECIAL_IPV4_RANGES: readonly SpecialIpv4Range[] = [
  { cidr: '0.0.0.0/8', purpose: '"this network" (RFC 1122 §3.2.1.3)' },
  { cidr: '127.0.0.0/8', purpose: 'loopback (RFC 1122 §3.2.1.3)' },
  { cidr: '169.254.0.0/16', purpose: 'link-local (RFC 3927)' },
  { cidr: '192.0.0.0/24', purpose: 'IETF protocol assignments (RFC 6890)' },
  { cidr: '192.0.2.0/24', purpose: 'documentation, TEST-NET-1 (RFC 5737)' },
  { cidr: '198.51.100.0/24', purpose: 'documentation, TEST-NET-2 (RFC 5737)' },
  { cidr: '203.0.113.0/24', purpose: 'documentation, TEST-NET-3 (RFC 5737)' },
  { cidr: '224.0.0.0/4', purpose: 'multicast (RFC 5771)' },
  { cidr: '240.0.0.0/4', purpose: 'reserved, with the limited broadcast 255.255.255.255 (RFC 1112 §4, RFC 919)' },
]

/** The loopback block: only a loopback-only driver may take addresses from it. */
export const LOOPBACK_IPV4 = '127.0.0.0/8'

/** The special-purpose ranges `subnet` overlaps, in registry order. */
export function specialRangesOverlapping(subnet: Ipv4Subnet): SpecialIpv4Range[] {
  return SPECIAL_IPV4_RANGES.filter((r) => subnetsOverlap(subnet, parseSubnet(r.cidr)))
}

/**
 * Whether `host` (of a `host:port`) is an address of `subnet` as the connect will read it: an IPv4 literal in any
 * form inet_aton takes (WHATWG's URL parser reads them the same: `2137718786`, `0x7f.1`), or an IPv6 literal, where
 * `::ffff:127.107.0.2` is that IPv4 address (net.BlockList matches IPv4-mapped addresses). A name is not resolved.
 */
export function hostInSubnet(host: string, subnet: string): boolean {
  const { network, prefix } = parseSubnet(subnet, { strict: false })
  const list = new BlockList()
  list.addSubnet(intToIpv4(network), prefix, 'ipv4')
  const bare = host.replace(/^\[|\]$/g, '').replace(/%.*$/, '')
  if (bare.includes(':')) return isIPv6(bare) && list.check(bare, 'ipv6')
  let hostname: string
  try {
    hostname = new URL(`http://${bare}/`).hostname
  } catch {
    return false
  }
  return isIpv4(hostname) && list.check(hostname, 'ipv4')
}
