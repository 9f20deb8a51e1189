import { formatError, isNgrokdError, parseSubnet, type Check } from '@ngrokd/core/driver'
import { interfaceAddresses, PF_SYSTEM, SOCK_DGRAM, type DarwinSyscalls } from '@ngrokd/driver-loopback-alias/darwin'
import type { DrainStats } from './utun-control.js'
import { CTLIOCGINFO, decodeCtlId, encodeCtlInfo, SYSPROTO_CONTROL, unitForName, UTUN_CONTROL_NAME } from './kern-control.js'
import { readRoutes } from './route/route-dump.js'
import { conflictError, findSubnetConflicts } from './route/subnet-conflicts.js'

export interface DiagnoseDarwinUtunInput {
  syscalls: () => Promise<DarwinSyscalls>
  /** `net.interface_name`. */
  name?: string
  /** `net.subnet`: checked for overlaps when given. */
  subnet?: string
  /** The utun, when the driver is open: its own addresses and routes are not conflicts; what its packet drain did. */
  open?: { name: string; requested: string; drain?: DrainStats }
  /** Default: the process's effective uid. */
  uid?: number
}

const CALLER = { driver: 'darwin-utun', privilegeHint: 'run ngrokd as root (sudo)' }

/**
 * `ngrokd doctor` checks for darwin-utun. Changes nothing: the utun control is looked up
 * (CTLIOCGINFO) but never connected to, so no interface is made.
 */
export async function diagnoseDarwinUtun({ syscalls, name, subnet, open, uid = process.geteuid?.() ?? -1 }: DiagnoseDarwinUtunInput): Promise<Check[]> {
  let sys: DarwinSyscalls
  try {
    sys = await syscalls()
  } catch (e) {
    return [{ id: 'darwin-utun.libsystem', status: 'fail', summary: `cannot call libSystem through koffi: ${(e as Error).message}`, ...coded(e) }]
  }
  const checks: Check[] = [{ id: 'darwin-utun.libsystem', status: 'ok', summary: 'libSystem loads through koffi' }]
  checks.push(controlCheck(sys))
  checks.push(
    uid === 0
      ? { id: 'darwin-utun.privileges', status: 'ok', summary: 'running as root: utun interfaces can be made' }
      : { id: 'darwin-utun.privileges', status: 'fail', summary: 'making a utun interface needs root (the utun control accepts root only)', hint: 'run ngrokd with sudo', code: 'NGROKD_ERR_PERMISSION' },
  )
  checks.push(nameCheck(sys, name, open))
  if (subnet !== undefined) checks.push(subnetCheck(sys, subnet, open?.name))
  if (open?.drain) checks.push(drainCheck(open.name, open.drain))
  return checks
}

/** socket(PF_SYSTEM) + ioctl(CTLIOCGINFO) for com.apple.net.utun_control. */
function controlCheck(sys: DarwinSyscalls): Check {
  const id = 'darwin-utun.utun-control'
  let fd: number | undefined
  try {
    fd = sys.socket(PF_SYSTEM, SOCK_DGRAM, SYSPROTO_CONTROL)
    const info = encodeCtlInfo(UTUN_CONTROL_NAME)
    const errno = sys.ioctl(fd, CTLIOCGINFO, info)
    if (errno !== 0) {
      return { id, status: 'fail', summary: `ioctl(CTLIOCGINFO) ${UTUN_CONTROL_NAME} failed with errno ${errno}`, hint: 'darwin-utun needs macOS; use net.driver: auto', code: 'NGROKD_ERR_SYSCALL' }
    }
    return { id, status: 'ok', summary: `the kernel has the utun control (${UTUN_CONTROL_NAME}, id ${decodeCtlId(info)})` }
  } catch (e) {
    return { id, status: 'fail', summary: `cannot open a PF_SYSTEM socket: ${formatError(e).split('\n')[0]}`, ...coded(e) }
  } finally {
    if (fd !== undefined) sys.close(fd)
  }
}

function nameCheck(sys: DarwinSyscalls, name: string | undefined, open: DiagnoseDarwinUtunInput['open']): Check {
  const id = 'darwin-utun.interface-name'
  if (open) return { id, status: 'ok', summary: `net.interface_name ${open.requested} is ${open.name} (macOS names utun interfaces itself)` }
  if (name === undefined) return { id, status: 'skip', summary: 'net.interface_name is not known here' }
  const unit = unitForName(name)
  if (unit === undefined) return { id, status: 'ok', summary: `net.interface_name ${name} is only a wish: macOS names utun interfaces itself (the first free utunN); ngrokd status shows the name it got` }
  const taken = sys.getifaddrs().some((e) => e.name === name)
  return taken
    ? { id, status: 'warn', summary: `${name} exists already (another program made it): ngrokd will get the next free utunN`, hint: 'set net.interface_name to a free utunN, or to any other name to take the first free one' }
    : { id, status: 'ok', summary: `${name} is free: ngrokd will ask for it` }
}

/** What the packet drain of the open utun did: whether the kernel routes local connections into it. */
function drainCheck(name: string, { packetsReflected, packetsDropped, writeErrors, readErrors }: DrainStats): Check {
  const id = 'darwin-utun.packets'
  const counts = `${packetsReflected} packets to its own addresses written back, ${packetsDropped} dropped, ${writeErrors} write errors`
  const alternative = 'net.driver: loopback-alias (lo0 aliases) needs no packet drain'
  if (readErrors > 0) return { id, status: 'fail', summary: `reading ${name} failed: its packets are no longer drained nor written back (${counts})`, hint: `see the daemon's log; restart ngrokd, or use ${alternative}` }
  if (writeErrors > 0) return { id, status: 'warn', summary: `${name}: ${counts}; each write error lost a packet`, hint: `see the daemon's log for the first error; ${alternative}` }
  const note = packetsReflected > 0 ? ': the kernel routes local connections to its addresses into it, and each packet takes a hop through ngrokd' : ''
  return { id, status: 'ok', summary: `${name}: ${counts}${note}` }
}

function subnetCheck(sys: DarwinSyscalls, subnetText: string, ownInterface: string | undefined): Check {
  const id = 'darwin-utun.subnet'
  try {
    const subnet = parseSubnet(subnetText)
    const conflicts = findSubnetConflicts({ subnet, ifaddrs: sys.getifaddrs(), routes: readRoutes(sys, CALLER), ...(ownInterface === undefined ? {} : { ownInterface }) })
    if (conflicts.length === 0) {
      const own = ownInterface === undefined ? '' : ` (${ownInterface} holds ${interfaceAddresses(sys, ownInterface).length} addresses)`
      return { id, status: 'ok', summary: `net.subnet ${subnet.cidr} overlaps no address or route of another interface${own}` }
    }
    const e = conflictError(subnet, conflicts)
    return { id, status: 'fail', summary: e.message.replace(/^darwin-utun: /, ''), code: e.code, ...(e.hint ? { hint: e.hint } : {}) }
  } catch (e) {
    return { id, status: 'fail', summary: `cannot check net.subnet ${subnetText}: ${formatError(e).split('\n')[0]}`, ...coded(e) }
  }
}

function coded(e: unknown): Pick<Check, 'code' | 'hint'> {
  if (!isNgrokdError(e)) return {}
  return { code: e.code, ...(e.hint ? { hint: e.hint } : {}) }
}
