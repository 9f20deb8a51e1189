import { InterfaceBase, type AddressChange, type InterfaceCapabilities, type InterfaceInfo, type InterfaceOpenOptions } from '../../contracts/interface.js'
import { NgrokdError, SyscallError } from '../../errors/ngrokd-error.js'
import { isIpv4, parseSubnet, subnetContains, type Ipv4Subnet } from '../../util/ipv4.js'
import { Lifecycle } from '../../util/lifecycle.js'

/** The simulated operating system: interface name → its addresses. Share it to simulate a restart. */
export interface FakeSystem {
  readonly interfaces: Map<string, Set<string>>
}

export type FakeInterfaceMethod = 'open' | 'addAddress' | 'removeAddress' | 'applyAddresses' | 'listAddresses' | 'close'

export interface FakeInterfaceCall {
  method: FakeInterfaceMethod
  /** The address for add/remove, the change for apply, the options for open/close. */
  args: unknown
}

export interface FakeInterfaceOptions {
  /** Default: a new, empty system per instance. */
  system?: FakeSystem
  /** Driver id reported; default `fake-interface`. */
  driver?: string
  capabilities?: Partial<InterfaceCapabilities>
  /** Used when `loopbackOnly` is set and `open()` gets a subnet outside 127.0.0.0/8. */
  loopbackSubnet?: string
}

export interface InjectFailureOptions {
  /** Default: `SyscallError(<method>, 5, 'EIO')`. */
  error?: Error | (() => Error)
  /** How many calls fail; default 1. */
  times?: number
  /** Only calls for this address (add/remove) fail. */
  address?: string
}

interface Failure {
  method: FakeInterfaceMethod
  remaining: number
  address: string | undefined
  error: () => Error
}

/**
 * An in-memory interface driver (wireguard-go's `tuntest.ChannelTUN`): keeps every rule of the
 * `Interface` contract, records each call, and fails on demand. For tests of the core and plugins.
 *
 * ```ts
 * const system = FakeInterface.createSystem()
 * const iface = new FakeInterface({ system })
 * iface.injectFailure('addAddress', { error: new PermissionError('no'), address: '10.107.0.9' })
 * ```
 */
export class FakeInterface extends InterfaceBase {
  readonly driver: string
  readonly system: FakeSystem
  /** Every call, in order (applyAddresses also records the add/remove calls it makes). */
  readonly calls: FakeInterfaceCall[] = []
  readonly #capabilities: InterfaceCapabilities
  readonly #loopbackSubnet: string
  #failures: Failure[] = []
  #name: string | undefined
  #subnet: Ipv4Subnet | undefined
  readonly #lifecycle = new Lifecycle('fake-interface')

  constructor(options: FakeInterfaceOptions = {}) {
    super()
    this.driver = options.driver ?? 'fake-interface'
    this.system = options.system ?? FakeInterface.createSystem()
    this.#capabilities = { ...super.capabilities, requiresPrivileges: 'none', ...options.capabilities }
    this.#loopbackSubnet = options.loopbackSubnet ?? '127.107.0.0/16'
  }

  static createSystem(): FakeSystem {
    return { interfaces: new Map() }
  }

  override get capabilities(): InterfaceCapabilities {
    return this.#capabilities
  }

