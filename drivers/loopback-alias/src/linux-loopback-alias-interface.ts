import { createServer } from 'node:net'
import { intToIpv4, isIpv4, parseSubnet, subnetContains, type Check, type InterfaceCapabilities, type Ipv4Subnet } from '@ngrokd/core/driver'
import { stateDirCheck } from './diagnose.js'
import { byAddress, LoopbackAliasInterface, SYSTEM_ADDRESS, type Opened } from './loopback-alias-interface.js'
import type { StateRead } from './state-file.js'

/**
 * loopback-alias on Linux: every 127.0.0.0/8 address is local already, so nothing changes in the
 * OS. The addresses the driver holds are kept in `<stateDir>/loopback-alias-<name>.json` (written
 * atomically, one write per change) and `listAddresses()` reads that file. No privilege needed.
 *
 * ```ts
 * const iface = new LinuxLoopbackAliasInterface({ stateDir: '/var/lib/ngrokd' })
 * const info = await iface.open({ name: 'ngrokd0', subnet: '10.107.0.0/16' }) // info.subnet: '127.107.0.0/16'
 * await iface.addAddress({ address: '127.107.0.2' })
 * ```
 */
export class LinuxLoopbackAliasInterface extends LoopbackAliasInterface {
  readonly platform = 'linux'
  protected readonly interfaceName = 'lo'
  protected readonly kind = 'loopback (127.0.0.0/8 needs no alias on Linux)'

  override get capabilities(): InterfaceCapabilities {
    return { loopbackOnly: true, ipv6: false, requiresPrivileges: 'none', batching: true }
  }

  protected async adopt(subnet: Ipv4Subnet, found: StateRead, notes: string[]): Promise<{ adopted: boolean; addresses: string[] }> {
    if (found.kind !== 'ok') return { adopted: found.kind === 'unreadable', addresses: [] }
    const addresses = found.state.addresses.filter((a) => isIpv4(a) && subnetContains(subnet, a) && a !== SYSTEM_ADDRESS)
    if (addresses.length < found.state.addresses.length) notes.push(`dropped ${found.state.addresses.length - addresses.length} address(es) outside ${subnet.cidr}`)
    return { adopted: true, addresses }
  }

  /** One state-file write for the whole change. */
  protected async apply(opened: Opened, add: readonly string[], remove: readonly string[]): Promise<void> {
    const held = new Set(await this.list(opened))
    for (const a of remove) held.delete(a)
    for (const a of add) held.add(a)
    await opened.state.write({ version: 1, driver: 'loopback-alias', name: opened.name, subnet: opened.subnet.cidr, addresses: [...held].sort(byAddress) })
  }

  protected async list(opened: Opened): Promise<string[]> {
    const found = await opened.state.read()
    if (found.kind === 'ok') return found.state.addresses.filter((a) => isIpv4(a) && subnetContains(opened.subnet, a))
    if (found.kind === 'unreadable') this.logger.warn({ path: opened.state.path, reason: found.reason }, 'loopback-alias: unreadable state file, treating it as empty')
    return []
  }

  /** Nothing to undo in the OS: deleting the state file (done by the caller) is enough. */
  protected async removeAll(): Promise<void> {}

  override diagnose(): Promise<Check[]> {
    return diagnoseLinuxLoopbackAlias({ stateDir: this.options.stateDir, subnet: this.effectiveSubnet() })
  }
}

/** `ngrokd doctor` on Linux: the state folder is writable and the subnet's first host binds. Changes nothing (a listener is opened and closed at once). */
export async function diagnoseLinuxLoopbackAlias({ stateDir, subnet }: { stateDir: string; subnet: string }): Promise<Check[]> {
  const probe = intToIpv4(parseSubnet(subnet).network + 1)
  const error = await tryBind(probe)
  return [
    await stateDirCheck(stateDir),
    error === undefined
      ? { id: 'loopback-alias.bind', status: 'ok', summary: `${probe} binds without an alias (all of 127.0.0.0/8 is local on Linux)` }
      : { id: 'loopback-alias.bind', status: 'fail', summary: `cannot bind ${probe}: ${error}`, hint: 'is the lo interface up? (ip link set lo up)', code: 'NGROKD_ERR_LISTEN' },
  ]
}

function tryBind(host: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message))
    server.listen({ host, port: 0 }, () => server.close(() => resolve(undefined)))
  })
}
