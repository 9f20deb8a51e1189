/** IPv4 addresses as unsigned 32-bit integers, and CIDR subnets. Pure code. */

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
