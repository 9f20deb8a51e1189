import {
  InterfaceBase,
  ipv4ToInt,
  isIpv4,
  NgrokdError,
  parseSubnet,
  PermissionError,
  silentLogger,
  subnetContains,
  SyscallError,
  type AddressChange,
  type Check,
  type InterfaceCapabilities,
  type InterfaceInfo,
  type InterfaceOpenOptions,
  type Ipv4Subnet,
  type Logger,
} from '@ngrokd/core/driver'
import { EADDRNOTAVAIL, EACCES, EEXIST, EPERM, errnoName, type DarwinSyscalls } from './darwin/darwin-syscalls.js'
import { AF_INET, decodeSockaddrIn, encodeIfaliasreq, encodeIfreqAddr, SIOCAIFADDR, SIOCDIFADDR, SOCK_DGRAM } from './darwin/structs.js'
import { diagnoseLoopbackAlias } from './diagnose.js'
import { StateFile } from './state-file.js'

/** Options users may set (config), as passed to the driver's `create()`. */
export interface LoopbackAliasOptions {
  /** `net.interface_name`: names the state file; the addresses live on `lo` / `lo0`. */
  name?: string
  /** `net.subnet`; used as is when inside 127.0.0.0/8, else replaced by `loopbackSubnet`. */
  subnet?: string
  /** Default `127.107.0.0/16`. Must be inside 127.0.0.0/8. */
  loopbackSubnet?: string
  /** Default: the daemon's `state_dir`. */
  stateDir?: string
}

export interface LoopbackAliasInterfaceOptions extends LoopbackAliasOptions {
  stateDir: string
  logger?: Logger
  /** Default `process.platform`. `darwin` with a fake `syscalls` runs the macOS code anywhere. */
  platform?: NodeJS.Platform
  /** macOS system calls; default libSystem through koffi, loaded on first use. */
  syscalls?: DarwinSyscalls
}

export const DEFAULT_LOOPBACK_SUBNET = '127.107.0.0/16'
const LOOPBACK = parseSubnet('127.0.0.0/8')
/** lo0's own address on macOS: never added, removed or listed. */
const SYSTEM_ADDRESS = '127.0.0.1'
const LO0 = 'lo0'
const HOST_MASK = '255.255.255.255' // one /32 alias per address, as `ifconfig lo0 alias <ip>` is used for this

interface Opened {
  name: string
  subnet: Ipv4Subnet
  state: StateFile
}

/**
 * An interface driver whose addresses come from 127.0.0.0/8.
 *
 * - Linux: every 127.0.0.0/8 address is local already, so nothing changes in the OS. The addresses
 *   the driver holds are kept in `<stateDir>/loopback-alias-<name>.json` (written atomically) and
 *   `listAddresses()` reads that file.
 * - macOS: each address is a /32 alias on lo0, added with `ioctl(SIOCAIFADDR)` and removed with
 *   `ioctl(SIOCDIFADDR)`; `listAddresses()` reads lo0 with getifaddrs. Needs root.
 *
 * When `net.subnet` is not inside 127.0.0.0/8, `open()` uses `loopbackSubnet` instead and says so
 * in `InterfaceInfo.subnet`.
 *
 * ```ts
 * const iface = new LoopbackAliasInterface({ stateDir: '/var/lib/ngrokd' })
 * const info = await iface.open({ name: 'ngrokd0', subnet: '10.107.0.0/16' }) // info.subnet: '127.107.0.0/16'
 * await iface.addAddress({ address: '127.107.0.2' })
 * ```
 */
export class LoopbackAliasInterface extends InterfaceBase {
  readonly driver = 'loopback-alias'
  readonly platform: NodeJS.Platform
  readonly #options: LoopbackAliasInterfaceOptions
  readonly #logger: Logger
  #syscalls: DarwinSyscalls | undefined
  #opened: Opened | undefined
  /** What `open()` made, kept after `close()` so a later `close({ removeInterface: true })` can delete it. */
  #made: Opened | undefined
  /** Serialises every change: concurrent calls take effect one after the other. */
  #queue: Promise<unknown> = Promise.resolve()

  constructor(options: LoopbackAliasInterfaceOptions) {
    super()
    this.#options = options
    this.#logger = options.logger ?? silentLogger
    this.platform = options.platform ?? process.platform
    this.#syscalls = options.syscalls
    if (this.platform !== 'linux' && this.platform !== 'darwin') {
      throw new NgrokdError('NGROKD_ERR_DRIVER_UNSUPPORTED_PLATFORM', `loopback-alias: runs on linux and darwin, not ${this.platform}`, {
        hint: 'use the platform driver (net.driver: auto)',
      })
    }
  }

  override get capabilities(): InterfaceCapabilities {
    const darwin = this.platform === 'darwin'
    return { loopbackOnly: true, ipv6: false, requiresPrivileges: darwin ? 'root' : 'none', batching: !darwin }
  }

