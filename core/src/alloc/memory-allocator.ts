import type { Allocation, AllocationEntry, Allocator, AllocatorOpenOptions } from '../contracts/allocator.js'
import type { Check } from '../contracts/check.js'
import { silentLogger, type Logger } from '../contracts/logger.js'
import { NgrokdError } from '../errors/ngrokd-error.js'
import { intToIpv4, ipv4ToInt, isIpv4, parseSubnet, subnetContains, type Ipv4Subnet } from '../util/ipv4.js'

/** What an allocator remembers; the persistent allocator stores exactly this as JSON. */
export interface AllocatorState {
  version: 1
  /** Canonical CIDR the mappings were made for. */
  subnet: string
  /** Sorted by address. `released` orders inactive entries: the smallest is recycled first. */
  entries: Array<{ hostname: string; address: string; active: boolean; released?: number }>
}

export interface MemoryAllocatorOptions {
  logger?: Logger
}

interface Mapping {
  address: number
  active: boolean
}

/**
 * The allocator rules (see the `Allocator` contract) without a disk: state lives as long as the
 * object, so a second `open()` behaves like a restart. `PersistentAllocator` extends it and only
 * adds loading and saving.
 *
 * Cost: allocation is O(1) amortised per hostname. A cursor walks the subnet once, skipping used
 * and reserved addresses; addresses behind it are never free again until the next `open()`
 * (mappings are only dropped there, or recycled, which hands the address straight on).
 *
 * ```ts
 * const alloc = new MemoryAllocator()
 * await alloc.open({ subnet: '10.107.0.0/24', reserved: ['10.107.0.1'] })
 * const [a] = await alloc.allocate({ hostnames: ['api.prod'] }) // { hostname: 'api.prod', address: '10.107.0.2' }
 * ```
 */
export class MemoryAllocator implements Allocator {
  readonly allocator: string = 'memory'
  protected readonly logger: Logger
  private subnet: Ipv4Subnet | undefined
  private reserved = new Set<number>()
  private readonly byHost = new Map<string, Mapping>()
  private readonly byAddr = new Map<number, string>()
  /** Inactive hostnames in release order (Map keeps insertion order): the first is the oldest. */
  private readonly released = new Map<string, number>()
  private releaseSeq = 0
  private cursor = 0
  private opened = false
  private everOpened = false

  constructor(options: MemoryAllocatorOptions = {}) {
    this.logger = options.logger ?? silentLogger
  }

