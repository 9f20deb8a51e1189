import { access, constants } from 'node:fs/promises'
import { createServer } from 'node:net'
import { dirname } from 'node:path'
import { intToIpv4, parseSubnet, subnetContains, type Check } from '@ngrokd/core/driver'
import type { DarwinSyscalls } from './darwin/darwin-syscalls.js'
import { decodeSockaddrIn } from './darwin/structs.js'

export interface DiagnoseInput {
  platform: NodeJS.Platform
  stateDir: string
  /** The loopback subnet in use (or that would be used). */
  subnet: string
  /** macOS: the loaded system calls, or the error loading them. */
  syscalls?: () => Promise<DarwinSyscalls>
}

/** `ngrokd doctor` checks for this driver. Changes nothing (a listener is opened and closed at once). */
export async function diagnoseLoopbackAlias({ platform, stateDir, subnet, syscalls }: DiagnoseInput): Promise<Check[]> {
  const checks: Check[] = [await stateDirCheck(stateDir)]
  const s = parseSubnet(subnet)
  if (platform === 'linux') {
    const probe = intToIpv4(s.network + 1)
    const error = await tryBind(probe)
    checks.push(
      error === undefined
        ? { id: 'loopback-alias.bind', status: 'ok', summary: `${probe} binds without an alias (all of 127.0.0.0/8 is local on Linux)` }
        : { id: 'loopback-alias.bind', status: 'fail', summary: `cannot bind ${probe}: ${error}`, hint: 'is the lo interface up? (ip link set lo up)', code: 'NGROKD_ERR_LISTEN' },
    )
    return checks
  }
  if (platform !== 'darwin') return [...checks, { id: 'loopback-alias.platform', status: 'fail', summary: `loopback-alias runs on linux and darwin, not ${platform}`, code: 'NGROKD_ERR_DRIVER_UNSUPPORTED_PLATFORM' }]
  let sys: DarwinSyscalls
  try {
    sys = await syscalls!()
  } catch (e) {
    return [
      ...checks,
      { id: 'loopback-alias.libsystem', status: 'fail', summary: `cannot call libSystem through koffi: ${(e as Error).message}`, hint: 'reinstall ngrokd without --omit=optional (koffi ships its binary as an optional dependency)', code: 'NGROKD_ERR_SYSCALL' },
    ]
  }
  checks.push({ id: 'loopback-alias.libsystem', status: 'ok', summary: 'libSystem loads through koffi' })
  checks.push(
    process.getuid?.() === 0
      ? { id: 'loopback-alias.privileges', status: 'ok', summary: 'running as root: lo0 aliases can be added' }
      : { id: 'loopback-alias.privileges', status: 'fail', summary: 'adding lo0 aliases needs root', hint: 'run ngrokd with sudo', code: 'NGROKD_ERR_PERMISSION' },
  )
  const aliases = sys.getifaddrs().filter((e) => e.name === 'lo0' && e.addr && decodeSockaddrIn(e.addr) !== undefined)
  const ours = aliases.map((e) => decodeSockaddrIn(e.addr!)!).filter((a) => a !== '127.0.0.1' && subnetContains(s, a))
  checks.push({ id: 'loopback-alias.aliases', status: 'ok', summary: `${ours.length} lo0 aliases in ${s.cidr}` })
  return checks
}

async function stateDirCheck(stateDir: string): Promise<Check> {
  // the folder is made on first write: check the nearest one that exists
  for (let dir = stateDir; ; dir = dirname(dir)) {
    try {
      await access(dir, constants.F_OK)
    } catch {
      if (dirname(dir) === dir) break
      continue
    }
    try {
      await access(dir, constants.W_OK)
      return { id: 'loopback-alias.state-dir', status: 'ok', summary: `${stateDir} is writable` }
    } catch {
      return { id: 'loopback-alias.state-dir', status: 'fail', summary: `${dir} is not writable`, hint: 'run as the owner of state_dir or set state_dir', code: 'NGROKD_ERR_STATE' }
    }
  }
  return { id: 'loopback-alias.state-dir', status: 'fail', summary: `no part of ${stateDir} exists`, code: 'NGROKD_ERR_STATE' }
}

function tryBind(host: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message))
    server.listen({ host, port: 0 }, () => server.close(() => resolve(undefined)))
  })
}
