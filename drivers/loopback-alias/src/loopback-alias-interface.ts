import {
  InterfaceBase,
  ipv4ToInt,
  isIpv4,
  NgrokdError,
  parseSubnet,
  silentLogger,
  subnetContains,
  type AddressChange,
  type InterfaceCapabilities,
  type InterfaceInfo,
  type InterfaceOpenOptions,
  type Ipv4Subnet,
  type Logger,
  requireOpen,
} from '@ngrokd/core/driver'
import type { DarwinSyscalls } from './darwin/darwin-syscalls.js'
import { StateFile, type StateRead } from './state-file.js'

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
  /** macOS system calls; default libSystem through koffi, loaded on first use. Ignored on Linux. */
  syscalls?: DarwinSyscalls
}

export const DEFAULT_LOOPBACK_SUBNET = '127.107.0.0/16'
export const LOOPBACK = parseSubnet('127.0.0.0/8')
/** The loopback interface's own address: never added, removed or listed. */
export const SYSTEM_ADDRESS = '127.0.0.1'

/** What `open()` set up; kept after `close()` so a later `close({ removeInterface: true })` can delete it. */
export interface Opened {
  name: string
  subnet: Ipv4Subnet
  state: StateFile
}

/**
 * An interface driver whose addresses come from 127.0.0.0/8: the part both operating systems
 * share. Each OS has its own subclass (`LinuxLoopbackAliasInterface`, `DarwinLoopbackAliasInterface`);
 * {@link createLoopbackAliasInterface} picks one.
 *
 * Shared rules: when `net.subnet` is not inside 127.0.0.0/8, `open()` uses `loopbackSubnet` instead
 * and says so in `InterfaceInfo.subnet`; `<stateDir>/loopback-alias-<name>.json` exists while the
 * interface does (finding it means a leftover to adopt); 127.0.0.1 is never touched; every change
 * is serialised.
 */
export abstract class LoopbackAliasInterface extends InterfaceBase {
  readonly driver = 'loopback-alias'
  abstract readonly platform: NodeJS.Platform
  protected readonly options: LoopbackAliasInterfaceOptions
  protected readonly logger: Logger
  #opened: Opened | undefined
  #made: Opened | undefined
  /** Serialises every change: concurrent calls take effect one after the other. */
  #queue: Promise<unknown> = Promise.resolve()

  constructor(options: LoopbackAliasInterfaceOptions) {
    super()
    this.options = options
    this.logger = options.logger ?? silentLogger
  }

  abstract override get capabilities(): InterfaceCapabilities
  /** What the OS calls the interface holding the addresses (`lo`, `lo0`). */
  protected abstract readonly interfaceName: string
  protected abstract readonly kind: string
  /** Reads what is there at open: whether there is something to adopt, and the addresses to keep in the state file. */
  protected abstract adopt(subnet: Ipv4Subnet, found: StateRead, notes: string[]): Promise<{ adopted: boolean; addresses: string[] }>
  protected abstract apply(opened: Opened, add: readonly string[], remove: readonly string[]): Promise<void>
  protected abstract list(opened: Opened): Promise<string[]>
  /** Removes every address `open()` and later calls made (close with removeInterface). */
  protected abstract removeAll(made: Opened): Promise<void>

  async open({ name, subnet, signal }: InterfaceOpenOptions): Promise<InterfaceInfo> {
    throwIfAborted(signal)
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name)) {
      throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `loopback-alias: interface name ${JSON.stringify(name)} is not usable as a file name`, { hint: 'net.interface_name: letters, digits, _ . -' })
    }
    const notes: string[] = []
    const configured = parseCidr(subnet, 'net.subnet')
    let effective = configured
    if (!isLoopbackSubnet(configured)) {
      const fallback = this.options.loopbackSubnet ?? DEFAULT_LOOPBACK_SUBNET
      effective = parseCidr(fallback, 'loopbackSubnet')
      if (!isLoopbackSubnet(effective)) {
        throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `loopback-alias: loopbackSubnet ${fallback} is not inside 127.0.0.0/8`, { hint: `e.g. ${DEFAULT_LOOPBACK_SUBNET}` })
      }
      notes.push(`net.subnet ${configured.cidr} is not loopback; using ${effective.cidr}`)
    }
    return this.serial(async () => {
      const state = new StateFile(this.options.stateDir, name)
      const stale = await state.removeStaleTemps()
      if (stale > 0) notes.push(`removed ${stale} temporary state file(s) left by an interrupted write`)
      const found = await state.read()
      if (found.kind === 'unreadable') {
        notes.push(`state file ${state.path} was unreadable (${found.reason}); started empty`)
        this.logger.warn({ path: state.path, reason: found.reason }, 'loopback-alias: unreadable state file, starting empty')
      }
      const { adopted, addresses } = await this.adopt(effective, found, notes)
      await state.write({ version: 1, driver: 'loopback-alias', name, subnet: effective.cidr, addresses })
      this.#opened = this.#made = { name, subnet: effective, state }
      if (adopted) this.logger.info({ name, subnet: effective.cidr }, 'loopback-alias: adopted existing state')
      const info: InterfaceInfo = { name: this.interfaceName, kind: this.kind, adopted, notes }
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

  override async applyAddresses({ add, remove, signal }: AddressChange): Promise<void> {
    const opened = this.ready()
    for (const address of [...add, ...remove]) checkAddress(address, opened.subnet)
    throwIfAborted(signal)
    return this.serial(async () => {
      throwIfAborted(signal)
      await this.apply(opened, add, remove)
    })
  }

  async listAddresses({ signal }: { signal?: AbortSignal } = {}): Promise<string[]> {
    const opened = this.ready()
    throwIfAborted(signal)
    return this.list(opened)
  }

  async close({ removeInterface = false }: { removeInterface?: boolean } = {}): Promise<void> {
    this.#opened = undefined
    const made = this.#made
    if (!removeInterface || !made) return
    this.#made = undefined
    await this.serial(async () => {
      await this.removeAll(made)
      await made.state.remove()
    })
  }

  /** The subnet in use, or the one `open()` would use. */
  protected effectiveSubnet(): string {
    if (this.#opened) return this.#opened.subnet.cidr
    try {
      const s = parseSubnet(this.options.subnet ?? '')
      if (isLoopbackSubnet(s)) return s.cidr
    } catch {
      // not set or not a subnet: the fallback applies
    }
    return this.options.loopbackSubnet ?? DEFAULT_LOOPBACK_SUBNET
  }

  protected ready(): Opened {
    return requireOpen(this.#opened, 'loopback-alias')
  }

  protected async serial<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.#queue.then(fn, fn)
    this.#queue = run.catch(() => {})
    return run
  }
}

export function isLoopbackSubnet(subnet: Ipv4Subnet): boolean {
  return subnetContains(LOOPBACK, subnet.network) && subnetContains(LOOPBACK, subnet.broadcast)
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

export function byAddress(a: string, b: string): number {
  return ipv4ToInt(a) - ipv4ToInt(b)
}
