import {
  formatError,
  InterfaceBase,
  isIpv4,
  isNgrokdError,
  NgrokdError,
  parseSubnet,
  silentLogger,
  type AddressChange,
  type Check,
  type InterfaceCapabilities,
  type InterfaceInfo,
  type InterfaceOpenOptions,
  type Logger,
  requireOpen,
} from '@ngrokd/core/driver'
import {
  changeInterfaceAddresses,
  DARWIN_ERRNO,
  errnoName,
  interfaceAddresses,
  loadLibSystem,
  setInterfaceMtu,
  type Caller,
  type DarwinSyscalls,
} from '@ngrokd/driver-loopback-alias/darwin'
import { diagnoseDarwinUtun } from './diagnose.js'
import { unitForName } from './kern-control.js'
import { readRoutes } from './route/route-dump.js'
import { conflictError, findSubnetConflicts } from './route/subnet-conflicts.js'
import { openUtun, UtunPacketDrain, type DrainStats, type UtunControl } from './utun-control.js'

/** Options of the `darwin-utun` driver (`net.*` and `net.driver_options` from the daemon's config). */
export interface DarwinUtunOptions {
  /**
   * `net.interface_name`. Only a wish on macOS: the kernel names utun interfaces itself (`utunN`).
   * `utunN` asks for that unit (the next free one if it is taken); any other name gets the next
   * free unit. `InterfaceInfo.name` is the name the kernel gave.
   */
  name?: string
  /** `net.subnet`, e.g. `10.107.0.0/16`. Only /32 host addresses from it are ever added. */
  subnet?: string
  /** Open even when the subnet overlaps an address or route on another interface. Default false. */
  force?: boolean
  /**
   * MTU of the utun. Default 16384, lo0's: only local connections to the utun's own addresses use
   * it (a packet the kernel routes into the utun is written back by ngrokd), so it need not be an
   * Internet-sized 1500, and larger packets mean fewer hops through ngrokd.
   */
  mtu?: number
  /** `cleanup.remove_interface_on_stop`. No effect on macOS: a utun cannot outlive its control socket. */
  removeOnClose?: boolean
}

export interface DarwinUtunInterfaceOptions extends DarwinUtunOptions {
  logger?: Logger
  /** The macOS system calls; default libSystem through koffi, loaded on first use. Tests pass a fake kernel. */
  syscalls?: DarwinSyscalls
}

export const DEFAULT_MTU = 16384
const CALLER: Caller = { driver: 'darwin-utun', privilegeHint: 'run ngrokd as root (sudo): macOS lets only root make utun interfaces and change their addresses' }

interface OpenState {
  /** The name open() was called with (a wish on macOS). */
  requested: string
  control: UtunControl
  drain: UtunPacketDrain
  info: InterfaceInfo
}

/**
 * The macOS interface driver: one utun interface holding the endpoint addresses as /32 host
 * addresses (each its own point-to-point destination), made through the PF_SYSTEM kernel control
 * socket and configured with SIOCAIFADDR/SIOCDIFADDR/SIOCSIFMTU, all through libSystem.
 *
 * - `open()` refuses a subnet that overlaps an address or route on another interface (unless
 *   `force`), makes the utun, sets its MTU and starts the packet drain: a packet the kernel routes
 *   into the utun is written back into it when it is addressed to one of the utun's own addresses
 *   (input on the utun: delivered locally), dropped otherwise (see UtunPacketDrain for why).
 * - The utun lives exactly as long as ngrokd's control socket: `close()` — or ngrokd's exit, even a
 *   crash — makes it vanish with its addresses. So there is never anything to adopt: after a
 *   restart `open()` makes a new utun and the daemon re-adds the addresses.
 * - Address changes are idempotent (EEXIST on add and EADDRNOTAVAIL on remove are success);
 *   `listAddresses()` reads the kernel (getifaddrs).
 *
 * ```ts
 * const iface = new DarwinUtunInterface({ logger })
 * const info = await iface.open({ name: 'ngrokd0', subnet: '10.107.0.0/16' }) // info.name: 'utun4'
 * await iface.applyAddresses({ add: ['10.107.0.2', '10.107.0.3'], remove: [] })
 * await iface.close() // the utun and its addresses are gone
 * ```
 */
export class DarwinUtunInterface extends InterfaceBase {
  readonly driver = 'darwin-utun'
  readonly #options: DarwinUtunInterfaceOptions
  readonly #logger: Logger
  #syscalls: DarwinSyscalls | undefined
  #state: OpenState | undefined
  /** Serialises every change and open/close: concurrent calls take effect one after the other. */
  #queue: Promise<unknown> = Promise.resolve()

  constructor(options: DarwinUtunInterfaceOptions = {}) {
    super()
    this.#options = options
    this.#logger = options.logger ?? silentLogger
    this.#syscalls = options.syscalls
  }

  override get capabilities(): InterfaceCapabilities {
    return { loopbackOnly: false, ipv6: false, requiresPrivileges: 'root', batching: false }
  }

