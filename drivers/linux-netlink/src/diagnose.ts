import { readFile } from 'node:fs/promises'
import { formatError, isNgrokdError, parseSubnet, type Check, type InterfaceInfo } from '@ngrokd/core/driver'
import { loadFfi } from './ffi/load-ffi.js'
import { LINUX_ERRNO } from './netlink/errno.js'
import { decodeError, newLinkRequest, parseMessages } from './netlink/messages.js'
import { RouteSocket } from './netlink/route-socket.js'
import { conflictError, dumpLinks, findConflicts } from './netlink/queries.js'
import { checkAdoptable, leftUntagged } from './link-ownership.js'

const CAP_NET_ADMIN = 12 // <linux/capability.h>
const PRIVILEGE_HINT = 'run ngrokd as root (sudo) or grant it CAP_NET_ADMIN (setcap cap_net_admin+ep $(readlink -f $(which node)))'

/** Whether capability `bit` is in the `CapEff:` mask of a /proc/<pid>/status text. */
export function hasEffectiveCapability(statusText: string, bit: number): boolean | undefined {
  const m = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(statusText)
  return m ? ((BigInt(`0x${m[1]}`) >> BigInt(bit)) & 1n) === 1n : undefined
}

export interface DiagnoseOptions {
  /** `net.interface_name`: its own addresses and routes are not conflicts. */
  name?: string
  /** `net.subnet`: checked for overlaps when given. */
  subnet?: string
  /** `net.force`: an overlap is a warning, as the start goes on past it. */
  force?: boolean
  /** What `open()` found, when the interface is open: reported instead of probing the kernel. */
  info?: InterfaceInfo
}

/**
 * `ngrokd doctor` checks for this driver. Changes nothing on the machine: the link-kind dry run
 * happens in a throwaway network namespace that only a worker thread enters.
 */
export async function diagnoseLinuxNetlink({ name, subnet, force = false, info }: DiagnoseOptions = {}): Promise<Check[]> {
  const checks: Check[] = []
  if (process.platform !== 'linux') {
    return [{ id: 'linux-netlink.platform', status: 'fail', summary: `linux-netlink runs on linux only, not ${process.platform}`, code: 'NGROKD_ERR_DRIVER_UNSUPPORTED_PLATFORM' }]
  }

  let ffi: Awaited<ReturnType<typeof loadFfi>> | undefined
  let socket: RouteSocket | undefined
  try {
    ffi = await loadFfi()
    const transport = ffi.NetlinkSocket.open()
    socket = new RouteSocket(transport)
    checks.push({ id: 'linux-netlink.socket', status: 'ok', summary: `AF_NETLINK route socket opens (receive buffer ${Math.round(transport.receiveBufferSize / 1024)} KiB)` })
  } catch (e) {
    checks.push({
      id: 'linux-netlink.socket',
      status: 'fail',
      summary: `cannot open an AF_NETLINK route socket: ${formatError(e).split('\n')[0]}`,
      ...(isNgrokdError(e) ? { code: e.code, ...(e.hint ? { hint: e.hint } : {}) } : {}),
    })
  }

  const capable = hasEffectiveCapability(await readFile('/proc/self/status', 'utf8').catch(() => ''), CAP_NET_ADMIN)
  checks.push(
    capable === undefined
      ? { id: 'linux-netlink.privilege', status: 'skip', summary: 'could not read CapEff from /proc/self/status' }
      : capable
        ? { id: 'linux-netlink.privilege', status: 'ok', summary: 'the process has CAP_NET_ADMIN' }
        : { id: 'linux-netlink.privilege', status: 'fail', summary: 'the process lacks CAP_NET_ADMIN: it cannot create links or add addresses', hint: PRIVILEGE_HINT, code: 'NGROKD_ERR_PERMISSION' },
  )

  checks.push(info ? linkKindFromOpen(info) : await probeLinkKinds(ffi))
  if (!info && name !== undefined && socket) checks.push(await linkOfName(socket, name))

  if (subnet !== undefined) {
    if (!socket) {
      checks.push({ id: 'linux-netlink.subnet', status: 'skip', summary: `cannot check net.subnet ${subnet} without a netlink socket` })
    } else {
      try {
        const parsed = parseSubnet(subnet)
        const links = await dumpLinks(socket)
        const own = name === undefined ? undefined : links.find((l) => l.name === name)?.index
        const conflicts = await findConflicts(socket, parsed, links, own)
        if (conflicts.length === 0) {
          checks.push({ id: 'linux-netlink.subnet', status: 'ok', summary: `net.subnet ${parsed.cidr} overlaps no address or route of another interface` })
        } else {
          const e = conflictError(parsed, conflicts)
          const summary = e.message.replace(/^linux-netlink: /, '')
          if (force) checks.push({ id: 'linux-netlink.subnet', status: 'warn', summary: `${summary}; net.force is set, so the start goes on past it`, code: e.code })
          else checks.push({ id: 'linux-netlink.subnet', status: 'fail', summary, code: e.code, ...(e.hint ? { hint: e.hint } : {}) })
        }
      } catch (e) {
        checks.push({ id: 'linux-netlink.subnet', status: 'fail', summary: `cannot check net.subnet ${subnet}: ${formatError(e).split('\n')[0]}`, ...(isNgrokdError(e) ? { code: e.code } : {}) })
      }
    }
  }
  await socket?.close()
  return checks
}

