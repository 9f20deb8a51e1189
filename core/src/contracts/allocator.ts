import type { Check } from './check.js'

export interface AllocatorOpenOptions {
  /** `net.subnet`, CIDR. */
  subnet: string
  /**
   * Addresses never handed out besides the network and broadcast addresses, which are always
   * reserved. The interface's own address (the subnet's first host) is passed here by the daemon.
   */
  reserved?: readonly string[]
}

export type Allocation = { hostname: string; address: string } | { hostname: string; error: Error }

export interface AllocationEntry {
  hostname: string
  address: string
  /** False once released: the mapping is kept so the name gets the same address back. */
  active: boolean
}

/**
 * Hands out one IPv4 address per hostname from a subnet.
 *
 * Rules:
 * - The same hostname gets the same address for as long as the subnet does not change, across
 *   restarts for persistent allocators.
 * - Never hands out the network address, the broadcast address or a `reserved` one.
 * - A released address is not given to another hostname while never-used addresses remain.
 * - Exhaustion fails only the hostnames that could not be served, with `NGROKD_ERR_ADDRESS_EXHAUSTED`.
 * - When `open()` sees a different subnet than the one its state was made for, it drops the old
 *   mappings and allocates afresh.
 * - Batches are the unit of persistence: one `allocate()` call is written once.
 */
export interface Allocator {
  readonly allocator: string
  open(options: AllocatorOpenOptions): Promise<void>
  allocate(options: { hostnames: readonly string[] }): Promise<Allocation[]>
  release(options: { hostnames: readonly string[] }): Promise<void>
  /** The current address of a hostname, active or not. */
  lookup(hostname: string): string | undefined
  list(): AllocationEntry[]
  close(): Promise<void>
  diagnose(): Promise<Check[]>
  /** Writes the state again, changed or not (its file was removed under the daemon). Optional: one without a disk has none. */
  save?(): Promise<void>
}