  /** The addresses of the opened interface, straight from the simulated system. */
  get addresses(): ReadonlySet<string> {
    return this.system.interfaces.get(this.#name ?? '') ?? new Set()
  }

  /** Makes the next `times` calls of `method` reject with `error`. */
  injectFailure(method: FakeInterfaceMethod, options: InjectFailureOptions = {}): void {
    const { error } = options
    this.#failures.push({
      method,
      remaining: options.times ?? 1,
      address: options.address,
      error: typeof error === 'function' ? error : () => error ?? new SyscallError(`fake-interface ${method}`, 5, 'EIO'),
    })
  }

  async open(options: InterfaceOpenOptions): Promise<InterfaceInfo> {
    this.#record('open', { name: options.name, subnet: options.subnet })
    throwIfAborted(options.signal)
    this.#maybeFail('open')
    let subnet: Ipv4Subnet
    try {
      subnet = parseSubnet(options.subnet)
    } catch (cause) {
      throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `fake-interface: bad subnet ${JSON.stringify(options.subnet)}`, { cause })
    }
    const info: InterfaceInfo = { name: options.name, kind: 'fake', adopted: this.system.interfaces.has(options.name), notes: [] }
    if (this.#capabilities.loopbackOnly && !subnetContains(LOOPBACK, subnet.network)) {
      subnet = parseSubnet(this.#loopbackSubnet)
      info.subnet = subnet.cidr
      info.notes.push(`net.subnet ${options.subnet} is not loopback; using ${subnet.cidr}`)
    }
    if (!info.adopted) this.system.interfaces.set(options.name, new Set())
    this.#name = options.name
    this.#subnet = subnet
    this.#lifecycle.open()
    return info
  }

  async addAddress({ address, signal }: { address: string; signal?: AbortSignal }): Promise<void> {
    this.#record('addAddress', address)
    this.#addresses('addAddress', signal, address).add(address)
  }

  async removeAddress({ address, signal }: { address: string; signal?: AbortSignal }): Promise<void> {
    this.#record('removeAddress', address)
    this.#addresses('removeAddress', signal, address).delete(address)
  }

  override async applyAddresses(change: AddressChange): Promise<void> {
    this.#record('applyAddresses', { add: [...change.add], remove: [...change.remove] })
    this.#ready(change.signal)
    this.#maybeFail('applyAddresses')
    await super.applyAddresses(change)
  }

  async listAddresses(options: { signal?: AbortSignal } = {}): Promise<string[]> {
    this.#record('listAddresses', undefined)
    this.#ready(options.signal)
    this.#maybeFail('listAddresses')
    return [...this.addresses]
  }

  async close(options: { removeInterface?: boolean } = {}): Promise<void> {
    this.#record('close', { ...options })
    this.#maybeFail('close')
    if (options.removeInterface && this.#name !== undefined) this.system.interfaces.delete(this.#name)
    this.#lifecycle.close()
  }

  #record(method: FakeInterfaceMethod, args: unknown): void {
    this.calls.push({ method, args })
  }

  #ready(signal: AbortSignal | undefined): Set<string> {
    this.#lifecycle.assertOpen()
    throwIfAborted(signal)
    const set = this.system.interfaces.get(this.#name!)
    // removed behind this instance's back (another instance closed it with removeInterface)
    if (!set) throw new SyscallError('fake-interface', 19, 'ENODEV', { detail: this.#name })
    return set
  }

  #addresses(method: FakeInterfaceMethod, signal: AbortSignal | undefined, address: string): Set<string> {
    const set = this.#ready(signal)
    if (!isIpv4(address) || !subnetContains(this.#subnet!, address)) {
      throw new NgrokdError('NGROKD_ERR_DRIVER_MISUSE', `fake-interface: ${JSON.stringify(address)} is not an IPv4 address in ${this.#subnet!.cidr}`, {
        hint: 'allocate addresses from InterfaceInfo.subnet (or net.subnet)',
      })
    }
    this.#maybeFail(method, address)
    return set
  }

  #maybeFail(method: FakeInterfaceMethod, address?: string): void {
    const failure = this.#failures.find((f) => f.method === method && f.remaining > 0 && (f.address === undefined || f.address === address))
    if (!failure) return
    failure.remaining--
    this.#failures = this.#failures.filter((f) => f.remaining > 0)
    throw failure.error()
  }
}

const LOOPBACK = parseSubnet('127.0.0.0/8')

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new NgrokdError('NGROKD_ERR_ABORTED', 'fake-interface: aborted', { cause: signal.reason })
}