  async open({ name, subnet, signal }: InterfaceOpenOptions): Promise<InterfaceInfo> {
    throwIfAborted(signal)
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name)) {
      throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `loopback-alias: interface name ${JSON.stringify(name)} is not usable as a file name`, { hint: 'net.interface_name: letters, digits, _ . -' })
    }
    const notes: string[] = []
    const configured = parseCidr(subnet, 'net.subnet')
    let effective = configured
    if (!(subnetContains(LOOPBACK, configured.network) && subnetContains(LOOPBACK, configured.broadcast))) {
      const fallback = this.#options.loopbackSubnet ?? DEFAULT_LOOPBACK_SUBNET
      effective = parseCidr(fallback, 'loopbackSubnet')
      if (!(subnetContains(LOOPBACK, effective.network) && subnetContains(LOOPBACK, effective.broadcast))) {
        throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `loopback-alias: loopbackSubnet ${fallback} is not inside 127.0.0.0/8`, { hint: `e.g. ${DEFAULT_LOOPBACK_SUBNET}` })
      }
      notes.push(`net.subnet ${configured.cidr} is not loopback; using ${effective.cidr}`)
    }
    return this.#serial(async () => {
      const state = new StateFile(this.#options.stateDir, name)
      const stale = await state.removeStaleTemps()
      if (stale > 0) notes.push(`removed ${stale} temporary state file(s) left by an interrupted write`)
      const found = await state.read()
      let adopted = found.kind !== 'missing'
      let addresses: string[] = []
      if (found.kind === 'unreadable') {
        notes.push(`state file ${state.path} was unreadable (${found.reason}); started empty`)
        this.#logger.warn({ path: state.path, reason: found.reason }, 'loopback-alias: unreadable state file, starting empty')
      } else if (found.kind === 'ok' && this.platform === 'linux') {
        addresses = found.state.addresses.filter((a) => isIpv4(a) && subnetContains(effective, a) && a !== SYSTEM_ADDRESS)
        if (addresses.length < found.state.addresses.length) notes.push(`dropped ${found.state.addresses.length - addresses.length} address(es) outside ${effective.cidr}`)
      }
      if (this.platform === 'darwin') {
        this.#syscalls ??= await loadSyscalls()
        adopted ||= this.#lo0Aliases(effective).length > 0
      }
      await state.write({ version: 1, driver: 'loopback-alias', name, subnet: effective.cidr, addresses })
      this.#opened = this.#made = { name, subnet: effective, state }
      if (adopted) this.#logger.info({ name, subnet: effective.cidr }, 'loopback-alias: adopted existing state')
      const info: InterfaceInfo = {
        name: this.platform === 'darwin' ? LO0 : 'lo',
        kind: this.platform === 'darwin' ? 'lo0 aliases' : 'loopback (127.0.0.0/8 needs no alias on Linux)',
        adopted,
        notes,
      }
      if (effective !== configured) info.subnet = effective.cidr
      return info
    })
  }

  async addAddress({ address, signal }: { address: string; signal?: AbortSignal }): Promise<void> {
    return this.applyAddresses({ add: [address], remove: [], signal })
  }

  async removeAddress({ address, signal }: { address: string; signal?: AbortSignal }): Promise<void> {
    return this.applyAddresses({ add: [], remove: [address], signal })
  }

  /** Linux: one state-file write for the whole change. macOS: one ioctl per address. */
  override async applyAddresses({ add, remove, signal }: AddressChange): Promise<void> {
    const opened = this.#ready()
    for (const address of [...add, ...remove]) checkAddress(address, opened.subnet)
    throwIfAborted(signal)
    return this.#serial(async () => {
      throwIfAborted(signal)
      if (this.platform === 'darwin') return this.#applyDarwin(add, remove)
      const held = new Set(await this.#readHeld(opened))
      for (const a of remove) held.delete(a)
      for (const a of add) held.add(a)
      await opened.state.write({ version: 1, driver: 'loopback-alias', name: opened.name, subnet: opened.subnet.cidr, addresses: [...held].sort(byAddress) })
    })
  }

  async listAddresses({ signal }: { signal?: AbortSignal } = {}): Promise<string[]> {
    const opened = this.#ready()
    throwIfAborted(signal)
    if (this.platform === 'darwin') return this.#lo0Aliases(opened.subnet)
    return this.#readHeld(opened)
  }

  async close({ removeInterface = false }: { removeInterface?: boolean } = {}): Promise<void> {
    this.#opened = undefined
    const made = this.#made
    if (!removeInterface || !made) return
    this.#made = undefined
    await this.#serial(async () => {
      if (this.platform === 'darwin') await this.#applyDarwin([], this.#lo0Aliases(made.subnet))
      await made.state.remove()
    })
  }

  override async diagnose(): Promise<Check[]> {
    const subnet = this.#opened?.subnet.cidr ?? this.#effectiveSubnetGuess()
    return diagnoseLoopbackAlias({
      platform: this.platform,
      stateDir: this.#options.stateDir,
      subnet,
      syscalls: async () => (this.#syscalls ??= await loadSyscalls()),
    })
  }

  #effectiveSubnetGuess(): string {
    try {
      const s = parseSubnet(this.#options.subnet ?? '')
      if (subnetContains(LOOPBACK, s.network) && subnetContains(LOOPBACK, s.broadcast)) return s.cidr
    } catch {
      // not set or not a subnet: the fallback applies
    }
    return this.#options.loopbackSubnet ?? DEFAULT_LOOPBACK_SUBNET
  }

  #ready(): Opened {
    if (!this.#opened) throw new NgrokdError('NGROKD_ERR_DRIVER_MISUSE', 'loopback-alias: called before open() or after close()', { hint: 'await open() first' })
    return this.#opened
  }

  async #readHeld(opened: Opened): Promise<string[]> {
    const found = await opened.state.read()
    if (found.kind === 'ok') return found.state.addresses.filter((a) => isIpv4(a) && subnetContains(opened.subnet, a))
    if (found.kind === 'unreadable') this.#logger.warn({ path: opened.state.path, reason: found.reason }, 'loopback-alias: unreadable state file, treating it as empty')
    return []
  }

  /** lo0's IPv4 addresses inside `subnet`, 127.0.0.1 excepted, read from the OS. */
  #lo0Aliases(subnet: Ipv4Subnet): string[] {
    const found = new Set<string>()
    for (const entry of this.#syscalls!.getifaddrs()) {
      if (entry.name !== LO0 || !entry.addr) continue
      const address = decodeSockaddrIn(entry.addr)
      if (address && address !== SYSTEM_ADDRESS && subnetContains(subnet, address)) found.add(address)
    }
    return [...found].sort(byAddress)
  }

  #applyDarwin(add: readonly string[], remove: readonly string[]): void {
    const sys = this.#syscalls!
    const fd = sys.socket(AF_INET, SOCK_DGRAM, 0)
    try {
      for (const address of remove) {
        const errno = sys.ioctl(fd, SIOCDIFADDR, encodeIfreqAddr({ name: LO0, address }))
        if (errno !== 0 && errno !== EADDRNOTAVAIL) throw darwinError('SIOCDIFADDR', errno, address) // EADDRNOTAVAIL: already gone
      }
      for (const address of add) {
        const errno = sys.ioctl(fd, SIOCAIFADDR, encodeIfaliasreq({ name: LO0, address, mask: HOST_MASK }))
        if (errno !== 0 && errno !== EEXIST) throw darwinError('SIOCAIFADDR', errno, address)
      }
    } finally {
      sys.close(fd)
    }
  }

  async #serial<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.#queue.then(fn, fn)
    this.#queue = run.catch(() => {})
    return run
  }
}

