import { parseSubnet, subnetContains, subnetsOverlap, type Ipv4Subnet } from '@ngrokd/core/driver'
import {
  AF_INET,
  RT_TABLE_LOCAL,
  RT_TABLE_MAIN,
  RTN_BLACKHOLE,
  RTN_BROADCAST,
  RTN_LOCAL,
  RTN_PROHIBIT,
  RTN_THROW,
  RTN_UNREACHABLE,
} from './constants.js'
import type { AddrMessage, RouteMessage } from './messages.js'

export interface SubnetConflict {
  kind: 'address' | 'route'
  /** The conflicting address or route destination in CIDR form. */
  cidr: string
  /** Names of the interfaces it is on (empty for blackhole-style routes). */
  interfaces: string[]
  /** e.g. `route 10.107.0.0/16 dev eth0`, `address 10.107.0.5/24 on wlan0`. */
  description: string
}

export interface SubnetConflictInput {
  subnet: Ipv4Subnet
  /** ifindex of our own interface when it already exists: its addresses and routes are ours. */
  ownIndex?: number
  /** ifindex → name, for messages. */
  links: ReadonlyMap<number, string>
  addresses: readonly AddrMessage[]
  routes: readonly RouteMessage[]
}

const ROUTE_TYPE_PREFIX: Record<number, string> = {
  [RTN_LOCAL]: 'local ',
  [RTN_BROADCAST]: 'broadcast ',
  [RTN_BLACKHOLE]: 'blackhole ',
  [RTN_UNREACHABLE]: 'unreachable ',
  [RTN_PROHIBIT]: 'prohibit ',
  [RTN_THROW]: 'throw ',
}

/**
 * Addresses and routes on other interfaces that `subnet` overlaps: putting host addresses from the
 * subnet on our interface would shadow them (the seed daemon's /16 hijacked LAN and VPN routes).
 *
 * Not conflicts: anything on our own interface; default routes (/0 overlaps everything and is the
 * fallback our /32 local routes are meant to win over); and the kernel's per-address /32 `local`
 * and `broadcast` routes in the local table — the address check already names those addresses.
 */
export function findSubnetConflicts({ subnet, ownIndex, links, addresses, routes }: SubnetConflictInput): SubnetConflict[] {
  const name = (index: number) => links.get(index) ?? `ifindex ${index}`
  const found: SubnetConflict[] = []
  for (const a of addresses) {
    if (a.family !== AF_INET || a.index === ownIndex) continue
    const local = a.local ?? a.address
    if (local === undefined || !subnetContains(subnet, local)) continue
    const cidr = `${local}/${a.prefixlen}`
    found.push({ kind: 'address', cidr, interfaces: [name(a.index)], description: `address ${cidr} on ${name(a.index)}` })
  }
  for (const r of routes) {
    if (r.family !== AF_INET || r.dstLen === 0 || r.dst === undefined) continue
    if (r.oifs.length > 0 && ownIndex !== undefined && r.oifs.every((i) => i === ownIndex)) continue
    if (r.table === RT_TABLE_LOCAL && r.dstLen === 32 && (r.type === RTN_LOCAL || r.type === RTN_BROADCAST)) continue
    const dst = parseSubnet(`${r.dst}/${r.dstLen}`, { strict: false })
    if (!subnetsOverlap(subnet, dst)) continue
    const interfaces = r.oifs.map(name)
    const dev = interfaces.length > 0 ? ` dev ${interfaces.join(',')}` : ''
    const table = r.table === RT_TABLE_MAIN ? '' : r.table === RT_TABLE_LOCAL ? ' table local' : ` table ${r.table}`
    found.push({ kind: 'route', cidr: dst.cidr, interfaces, description: `${ROUTE_TYPE_PREFIX[r.type] ?? ''}route ${dst.cidr}${dev}${table}` })
  }
  const seen = new Set<string>()
  return found.filter((c) => !seen.has(c.description) && seen.add(c.description))
}