  async open(options: AllocatorOpenOptions): Promise<void> {
    let subnet: Ipv4Subnet
    try {
      subnet = parseSubnet(options.subnet)
    } catch (cause) {
      throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `allocator: net.subnet ${JSON.stringify(options.subnet)} is not an ipv4 cidr subnet`, {
        cause,
        hint: 'set net.subnet to a network address and prefix, e.g. 10.107.0.0/16',
      })
    }
    const reserved = new Set<number>()
    for (const r of options.reserved ?? []) {
      if (!isIpv4(r)) {
        throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `allocator: reserved address ${JSON.stringify(r)} is not ipv4`, {
          hint: 'list reserved addresses as dotted quads, e.g. 10.107.0.1',
        })
      }
      reserved.add(ipv4ToInt(r))
    }
    // Read before touching memory: a failed load leaves the allocator as it was.
    const state = await this.loadState()

    this.subnet = subnet
    this.reserved = reserved
    this.byHost.clear()
    this.byAddr.clear()
    this.released.clear()
    this.releaseSeq = 0
    this.cursor = subnet.network + 1
    const dirty = state ? this.restore(state, subnet) : false
    this.opened = true
    this.everOpened = true
    if (dirty) await this.persist()
  }

  async allocate(options: { hostnames: readonly string[] }): Promise<Allocation[]> {
    const subnet = this.assertOpen()
    const results: Allocation[] = []
    let changed = false
    let recycled = 0
    for (const hostname of options.hostnames) {
      if (typeof hostname !== 'string' || hostname === '') {
        results.push({ hostname: String(hostname), error: new NgrokdError('NGROKD_ERR_HOSTNAME_INVALID', 'allocator: empty hostname') })
        continue
      }
      const known = this.byHost.get(hostname)
      if (known) {
        if (!known.active) {
          known.active = true
          this.released.delete(hostname)
          changed = true
        }
        results.push({ hostname, address: intToIpv4(known.address) })
        continue
      }
      let address = this.takeNeverUsed(subnet)
      if (address === undefined) {
        address = this.takeOldestReleased()
        if (address !== undefined) recycled++
      }
      if (address === undefined) {
        results.push({
          hostname,
          error: new NgrokdError('NGROKD_ERR_ADDRESS_EXHAUSTED', `allocator: no free address in ${subnet.cidr} for ${hostname}`, {
            hint: 'set a larger net.subnet (e.g. a /16) or remove endpoints you do not need',
          }),
        })
        continue
      }
      this.byHost.set(hostname, { address, active: true })
      this.byAddr.set(address, hostname)
      changed = true
      results.push({ hostname, address: intToIpv4(address) })
    }
    if (recycled > 0) this.logger.info({ recycled, subnet: subnet.cidr }, 'allocator: subnet full, gave released addresses to new hostnames')
    if (changed || this.hasUnsavedChanges()) await this.persist()
    return results
  }

  async release(options: { hostnames: readonly string[] }): Promise<void> {
    this.assertOpen()
    let changed = false
    for (const hostname of options.hostnames) {
      const known = this.byHost.get(hostname)
      if (!known || !known.active) continue
      known.active = false
      this.released.set(hostname, ++this.releaseSeq)
      changed = true
    }
    if (changed || this.hasUnsavedChanges()) await this.persist()
  }

  lookup(hostname: string): string | undefined {
    const m = this.byHost.get(hostname)
    return m ? intToIpv4(m.address) : undefined
  }

  list(): AllocationEntry[] {
    return [...this.byHost.entries()]
      .sort((a, b) => a[1].address - b[1].address)
      .map(([hostname, m]) => ({ hostname, address: intToIpv4(m.address), active: m.active }))
  }

  async close(): Promise<void> {
    this.opened = false
  }

  async diagnose(): Promise<Check[]> {
    const subnet = this.subnet
    if (!this.opened || !subnet) return [{ id: 'allocator.subnet', status: 'skip', summary: 'allocator is not open' }]
    let usable = subnet.size > 2 ? subnet.size - 2 : 0
    for (const r of this.reserved) if (r > subnet.network && r < subnet.broadcast) usable--
    const active = this.byHost.size - this.released.size
    const summary = `${active} of ${usable} addresses in ${subnet.cidr} in use, ${this.released.size} kept for released hostnames`
    const hint = 'set a larger net.subnet (e.g. a /16)'
    if (usable === 0) return [{ id: 'allocator.subnet', status: 'fail', summary: `${subnet.cidr} has no usable address`, hint, code: 'NGROKD_ERR_ADDRESS_EXHAUSTED' }]
    if (active >= usable) return [{ id: 'allocator.subnet', status: 'fail', summary, hint, code: 'NGROKD_ERR_ADDRESS_EXHAUSTED' }]
    if (active >= usable * 0.9) return [{ id: 'allocator.subnet', status: 'warn', summary, hint }]
    return [{ id: 'allocator.subnet', status: 'ok', summary }]
  }

  /** The state to persist. */
  protected snapshot(): AllocatorState {
    const subnet = this.subnet
    if (!subnet) throw new NgrokdError('NGROKD_ERR_DRIVER_MISUSE', `${this.allocator} allocator: never opened`)
    return {
      version: 1,
      subnet: subnet.cidr,
      entries: [...this.byHost.entries()]
        .sort((a, b) => a[1].address - b[1].address)
        .map(([hostname, m]) => {
          const seq = this.released.get(hostname)
          return seq === undefined ? { hostname, address: intToIpv4(m.address), active: m.active } : { hostname, address: intToIpv4(m.address), active: false, released: seq }
        }),
    }
  }

  /** Where `open()` gets earlier state. In memory: what the previous `open()` left. */
  protected async loadState(): Promise<AllocatorState | undefined> {
    return this.everOpened && this.subnet ? this.snapshot() : undefined
  }

  /** Called once after each batch that changed something (and after `open()` dropped mappings). */
  protected async persist(): Promise<void> {}

  /** True when an earlier `persist()` failed, so the next batch saves even if it changes nothing. */
  protected hasUnsavedChanges(): boolean {
    return false
  }

  /** Loads `state` into the empty maps; returns true when it dropped something (the caller then saves). */
  private restore(state: AllocatorState, subnet: Ipv4Subnet): boolean {
    if (state.subnet !== subnet.cidr) {
      this.logger.warn(
        { previous: state.subnet, subnet: subnet.cidr, dropped: state.entries.length },
        `allocator: net.subnet changed from ${state.subnet} to ${subnet.cidr}; dropping ${state.entries.length} earlier mappings`,
      )
      return state.entries.length > 0
    }
    const dropped: string[] = []
    const inactive: Array<{ hostname: string; seq: number }> = []
    for (const e of state.entries) {
      const address = ipv4ToInt(e.address)
      if (!subnetContains(subnet, address) || address === subnet.network || address === subnet.broadcast || this.reserved.has(address) || this.byAddr.has(address) || this.byHost.has(e.hostname)) {
        dropped.push(e.hostname)
        continue
      }
      this.byHost.set(e.hostname, { address, active: e.active })
      this.byAddr.set(address, e.hostname)
      if (!e.active) inactive.push({ hostname: e.hostname, seq: e.released ?? 0 })
    }
    inactive.sort((a, b) => a.seq - b.seq)
    for (const { hostname } of inactive) this.released.set(hostname, ++this.releaseSeq)
    if (dropped.length > 0) {
      this.logger.warn({ dropped }, `allocator: dropped ${dropped.length} mappings whose address is now reserved or outside ${subnet.cidr}`)
    }
    return dropped.length > 0
  }

  private takeNeverUsed(subnet: Ipv4Subnet): number | undefined {
    while (this.cursor < subnet.broadcast) {
      const a = this.cursor++
      if (!this.byAddr.has(a) && !this.reserved.has(a)) return a
    }
    return undefined
  }

  private takeOldestReleased(): number | undefined {
    const oldest = this.released.keys().next()
    if (oldest.done) return undefined
    const hostname = oldest.value
    const m = this.byHost.get(hostname)!
    this.released.delete(hostname)
    this.byHost.delete(hostname)
    this.byAddr.delete(m.address)
    this.logger.debug({ hostname, address: intToIpv4(m.address) }, 'allocator: recycling the address of a released hostname')
    return m.address
  }

  private assertOpen(): Ipv4Subnet {
    if (!this.opened || !this.subnet) {
      throw new NgrokdError('NGROKD_ERR_DRIVER_MISUSE', `${this.allocator} allocator: called before open() or after close()`, { hint: 'await open() first' })
    }
    return this.subnet
  }
}
