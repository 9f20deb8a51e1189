import type { Allocation, AllocationEntry, Allocator, AllocatorOpenOptions } from '../contracts/allocator.js'
import type { Check } from '../contracts/check.js'
import { silentLogger, type Logger } from '../contracts/logger.js'
import { NgrokdError } from '../errors/ngrokd-error.js'
import { intToIpv4, ipv4ToInt, isIpv4, parseSubnet, subnetContains, type Ipv4Subnet } from '../util/ipv4.js'
import { Lifecycle } from '../util/lifecycle.js'
import { StableAssignments } from '../util/stable-assignments.js'

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

/**
 * The allocator rules (see the `Allocator` contract) without a disk: state lives as long as the
 * object, so a second `open()` behaves like a restart. `PersistentAllocator` extends it and only
 * adds loading and saving. The stable mapping itself is {@link StableAssignments} (slots = the
 * subnet's host addresses), shared with network mode's ports.
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
  private slots = new StableAssignments(1, 0)
  private readonly lifecycle = new Lifecycle(() => `${this.allocator} allocator`)
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
    this.slots = new StableAssignments(subnet.network + 1, subnet.broadcast - 1)
    const dirty = state ? this.restore(state, subnet) : false
    this.lifecycle.open()
    this.everOpened = true
    if (dirty) await this.persist()
  }

  async allocate(options: { hostnames: readonly string[] }): Promise<Allocation[]> {
    this.lifecycle.assertOpen('allocate()')
    const subnet = this.subnet!
    const results: Allocation[] = []
    const valid: string[] = []
    for (const hostname of options.hostnames) {
      if (typeof hostname !== 'string' || hostname === '') {
        results.push({ hostname: String(hostname), error: new NgrokdError('NGROKD_ERR_HOSTNAME_INVALID', 'allocator: empty hostname') })
      } else valid.push(hostname)
    }
    const { results: assigned, changed } = this.slots.assign(valid, this.reserved)
    let recycled = 0
    for (const a of assigned) {
      if ('exhausted' in a) {
        results.push({
          hostname: a.key,
          error: new NgrokdError('NGROKD_ERR_ADDRESS_EXHAUSTED', `allocator: no free address in ${subnet.cidr} for ${a.key}`, {
            hint: 'set a larger net.subnet (e.g. a /16) or remove endpoints you do not need',
          }),
        })
        continue
      }
      if (a.recycledFrom !== undefined) {
        recycled++
        this.logger.debug({ hostname: a.recycledFrom, address: intToIpv4(a.slot) }, 'allocator: recycling the address of a released hostname')
      }
      results.push({ hostname: a.key, address: intToIpv4(a.slot) })
    }
    if (recycled > 0) this.logger.info({ recycled, subnet: subnet.cidr }, 'allocator: subnet full, gave released addresses to new hostnames')
    if (changed || this.hasUnsavedChanges()) await this.persist()
    return results
  }

  async release(options: { hostnames: readonly string[] }): Promise<void> {
    this.lifecycle.assertOpen('release()')
    if (this.slots.release(options.hostnames) || this.hasUnsavedChanges()) await this.persist()
  }

  lookup(hostname: string): string | undefined {
    const slot = this.slots.lookup(hostname)
    return slot === undefined ? undefined : intToIpv4(slot)
  }

  list(): AllocationEntry[] {
    return this.slots.entries().map((e) => ({ hostname: e.key, address: intToIpv4(e.slot), active: e.active }))
  }

  async close(): Promise<void> {
    this.lifecycle.close()
  }

  async save(): Promise<void> {
    this.lifecycle.assertOpen('save()')
    await this.persist()
  }

  async diagnose(): Promise<Check[]> {
    const subnet = this.subnet
    if (!this.lifecycle.isOpen || !subnet) return [{ id: 'allocator.subnet', status: 'skip', summary: 'allocator is not open' }]
    let usable = subnet.size > 2 ? subnet.size - 2 : 0
    for (const r of this.reserved) if (r > subnet.network && r < subnet.broadcast) usable--
    const active = this.slots.size - this.slots.releasedCount
    const summary = `${active} of ${usable} addresses in ${subnet.cidr} in use, ${this.slots.releasedCount} kept for released hostnames`
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
      entries: this.slots.entries().map(({ key, slot, ...rest }) => ({ hostname: key, address: intToIpv4(slot), ...rest })),
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
    const dropped = this.slots.restore(
      state.entries.map(({ hostname, address, ...rest }) => ({ key: hostname, slot: isIpv4(address) ? ipv4ToInt(address) : -1, ...rest })),
      (slot) => subnetContains(subnet, slot) && !this.reserved.has(slot),
    )
    if (dropped.length > 0) {
      this.logger.warn({ dropped }, `allocator: dropped ${dropped.length} mappings whose address is now reserved or outside ${subnet.cidr}`)
    }
    return dropped.length > 0
  }

}