  /** What the packet drain did since `open()` (reflected, dropped, errors); undefined when not open. */
  get stats(): DrainStats | undefined {
    return this.#state?.drain.stats
  }

  async open({ name, subnet: subnetText, adoptOnly, signal }: InterfaceOpenOptions): Promise<InterfaceInfo> {
    throwIfAborted(signal, 'open')
    if (typeof name !== 'string' || name.length === 0) throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', 'darwin-utun: net.interface_name is empty', { hint: 'e.g. ngrokd0 (macOS names the utun itself)' })
    const subnet = parseSubnetOption(subnetText)
    // ngrokd cleanup: a utun and its addresses vanish with the descriptor of the process that made it, so nothing a
    // stopped daemon made is left to adopt, and nothing is made (nor a route conflict judged) to look
    if (adoptOnly) return { name, kind: 'utun', adopted: false, notes: [], absent: true }
    const mtu = this.#options.mtu ?? DEFAULT_MTU
    if (!Number.isInteger(mtu) || mtu < 72 || mtu > 65535) {
      // IF_MINMTU and IF_MAXMTU — <net/if_var.h>
      throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `darwin-utun: mtu ${JSON.stringify(mtu)} is not between 72 and 65535`, { hint: `leave it out for ${DEFAULT_MTU}` })
    }
    return this.#serial(async () => {
      throwIfAborted(signal, 'open')
      if (this.#state) {
        if (name === this.#state.requested) return this.#state.info
        throw new NgrokdError('NGROKD_ERR_DRIVER_MISUSE', `darwin-utun: already open as ${this.#state.control.name}`, { hint: 'close() the interface driver first' })
      }
      const sys = await this.#sys()
      const conflicts = findSubnetConflicts({ subnet, ifaddrs: sys.getifaddrs(), routes: readRoutes(sys, CALLER) })
      if (conflicts.length > 0) {
        if (!this.#options.force) throw conflictError(subnet, conflicts)
        this.#logger.warn({ subnet: subnet.cidr, conflicts: conflicts.map((c) => c.description) }, 'darwin-utun: net.subnet overlaps, going on because force is set')
      }
      throwIfAborted(signal, 'open')

      const notes: string[] = []
      const wished = unitForName(name)
      let control: UtunControl
      try {
        control = openUtun(sys, { unit: wished ?? 0, caller: CALLER })
      } catch (e) {
        if (wished === undefined || !isSyscallErrno(e, DARWIN_ERRNO.EBUSY)) throw e
        control = openUtun(sys, { unit: 0, caller: CALLER })
        notes.push(`${name} is taken by another program; macOS gave ngrokd ${control.name}`)
      }
      if (control.name !== name && wished === undefined) notes.push(wishNote(name, control.name))
      let drain: UtunPacketDrain
      try {
        setInterfaceMtu(sys, { ...CALLER, ifname: control.name, mtu })
        drain = this.#startDrain(sys, control, mtu)
      } catch (e) {
        sys.close(control.fd) // the utun goes with it
        throw e
      }
      const info: InterfaceInfo = { name: control.name, kind: 'utun', adopted: false, notes }
      this.#state = { requested: name, control, drain, info }
      this.#logger.info({ name: control.name, requested: name, mtu }, `darwin-utun: made ${control.name} (it vanishes with its addresses when ngrokd exits: after a restart the addresses are added again)`)
      if (this.#options.removeOnClose === false) this.#logger.info('darwin-utun: cleanup.remove_interface_on_stop: false has no effect on macOS (a utun cannot outlive ngrokd)')
      return info
    })
  }

  override async addAddress({ address, signal }: { address: string; signal?: AbortSignal }): Promise<void> {
    await this.applyAddresses({ add: [address], remove: [], ...(signal ? { signal } : {}) })
  }

  override async removeAddress({ address, signal }: { address: string; signal?: AbortSignal }): Promise<void> {
    await this.applyAddresses({ add: [], remove: [address], ...(signal ? { signal } : {}) })
  }