async function loadSyscalls(): Promise<DarwinSyscalls> {
  try {
    const { loadLibSystem } = await import('./darwin/libsystem.js')
    return loadLibSystem()
  } catch (cause) {
    throw new NgrokdError('NGROKD_ERR_SYSCALL', `loopback-alias: cannot load libSystem through koffi: ${(cause as Error).message}`, {
      cause,
      hint: 'reinstall ngrokd without --omit=optional (koffi ships its binary as an optional dependency)',
    })
  }
}

function darwinError(request: string, errno: number, address: string): NgrokdError {
  if (errno === EPERM || errno === EACCES) {
    return new PermissionError(`loopback-alias: ioctl(${request}) ${address} on lo0 refused: ${errnoName(errno)} (${errno})`, { hint: 'adding lo0 aliases needs root: run ngrokd with sudo' })
  }
  return new SyscallError(`ioctl(${request})`, errno, errnoName(errno), { detail: `${address} on lo0` })
}

function checkAddress(address: string, subnet: Ipv4Subnet): void {
  if (!isIpv4(address) || !subnetContains(subnet, address) || address === SYSTEM_ADDRESS) {
    throw new NgrokdError('NGROKD_ERR_DRIVER_MISUSE', `loopback-alias: ${JSON.stringify(address)} is not an address in ${subnet.cidr}`, {
      hint: 'allocate addresses from InterfaceInfo.subnet (127.0.0.1 is the system’s own)',
    })
  }
}

function parseCidr(cidr: string, what: string): Ipv4Subnet {
  try {
    return parseSubnet(cidr)
  } catch (cause) {
    throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `loopback-alias: ${what} ${JSON.stringify(cidr)} is not an IPv4 CIDR subnet`, { cause, hint: `e.g. ${DEFAULT_LOOPBACK_SUBNET}` })
  }
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new NgrokdError('NGROKD_ERR_ABORTED', 'loopback-alias: aborted', { cause: signal.reason })
}

function byAddress(a: string, b: string): number {
  return ipv4ToInt(a) - ipv4ToInt(b)
}
