import { NgrokdError, parseSubnet, subnetContains, subnetsOverlap, type Ipv4Subnet } from '@ngrokd/core/driver'
import { decodeSockaddrDl, decodeSockaddrIn, type IfaddrsEntry } from '@ngrokd/driver-loopback-alias/darwin'
import { decodeMaskPrefix, RTF_BROADCAST, RTF_GATEWAY, RTF_LOCAL, RTF_MULTICAST, RTF_WASCLONED, type Route } from './route-dump.js'

export interface SubnetConflict {
  kind: 'address' | 'route'
  /** The conflicting address or route destination in CIDR form. */
  cidr: string
  /** The interface it is on. */
  interface: string
  /** e.g. `route 10.107.0.0/16 via utun3`, `address 10.107.0.5/24 on en5`. */
  description: string
}

export interface SubnetConflictInput {
  subnet: Ipv4Subnet
  /** Our own utun, when it exists: its addresses and routes are ours. */
  ownInterface?: string
  /** getifaddrs(3): interface names by index (AF_LINK entries) and IPv4 addresses. */
  ifaddrs: readonly IfaddrsEntry[]
  routes: readonly Route[]
}

/**
 * Addresses and routes on other interfaces that `subnet` overlaps: a host address from the subnet
 * on our utun would shadow them (a VPN's routes, a LAN).
 *
 * Not conflicts: anything on our own interface; default routes (/0 overlaps everything and is the
 * fallback our /32 host routes are meant to win over); and the host routes the kernel makes per
 * local, broadcast and multicast address (RTF_LOCAL, RTF_BROADCAST, RTF_MULTICAST) or clones from
 * a network route (RTF_WASCLONED, e.g. ARP entries) — the address itself, or the route it was
 * cloned from, is reported instead.
 */
export function findSubnetConflicts({ subnet, ownInterface, ifaddrs, routes }: SubnetConflictInput): SubnetConflict[] {
  const names = new Map<number, string>()
  for (const e of ifaddrs) {
    const link = e.addr ? decodeSockaddrDl(e.addr) : undefined
    if (link && link.index > 0) names.set(link.index, e.name || link.name)
  }
  const found: SubnetConflict[] = []
  for (const e of ifaddrs) {
    const address = e.addr ? decodeSockaddrIn(e.addr) : undefined
    if (address === undefined || e.name === ownInterface || !subnetContains(subnet, address)) continue
    const prefix = (e.netmask && decodeMaskPrefix(e.netmask)) ?? 32
    const cidr = `${address}/${prefix}`
    found.push({ kind: 'address', cidr, interface: e.name, description: `address ${cidr} on ${e.name}` })
  }
  for (const r of routes) {
    if (r.prefix === 0 || r.flags & (RTF_LOCAL | RTF_BROADCAST | RTF_MULTICAST | RTF_WASCLONED)) continue
    const ifname = names.get(r.index) ?? `interface index ${r.index}`
    if (ifname === ownInterface) continue
    const dst = parseSubnet(`${r.dst}/${r.prefix}`, { strict: false })
    if (!subnetsOverlap(subnet, dst)) continue
    const via = r.flags & RTF_GATEWAY && r.gateway !== undefined ? `via ${r.gateway} (${ifname})` : `via ${ifname}`
    found.push({ kind: 'route', cidr: dst.cidr, interface: ifname, description: `route ${dst.cidr} ${via}` })
  }
  const seen = new Set<string>()
  return found.filter((c) => !seen.has(c.description) && seen.add(c.description))
}

/** The refusal `open()` raises (and `ngrokd doctor` shows): names up to three conflicts and the way out. */
export function conflictError(subnet: Ipv4Subnet, conflicts: readonly SubnetConflict[]): NgrokdError {
  const shown = conflicts.slice(0, 3).map((c) => c.description)
  const more = conflicts.length > shown.length ? ` and ${conflicts.length - shown.length} more` : ''
  return new NgrokdError('NGROKD_ERR_ADDRESS_CONFLICT', `darwin-utun: net.subnet ${subnet.cidr} overlaps ${shown.join(', ')}${more}`, {
    hint: 'choose a net.subnet that no interface or route uses (see `netstat -rn -f inet`), or set net.force: true to use it anyway',
  })
}
