import { parseSubnet, subnetContains, type Check, type InterfaceCapabilities, type Ipv4Subnet } from '@ngrokd/core/driver'
import type { DarwinSyscalls } from './darwin/darwin-syscalls.js'
import { changeInterfaceAddresses, interfaceAddresses, type Caller } from './darwin/interface-addresses.js'
import { loadLibSystem } from './darwin/load-libsystem.js'
import { stateDirCheck } from './diagnose.js'
import { LoopbackAliasInterface, SYSTEM_ADDRESS, type Opened } from './loopback-alias-interface.js'
import type { StateRead } from './state-file.js'

const LO0 = 'lo0'
const CALLER: Caller = { driver: 'loopback-alias', privilegeHint: 'adding lo0 aliases needs root: run ngrokd with sudo' }

/**
 * loopback-alias on macOS: each address is a /32 alias on lo0, added with `ioctl(SIOCAIFADDR)` and
 * removed with `ioctl(SIOCDIFADDR)` (the shared macOS layer in `./darwin`); `listAddresses()` reads
 * lo0 with getifaddrs. Needs root. Aliases outlive the process, so after a crash `open()` finds
 * them and adopts them.
 *
 * ```ts
 * const iface = new DarwinLoopbackAliasInterface({ stateDir: '/var/lib/ngrokd' })
 * await iface.open({ name: 'ngrokd0', subnet: '10.107.0.0/16' }) // 127.107.0.0/16 on lo0
 * await iface.addAddress({ address: '127.107.0.2' })
 * ```
 */
export class DarwinLoopbackAliasInterface extends LoopbackAliasInterface {
  readonly platform = 'darwin'
  protected readonly interfaceName = LO0
  protected readonly kind = 'lo0 aliases'
  #syscalls: DarwinSyscalls | undefined

  constructor(options: ConstructorParameters<typeof LoopbackAliasInterface>[0]) {
    super(options)
    this.#syscalls = options.syscalls
  }

  override get capabilities(): InterfaceCapabilities {
    return { loopbackOnly: true, ipv6: false, requiresPrivileges: 'root', batching: false }
  }

  protected async adopt(subnet: Ipv4Subnet, found: StateRead): Promise<{ adopted: boolean; addresses: string[] }> {
    const aliases = await this.#aliases(subnet)
    return { adopted: found.kind !== 'missing' || aliases.length > 0, addresses: [] } // lo0 itself is the record
  }

  /** One ioctl per address. */
  protected async apply(_opened: Opened, add: readonly string[], remove: readonly string[]): Promise<void> {
    changeInterfaceAddresses(await this.#sys(), { ...CALLER, ifname: LO0, add, remove, pointToPoint: false })
  }

  protected list(opened: Opened): Promise<string[]> {
    return this.#aliases(opened.subnet)
  }

  protected async removeAll(made: Opened): Promise<void> {
    await this.apply(made, [], await this.#aliases(made.subnet))
  }

  override diagnose(): Promise<Check[]> {
    return diagnoseDarwinLoopbackAlias({ stateDir: this.options.stateDir, subnet: this.effectiveSubnet(), syscalls: () => this.#sys() })
  }

  /** lo0's IPv4 addresses inside `subnet`, 127.0.0.1 excepted, read from the OS. */
  async #aliases(subnet: Ipv4Subnet): Promise<string[]> {
    return interfaceAddresses(await this.#sys(), LO0).filter((a) => a !== SYSTEM_ADDRESS && subnetContains(subnet, a))
  }

  async #sys(): Promise<DarwinSyscalls> {
    return (this.#syscalls ??= await loadLibSystem(CALLER.driver))
  }
}

/** `ngrokd doctor` on macOS. Changes nothing. */
export async function diagnoseDarwinLoopbackAlias({ stateDir, subnet, syscalls }: { stateDir: string; subnet: string; syscalls: () => Promise<DarwinSyscalls> }): Promise<Check[]> {
  const checks: Check[] = [await stateDirCheck(stateDir)]
  let sys: DarwinSyscalls
  try {
    sys = await syscalls()
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
  const s = parseSubnet(subnet)
  const ours = interfaceAddresses(sys, LO0).filter((a) => a !== SYSTEM_ADDRESS && subnetContains(s, a))
  checks.push({ id: 'loopback-alias.aliases', status: 'ok', summary: `${ours.length} lo0 aliases in ${s.cidr}` })
  return checks
}
