import { NgrokdError, type Ipv4Subnet } from '@ngrokd/core/driver'
import { NLMSG_ERROR } from './constants.js'
import { LINUX_ERRNO } from './errno.js'
import {
  decodeAddr,
  decodeLink,
  decodeRoute,
  getAddrDumpRequest,
  getLinkDumpRequest,
  getLinkRequest,
  getRouteDumpRequest,
  type AddrMessage,
  type LinkMessage,
} from './messages.js'
import { netlinkError } from './netlink-error.js'
import type { RouteSocket } from './route-socket.js'
import { findSubnetConflicts, type SubnetConflict } from './subnet-conflicts.js'

/** The link called `name`, or undefined when there is none (ENODEV). */
export async function getLink(socket: RouteSocket, name: string): Promise<LinkMessage | undefined> {
  const r = await socket.request((seq) => getLinkRequest({ seq, name }), { what: `RTM_GETLINK ${name}` })
  if (r.errno === LINUX_ERRNO.ENODEV) return undefined
  if (r.errno !== 0) throw netlinkError('RTM_GETLINK', r.errno, { detail: name, ...(r.kernelMessage === undefined ? {} : { kernelMessage: r.kernelMessage }) })
  const reply = r.replies.find((m) => m.type !== NLMSG_ERROR)
  return reply ? decodeLink(reply) : undefined
}

export async function dumpLinks(socket: RouteSocket): Promise<LinkMessage[]> {
  return (await socket.dump((seq) => getLinkDumpRequest({ seq }), { what: 'RTM_GETLINK dump' })).map(decodeLink)
}

/** Every address of every link (RTM_GETADDR dump). */
export async function dumpAddresses(socket: RouteSocket): Promise<AddrMessage[]> {
  return (await socket.dump((seq) => getAddrDumpRequest({ seq }), { what: 'RTM_GETADDR dump' })).map(decodeAddr)
}

/** Addresses and routes on other interfaces that the subnet overlaps (RTM_GETADDR + RTM_GETROUTE dumps). */
export async function findConflicts(socket: RouteSocket, subnet: Ipv4Subnet, links: readonly LinkMessage[], ownIndex: number | undefined): Promise<SubnetConflict[]> {
  const addresses = await dumpAddresses(socket)
  const routes = (await socket.dump((seq) => getRouteDumpRequest({ seq }), { what: 'RTM_GETROUTE dump' })).map(decodeRoute)
  const names = new Map(links.filter((l) => l.name !== undefined).map((l) => [l.index, l.name!] as const))
  return findSubnetConflicts({ subnet, links: names, addresses, routes, ...(ownIndex === undefined ? {} : { ownIndex }) })
}

export function conflictError(subnet: Ipv4Subnet, conflicts: readonly SubnetConflict[]): NgrokdError {
  const shown = conflicts.slice(0, 3).map((c) => c.description)
  const more = conflicts.length > shown.length ? ` and ${conflicts.length - shown.length} more` : ''
  // another ngrokd's interface (a named instance whose subnet, chosen from its name, is this one's): never force
  const ngrokd = conflicts.some((c) => c.interfaces.some((name) => name.startsWith('ngrokd')))
  return new NgrokdError('NGROKD_ERR_ADDRESS_CONFLICT', `linux-netlink: net.subnet ${subnet.cidr} overlaps ${shown.join(', ')}${more}`, {
    hint: ngrokd
      ? 'another ngrokd (instance) serves this subnet: give this daemon a net.subnet of its own (an instance: in /etc/ngrokd/NAME.yml), never net.force'
      : 'choose a net.subnet that no interface or route uses (see `ip -4 route show table all`), or set net.force: true to use it anyway',
  })
}