/** Not open yet: whether a link of `name` is there, and whether a start would adopt it (ngrokd's) or refuse it. */
async function linkOfName(socket: RouteSocket, name: string): Promise<Check> {
  const id = 'linux-netlink.interface'
  try {
    const links = await dumpLinks(socket)
    const link = links.find((l) => l.name === name)
    if (!link) return { id, status: 'ok', summary: `no interface is named ${name}: a start makes it` }
    if (await leftUntagged(socket, link, links)) return { id, status: 'ok', summary: `${name} is a link a stopped start of ngrokd made: a start adopts it` }
    checkAdoptable(link, links)
    return { id, status: 'ok', summary: `${name} is ngrokd's ${link.kind} link: a start adopts it` }
  } catch (e) {
    return { id, status: 'fail', summary: formatError(e).split('\n')[0]!.replace(/^linux-netlink: /, '').replace(/ \(NGROKD_ERR_[A-Z_]+\)$/, ''), ...(isNgrokdError(e) ? { code: e.code, ...(e.hint ? { hint: e.hint } : {}) } : {}) }
  }
}

function linkKindFromOpen(info: InterfaceInfo): Check {
  const fallback = info.kind.startsWith('bridge')
  return {
    id: 'linux-netlink.link-kind',
    status: fallback ? 'warn' : 'ok',
    summary: `${info.name} is a ${info.kind}${info.adopted ? ' (adopted)' : ''}`,
    ...(fallback ? { hint: 'the kernel has no dummy link type (CONFIG_DUMMY); a port-less bridge works the same for ngrokd' } : {}),
  }
}

/** Dry run of RTM_NEWLINK kind dummy (and bridge) inside a throwaway network namespace. */
async function probeLinkKinds(ffi: Awaited<ReturnType<typeof loadFfi>> | undefined): Promise<Check> {
  const id = 'linux-netlink.link-kind'
  if (!ffi) return { id, status: 'skip', summary: 'cannot check for the dummy link type without the FFI module' }
  const result = await ffi.probeInPrivateNetns([newLinkRequest({ seq: 1, name: 'ngrkprobe0', kind: 'dummy' }), newLinkRequest({ seq: 2, name: 'ngrkprobe1', kind: 'bridge' })])
  if (!result.ok) {
    return {
      id,
      status: 'skip',
      summary: `could not dry-run link creation in a throwaway network namespace (${result.reason}${result.errnoName ? `: ${result.errnoName}` : ''}); open() detects a missing dummy type and falls back to a bridge`,
    }
  }
  const [dummy, bridge] = result.replies.map((r) => {
    const m = parseMessages(r)[0]
    return m ? decodeError(m).errno : -1
  })
  if (dummy === 0) return { id, status: 'ok', summary: 'the kernel supports dummy links (dry run in a throwaway network namespace)' }
  if (dummy === LINUX_ERRNO.EOPNOTSUPP && bridge === 0) {
    return {
      id,
      status: 'warn',
      summary: 'the kernel has no dummy link type; ngrokd will use a port-less bridge instead (dry run in a throwaway network namespace)',
      hint: 'nothing to do; to get dummy links, load or build the dummy module (CONFIG_DUMMY)',
    }
  }
  return {
    id,
    status: 'fail',
    summary: `the kernel refused both dummy and bridge links in a dry run (errno ${dummy}, ${bridge})`,
    hint: 'enable CONFIG_DUMMY or CONFIG_BRIDGE in the kernel',
    code: 'NGROKD_ERR_SYSCALL',
  }
}