  /** Removes, then adds: one ioctl per address, on one socket. Stops at the first failure. */
  override async applyAddresses({ add, remove, signal }: AddressChange): Promise<void> {
    this.#requireOpen('applyAddresses')
    for (const address of [...remove, ...add]) validateAddress(address)
    throwIfAborted(signal, 'applyAddresses')
    await this.#serial(async () => {
      throwIfAborted(signal, 'applyAddresses')
      const state = this.#requireOpen('applyAddresses')
      const sys = await this.#sys()
      try {
        changeInterfaceAddresses(sys, { ...CALLER, ifname: state.control.name, add, remove, pointToPoint: true })
      } finally {
        // after a failure too: the change stops at the first address the kernel refuses
        this.#learnOwnAddresses(sys, state, { add, remove })
      }
    })
  }

  /** The IPv4 addresses on the utun, read from the kernel (getifaddrs). */
  override async listAddresses({ signal }: { signal?: AbortSignal } = {}): Promise<string[]> {
    const { control } = this.#requireOpen('listAddresses')
    throwIfAborted(signal, 'listAddresses')
    return interfaceAddresses(await this.#sys(), control.name)
  }

  /**
   * Stops the drain and closes the control socket: the kernel removes the utun and its addresses.
   * Always, whatever `removeInterface` says (a utun cannot outlive its socket). Safe to call twice.
   */
  override async close(_options: { removeInterface?: boolean } = {}): Promise<void> {
    await this.#serial(async () => {
      const state = this.#state
      if (!state) return
      this.#state = undefined
      state.drain.stop()
      ;(await this.#sys()).close(state.control.fd)
      this.#logger.info({ name: state.control.name, ...state.drain.stats }, `darwin-utun: closed ${state.control.name}`)
    })
  }

  override diagnose(): Promise<Check[]> {
    return diagnoseDarwinUtun({
      syscalls: () => this.#sys(),
      ...(this.#options.name === undefined ? {} : { name: this.#options.name }),
      ...(this.#options.subnet === undefined ? {} : { subnet: this.#options.subnet }),
      ...(this.#state ? { open: { name: this.#state.control.name, requested: this.#state.requested, drain: { ...this.#state.drain.stats } } } : {}),
    })
  }

  #startDrain(sys: DarwinSyscalls, control: UtunControl, mtu: number): UtunPacketDrain {
    const name = control.name
    return new UtunPacketDrain(sys, control.fd, {
      mtu,
      onReflect: (stats) => {
        if (stats.packetsReflected === 1) {
          this.#logger.info({ name }, `darwin-utun: the kernel routes local connections to ${name}'s addresses into it: ngrokd writes those packets back (one hop through ngrokd per packet; net.driver: loopback-alias avoids it)`)
        }
      },
      onDrop: (stats, length, reason) => {
        if (stats.packetsDropped === 1) this.#logger.warn({ name, length, reason }, `darwin-utun: a packet was routed into ${name} and dropped (${reason}: only packets to its own addresses are written back; check the routes to net.subnet)`)
        else this.#logger.debug({ name, length, reason, packetsDropped: stats.packetsDropped }, 'darwin-utun: dropped a packet')
      },
      onWriteError: (error) => {
        const what = typeof error === 'number' ? `${errnoName(error)} (${error})` : error.message
        this.#logger.error({ name, error: what }, `darwin-utun: writing a packet back into ${name} failed: ${what}; such packets are lost (counted in writeErrors, not logged again)`)
      },
      onReadError: (errno) => this.#logger.error({ name, errno }, `darwin-utun: reading ${name} failed: ${errnoName(errno)} (${errno}); no longer draining it`),
    })
  }

  /**
   * Tells the drain which addresses are the utun's: what the kernel holds after a change. If
   * getifaddrs fails, what was asked for (an address that failed to be added is harmless there:
   * ip_input would not deliver its packets locally).
   */
  #learnOwnAddresses(sys: DarwinSyscalls, { control, drain }: OpenState, { add, remove }: { add: readonly string[]; remove: readonly string[] }): void {
    try {
      drain.ownAddresses = interfaceAddresses(sys, control.name)
    } catch (e) {
      const asked = new Set(drain.ownAddresses)
      for (const address of remove) asked.delete(address)
      for (const address of add) asked.add(address)
      drain.ownAddresses = [...asked]
      this.#logger.warn({ name: control.name, err: e }, `darwin-utun: cannot read ${control.name}'s addresses back (${formatError(e).split('\n')[0]}); writing back packets to the ones asked for`)
    }
  }

  async #sys(): Promise<DarwinSyscalls> {
    return (this.#syscalls ??= await loadLibSystem(CALLER.driver))
  }

  #requireOpen(what: string): OpenState {
    return requireOpen(this.#state, 'darwin-utun', `${what}()`)
  }

  async #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn)
    this.#queue = run.catch(() => {})
    return run
  }
}

function wishNote(requested: string, given: string): string {
  return `macOS names utun interfaces itself: net.interface_name ${requested} is ${given}`
}

function isSyscallErrno(e: unknown, errno: number): boolean {
  return isNgrokdError(e, 'NGROKD_ERR_SYSCALL') && (e as { errno?: number }).errno === errno
}

function parseSubnetOption(text: string) {
  try {
    return parseSubnet(text)
  } catch (e) {
    throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `darwin-utun: invalid net.subnet ${JSON.stringify(text)}`, { cause: e, hint: 'use an IPv4 CIDR subnet such as 10.107.0.0/16' })
  }
}

function validateAddress(address: string): void {
  if (typeof address !== 'string' || !isIpv4(address)) {
    throw new NgrokdError('NGROKD_ERR_DRIVER_MISUSE', `darwin-utun: not an IPv4 address: ${JSON.stringify(address)}`, { hint: 'allocate addresses from net.subnet' })
  }
}

function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new NgrokdError('NGROKD_ERR_ABORTED', `darwin-utun: ${what} aborted`, { cause: signal.reason })
}
