// Which link of the configured name is ngrokd's: the tag it carries, the group a start puts it in, the kinds ngrokd makes.
import { NgrokdError } from '@ngrokd/core/driver'
import { IFF_UP } from './netlink/constants.js'
import { setLinkAliasRequest, type LinkMessage } from './netlink/messages.js'
import { netlinkError } from './netlink/netlink-error.js'
import type { RouteSocket } from './netlink/route-socket.js'
import { dumpAddresses } from './netlink/queries.js'

/** The link kinds ngrokd makes: a dummy, else (no CONFIG_DUMMY) a bridge without ports. */
export const LINK_KINDS_WE_MAKE: ReadonlySet<string> = new Set(['dummy', 'bridge'])

/**
 * The IFLA_IFALIAS (<linux/if_link.h>; `ip link show` prints it as `alias …`) ngrokd gives the link
 * it creates. Only a link carrying it is adopted after a crash, and so deleted at stop: a user's
 * dummy or bridge that happens to have the configured name is never taken.
 */
export const LINK_TAG = 'ngrokd: endpoint addresses (managed by ngrokd, deleted when it stops)'

/**
 * The link group (IFLA_GROUP) ngrokd puts the link in with its create request, before the tag (a second request) can be
 * set: 0x6e67, "ng" in ASCII (`ip link` prints `group 28263`). It tells a link a start made and could not tag from a
 * user's of the same name (group 0, `default`, unless its owner chose one). Not the link-layer address: a bridge given
 * one in its create request has no carrier until it has a port.
 */
export const LINK_CREATE_GROUP = 0x6e67

/** Tags a link just created as ngrokd's (the kernel ignores IFLA_IFALIAS in the create request itself). */
export async function tagLink(socket: RouteSocket, link: LinkMessage): Promise<void> {
  const { index } = link
  const r = await socket.request((seq) => setLinkAliasRequest({ seq, index, alias: LINK_TAG }), { what: `RTM_NEWLINK ${link.name} alias` })
  if (r.errno !== 0) throw netlinkError('RTM_NEWLINK', r.errno, { detail: `${link.name} alias (the ngrokd tag)`, ...(r.kernelMessage === undefined ? {} : { kernelMessage: r.kernelMessage }) })
  link.alias = LINK_TAG
}

/**
 * Whether `link` is what a start stopped between creating the link and tagging it leaves: a dummy or bridge of the
 * configured name in ngrokd's {@link LINK_CREATE_GROUP} and without an alias, down, without ports or addresses. Nothing can be
 * using such a link, so it is taken as ngrokd's rather than refused at every later start (and `cleanup`). A user's
 * link of that name, fresh and down as it may be, is not in the group: refused, never deleted.
 */
export async function leftUntagged(socket: RouteSocket, link: LinkMessage, links: readonly LinkMessage[]): Promise<boolean> {
  if (link.alias || link.group !== LINK_CREATE_GROUP || !link.kind || !LINK_KINDS_WE_MAKE.has(link.kind) || link.flags & IFF_UP) return false
  if (links.some((l) => l.master === link.index)) return false
  return (await dumpAddresses(socket)).every((a) => a.index !== link.index)
}

/** Only a link ngrokd tagged as its own — a dummy, or a bridge without ports — may be adopted (and later deleted). */
export function checkAdoptable(link: LinkMessage, links: readonly LinkMessage[]): void {
  const name = link.name ?? `ifindex ${link.index}`
  if (link.alias !== LINK_TAG) {
    const what = link.kind ? `a ${link.kind} link` : 'a device'
    throw new NgrokdError(
      'NGROKD_ERR_INTERFACE_FOREIGN',
      `linux-netlink: interface ${name} already exists (${what}${link.alias ? `, alias ${JSON.stringify(link.alias)}` : ''}) and is not ngrokd's: it lacks ngrokd's tag (IFLA_IFALIAS), so it is neither used nor deleted`,
      { hint: `set net.interface_name to a name no other interface uses; if ${name} is a leftover of an older ngrokd, delete it: ip link del ${name}` },
    )
  }
  if (!link.kind || !LINK_KINDS_WE_MAKE.has(link.kind)) {
    throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `linux-netlink: interface ${name} already exists and is ${link.kind ? `a ${link.kind} link` : 'a device'}, not a dummy or bridge ngrokd made`, {
      hint: 'set net.interface_name to a name no other interface uses',
    })
  }
  const ports = links.filter((l) => l.master === link.index).map((l) => l.name ?? `ifindex ${l.index}`)
  if (ports.length > 0) {
    throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `linux-netlink: interface ${name} already exists and is a bridge with ports (${ports.join(', ')}), not one ngrokd made`, {
      hint: 'set net.interface_name to a name no other interface uses',
    })
  }
}
