import type { Check } from './check.js'

export interface InterfaceCapabilities {
  /** Addresses must come from 127.0.0.0/8 (loopback aliases). */
  readonly loopbackOnly: boolean
  readonly ipv6: boolean
  readonly requiresPrivileges: 'root' | 'cap_net_admin' | 'administrator' | 'none'
  /** `applyAddresses` sends a batch in one go rather than one call per address. */
  readonly batching: boolean
}

export interface InterfaceOpenOptions {
  /** `net.interface_name`, e.g. `ngrokd0`. */
  name: string
  /** `net.subnet` in CIDR form, e.g. `10.107.0.0/16`. */
  subnet: string
  /**
   * `ngrokd cleanup`: adopt what an earlier run left and make nothing. A driver that honours it
   * resolves `absent: true` when there is no interface to adopt (and skips checks that only matter
   * for serving, such as a subnet conflict); one that ignores it makes the interface, and cleanup
   * deletes it again.
   */
  adoptOnly?: boolean
  signal?: AbortSignal
}

export interface InterfaceInfo {
  /** The name the OS knows the interface by (may differ from the requested one, e.g. `utun4`). */
  name: string
  /**
   * The OS's index of the interface (Linux's ifindex), when the driver knows it. A `repair()` that makes the
   * interface again sets the new index here, in the object `open()` returned: plugins follow it (`ctx.interface()`).
   */
  index?: number
  /** What the driver made, e.g. `dummy`, `bridge (dummy unavailable)`, `lo aliases`. */
  kind: string
  /** True when `open()` found the interface already there (a crash leftover) and adopted it. */
  adopted: boolean
  /** Notes for `ngrokd status` (fallbacks taken, and why). */
  notes: string[]
  /** `adoptOnly` found no interface: nothing was made, and only `close()` may be called. */
  absent?: boolean
  /**
   * Set when the driver can only use addresses from another range than `net.subnet` (a
   * `loopbackOnly` driver given a non-loopback subnet): the allocator then uses this subnet.
   */
  subnet?: string
}

export interface AddressChange {
  add: readonly string[]
  remove: readonly string[]
  signal?: AbortSignal
}

/**
 * A platform network-interface driver ("interface driver" in prose). Owns one virtual interface
 * and the IPv4 host addresses bound to it.
 *
 * Rules every implementation keeps (the conformance kit checks them):
 * - `open()` reuses an interface that already exists with the same name (adopts a crash leftover).
 * - `addAddress()` of an address already present resolves; `removeAddress()` of an absent one resolves.
 * - `listAddresses()` reads the OS, not the driver's memory, and returns exactly the endpoint addresses
 *   on the interface (dotted quads, any order); the kit compares it with the system's own view (`inspect`).
 * - `close()` may be called more than once; with `removeInterface: true` it deletes what `open()` made, with
 *   `false` it leaves it for the next `open()` to adopt (the daemon always says which).
 * - `repair()`, when the driver has it, puts back an interface deleted or brought down under it.
 * - Failures are `NgrokdError`s with a documented code (`NGROKD_ERR_PERMISSION` for EPERM/EACCES).
 * - Methods called before `open()` reject.
 */
export interface Interface {
  /** Driver id, e.g. `linux-netlink`. Used in logs and `ngrokd doctor`. */
  readonly driver: string
  readonly capabilities: InterfaceCapabilities
  open(options: InterfaceOpenOptions): Promise<InterfaceInfo>
  addAddress(options: { address: string; signal?: AbortSignal }): Promise<void>
  removeAddress(options: { address: string; signal?: AbortSignal }): Promise<void>
  /** Adds and removes many addresses; a driver with `batching` does it in one round trip. */
  applyAddresses(change: AddressChange): Promise<void>
  listAddresses(options?: { signal?: AbortSignal }): Promise<string[]>
  /**
   * Puts the interface itself back when it was changed under the driver (deleted, brought down):
   * called before every reconcile, which then adds the missing addresses. Resolves what it did, in
   * a sentence for the log, or undefined when nothing was wrong. Optional (InterfaceBase: nothing).
   */
  repair?(options?: { signal?: AbortSignal }): Promise<string | undefined>
  close(options?: { removeInterface?: boolean }): Promise<void>
  /** Checks of this instance (the conformance kit runs them); must not change the system. `ngrokd doctor` runs the driver module's `diagnose()`, which needs no instance. */
  diagnose(): Promise<Check[]>
}

/**
 * Defaults for optional behaviour, so a capability added later does not break third-party drivers
 * (Kysely's `DialectAdapterBase`).
 */
export abstract class InterfaceBase implements Interface {
  abstract readonly driver: string
  get capabilities(): InterfaceCapabilities {
    return { loopbackOnly: false, ipv6: false, requiresPrivileges: 'root', batching: false }
  }
  abstract open(options: InterfaceOpenOptions): Promise<InterfaceInfo>
  abstract addAddress(options: { address: string; signal?: AbortSignal }): Promise<void>
  abstract removeAddress(options: { address: string; signal?: AbortSignal }): Promise<void>
  abstract listAddresses(options?: { signal?: AbortSignal }): Promise<string[]>
  async repair(_options?: { signal?: AbortSignal }): Promise<string | undefined> {
    return undefined
  }
  abstract close(options?: { removeInterface?: boolean }): Promise<void>
  async applyAddresses({ add, remove, signal }: AddressChange): Promise<void> {
    for (const address of remove) {
      signal?.throwIfAborted()
      await this.removeAddress({ address, signal })
    }
    for (const address of add) {
      signal?.throwIfAborted()
      await this.addAddress({ address, signal })
    }
  }
  async diagnose(): Promise<Check[]> {
    return []
  }
}
