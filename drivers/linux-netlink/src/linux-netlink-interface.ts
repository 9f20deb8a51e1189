import {
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
  type Ipv4Subnet,
  type Logger,
  requireOpen,
} from '@ngrokd/core/driver'
import { diagnoseLinuxNetlink } from './diagnose.js'
import { checkAdoptable, leftUntagged, LINK_CREATE_GROUP, LINK_TAG, tagLink } from './link-ownership.js'
import { loadFfi } from './ffi/load-ffi.js'
import { AF_INET, IFF_UP, IFNAMSIZ } from './netlink/constants.js'
import { LINUX_ERRNO } from './netlink/errno.js'
import {
  decodeAddr,
  delAddrRequest,
  delLinkRequest,
  setLinkAliasRequest,
  getAddrDumpRequest,
  newAddrRequest,
  newLinkRequest,
  setLinkUpRequest,
  type LinkMessage,
} from './netlink/messages.js'
import { netlinkError } from './netlink/netlink-error.js'
import { RouteSocket, type NetlinkTransport } from './netlink/route-socket.js'
import { conflictError, dumpAddresses, dumpLinks, findConflicts, getLink } from './netlink/queries.js'

/** Options of the `linux-netlink` driver (`net.*` from the daemon's config). */
export interface LinuxNetlinkOptions {
  /** Interface name, at most 15 bytes, e.g. `ngrokd0`. */
  name: string
  /** `net.subnet`, e.g. `10.107.0.0/16`. Only /32 host addresses from it are ever added. */
  subnet: string
  /** Open even when the subnet overlaps an address or route on another interface. Default false. */
  force?: boolean
  /** Default of `close({ removeInterface })`. Default true. */
  removeOnClose?: boolean
}

export interface LinuxNetlinkInterfaceOptions extends LinuxNetlinkOptions {
  logger?: Logger
  /** How long to wait for the kernel's answer to one send. Default 5000 ms. */
  timeoutMs?: number
  /** Where the netlink socket comes from; tests pass a fake kernel. Default: ffi/libc.ts. */
  openTransport?: () => Promise<NetlinkTransport>
}

/** Several address changes of one `applyAddresses` failed; `failures` has one error per address. */
export class AddressBatchError extends NgrokdError<'NGROKD_ERR_SYSCALL' | 'NGROKD_ERR_PERMISSION'> {
  override name = 'AddressBatchError'
  constructor(
    message: string,
    readonly failures: readonly NgrokdError[],
  ) {
    const first = failures[0]!
    super(first.code === 'NGROKD_ERR_PERMISSION' ? 'NGROKD_ERR_PERMISSION' : 'NGROKD_ERR_SYSCALL', message, {
      cause: first,
      ...(first.hint ? { hint: first.hint } : {}),
    })
  }
}

interface OpenState {
  socket: RouteSocket
  name: string
  index: number
  subnet: Ipv4Subnet
  info: InterfaceInfo
}

/**
 * The Linux interface driver: one `dummy` link (a port-less `bridge` where the kernel has no
 * dummy type) holding the endpoint addresses as /32 host addresses, managed over rtnetlink.
 *
 * - `open()` refuses a subnet that overlaps an address or route on another interface (unless
 *   `force`), adopts a dummy/bridge link that already has the name, and brings the link up.
 * - Address changes are idempotent (EEXIST on add and EADDRNOTAVAIL on remove are success) and
 *   batched: `applyAddresses` packs up to 64 KiB of requests into one send.
 * - Nothing is cached: `listAddresses()` dumps the kernel's addresses.
 *
 * ```ts
 * const iface = new LinuxNetlinkInterface({ name: 'ngrokd0', subnet: '10.107.0.0/16', logger })
 * await iface.open({ name: 'ngrokd0', subnet: '10.107.0.0/16' })
 * await iface.applyAddresses({ add: ['10.107.0.2', '10.107.0.3'], remove: [] })
 * await iface.close() // deletes the link (removeOnClose defaults to true)
 * ```
 */
export class LinuxNetlinkInterface extends InterfaceBase {
  readonly driver = 'linux-netlink'
  readonly #options: LinuxNetlinkInterfaceOptions
  readonly #logger: Logger
  #state: OpenState | undefined
  #opening: Promise<InterfaceInfo> | undefined

  constructor(options: LinuxNetlinkInterfaceOptions) {
    super()
    this.#options = options
    this.#logger = options.logger ?? silentLogger
  }

  override get capabilities(): InterfaceCapabilities {
    return { ...super.capabilities, requiresPrivileges: 'cap_net_admin', batching: true }
  }

  /** The kernel's index of the link, once open. */
  get ifindex(): number | undefined {
    return this.#state?.index
  }

  /** The socket's counters (sends, datagrams read, empty-queue waits, overruns), once open. */
  get stats(): RouteSocket['stats'] | undefined {
    return this.#state?.socket.stats
  }

  open(options: InterfaceOpenOptions = { name: this.#options.name, subnet: this.#options.subnet }): Promise<InterfaceInfo> {
    if (this.#state) {
      if (this.#state.name === options.name) return Promise.resolve(this.#state.info)
      return Promise.reject(
        new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `linux-netlink: already open as ${this.#state.name}, cannot open ${options.name}`, {
          hint: 'close() the interface driver first',
        }),
      )
    }
    this.#opening ??= this.#open(options).finally(() => (this.#opening = undefined))
    return this.#opening
  }

  async #open({ name, subnet: subnetText, adoptOnly, signal }: InterfaceOpenOptions): Promise<InterfaceInfo> {
    validateName(name)
    const subnet = parseSubnetOption(subnetText)
    throwIfAborted(signal, 'open')
    const transport = await (this.#options.openTransport ?? defaultTransport)()
    const socket = new RouteSocket(transport, this.#options.timeoutMs === undefined ? {} : { timeoutMs: this.#options.timeoutMs })
    try {
      let link = await getLink(socket, name)
      if (!link && adoptOnly) {
        await socket.close()
        return { name, kind: 'none', adopted: false, notes: [], absent: true }
      }
      const links = await dumpLinks(socket)
      // a cleanup only removes: a conflicting route matters to serving, not to that
      const conflicts = adoptOnly ? [] : await findConflicts(socket, subnet, links, link?.index)
      if (conflicts.length > 0) {
        if (!this.#options.force) throw conflictError(subnet, conflicts)
        this.#logger.warn({ subnet: subnet.cidr, conflicts: conflicts.map((c) => c.description) }, 'linux-netlink: net.subnet overlaps, going on because force is set')
      }
      throwIfAborted(signal, 'open')

      const notes: string[] = []
      let kind: string
      let adopted = false
      if (link && (await leftUntagged(socket, link, links))) {
        // made by a start that was stopped before it could tag it (the tag is a second request): nothing uses it
        await tagLink(socket, link)
        adopted = true
        kind = link.kind!
        notes.push(`adopted the ${kind} link ${name}, down, without addresses or tag: left by a start stopped before it could tag it`)
      } else if (link) {
        checkAdoptable(link, links)
        adopted = true
        kind = link.kind!
        notes.push(`adopted the existing ${kind} link ${name} (left by an earlier run)`)
      } else {
        const created = await this.#makeLink(socket, name)
        link = created.link
        if (created.raced) {
          checkAdoptable(link, await dumpLinks(socket))
          adopted = true
          kind = link.kind!
          notes.push(`adopted the ${kind} link ${name} that appeared while creating it`)
        } else if (created.fallback) {
          kind = 'bridge (dummy unavailable)'
          notes.push(created.fallback)
        } else {
          kind = 'dummy'
        }
      }
      await bringUp(socket, link, name)
      const info: InterfaceInfo = { name, index: link.index, kind, adopted, notes }
      this.#state = { socket, name, index: link.index, subnet, info }
      this.#logger.info({ name, index: link.index, kind, adopted }, adopted ? 'linux-netlink: adopted link' : 'linux-netlink: created link')
      return info
    } catch (e) {
      await socket.close()
      throw e
    }
  }

  /** Creates the link (see {@link #createLink}), reads it back and tags it as ours unless someone else made it meanwhile. */
  async #makeLink(socket: RouteSocket, name: string): Promise<{ link: LinkMessage; raced?: true; fallback?: string }> {
    const created = await this.#createLink(socket, name)
    const link = await getLink(socket, name)
    if (!link) throw netlinkError('RTM_GETLINK', LINUX_ERRNO.ENODEV, { detail: `${name} (gone right after it was created)` })
    if (!created.raced) await tagLink(socket, link)
    return { link, ...created }
  }

  /** RTM_NEWLINK kind dummy; on EOPNOTSUPP kind bridge. `raced`: EEXIST, someone made it meanwhile. */
  async #createLink(socket: RouteSocket, name: string): Promise<{ raced?: true; fallback?: string }> {
    const dummy = await socket.request((seq) => newLinkRequest({ seq, name, kind: 'dummy', group: LINK_CREATE_GROUP }), { what: `RTM_NEWLINK ${name} type dummy` })
    if (dummy.errno === 0) return {}
    if (dummy.errno === LINUX_ERRNO.EEXIST) return { raced: true }
    if (dummy.errno !== LINUX_ERRNO.EOPNOTSUPP) {
      throw netlinkError('RTM_NEWLINK', dummy.errno, { detail: `${name} type dummy`, ...kernel(dummy.kernelMessage) })
    }
    const why = `the kernel has no dummy link type (RTM_NEWLINK type dummy: EOPNOTSUPP${dummy.kernelMessage ? `, "${dummy.kernelMessage}"` : ''}); using a port-less bridge, which holds addresses the same way`
    // not logged here: it is one of the interface's notes, which the daemon logs once and `status` shows
    const bridge = await socket.request((seq) => newLinkRequest({ seq, name, kind: 'bridge', group: LINK_CREATE_GROUP }), { what: `RTM_NEWLINK ${name} type bridge` })
    if (bridge.errno === 0) return { fallback: why }
    if (bridge.errno === LINUX_ERRNO.EEXIST) return { raced: true }
    throw netlinkError('RTM_NEWLINK', bridge.errno, { detail: `${name} type bridge (dummy unavailable)`, ...kernel(bridge.kernelMessage) })
  }

  override async addAddress({ address, signal }: { address: string; signal?: AbortSignal }): Promise<void> {
    await this.applyAddresses({ add: [address], remove: [], ...(signal ? { signal } : {}) })
  }

  override async removeAddress({ address, signal }: { address: string; signal?: AbortSignal }): Promise<void> {
    await this.applyAddresses({ add: [], remove: [address], ...(signal ? { signal } : {}) })
  }

  /**
   * Removes, then adds, in as few sends as the receive buffer allows (10,000 addresses take a
   * handful of round trips). Every failure becomes an error naming the address and the errno; with
   * several, an {@link AddressBatchError} lists them all.
   */
  override async applyAddresses({ add, remove, signal }: AddressChange): Promise<void> {
    const state = this.#requireOpen('applyAddresses')
    for (const address of [...remove, ...add]) validateAddress(address)
    throwIfAborted(signal, 'applyAddresses')
    const ops = [...remove.map((address) => ({ add: false, address })), ...add.map((address) => ({ add: true, address }))]
    if (ops.length === 0) return
    const index = state.index
    let replies
    try {
      replies = await state.socket.batch(
        ops.map((op) => (seq: number) => (op.add ? newAddrRequest({ seq, index, address: op.address }) : delAddrRequest({ seq, index, address: op.address }))),
        { what: `address changes on ${state.name}`, ...(signal ? { signal } : {}) },
      )
    } catch (e) {
      if (signal?.aborted && !isNgrokdError(e)) throw abortedError('applyAddresses', e)
      throw e
    }
    const failures: NgrokdError[] = []
    replies.forEach(({ errno, kernelMessage }, i) => {
      const op = ops[i]!
      if (errno === 0) return
      if (op.add && errno === LINUX_ERRNO.EEXIST) return
      if (!op.add && (errno === LINUX_ERRNO.EADDRNOTAVAIL || errno === LINUX_ERRNO.ENODEV)) return
      failures.push(netlinkError(op.add ? 'RTM_NEWADDR' : 'RTM_DELADDR', errno, { detail: `${op.address} on ${state.name}`, ...kernel(kernelMessage) }))
    })
    if (failures.length === 1) throw failures[0]
    if (failures.length > 1) {
      throw new AddressBatchError(`linux-netlink: ${failures.length} of ${ops.length} address changes on ${state.name} failed; first: ${failures[0]!.message}`, failures)
    }
  }

  /**
   * The endpoint addresses on the link, read from the kernel (RTM_GETADDR dump): each IPv4 /32, once — of any subnet:
   * the link is ngrokd's own (tagged), and a /32 of an earlier `net.subnet` is one a killed daemon left there, for this
   * one to remove. Another prefix is never one ngrokd adds (`ip addr add 10.0.0.1/24 dev ngrokd0` by hand): not
   * listed, so never removed (RTM_DELADDR of a /32 would not remove it either).
   */
  override async listAddresses({ signal }: { signal?: AbortSignal } = {}): Promise<string[]> {
    const state = this.#requireOpen('listAddresses')
    throwIfAborted(signal, 'listAddresses')
    const messages = await state.socket.dump((seq) => getAddrDumpRequest({ seq }), { what: 'RTM_GETADDR dump' })
    const out = new Set<string>()
    for (const m of messages) {
      const a = decodeAddr(m)
      const address = a.local ?? a.address
      if (a.family === AF_INET && a.index === state.index && a.prefixlen === 32 && address !== undefined) out.add(address)
    }
    return [...out]
  }

  /**
   * The link deleted under us (`ip link del`) is made again, one replaced by another program's
   * link of a kind we make is adopted by its new index, one brought down is set up; the caller
   * then adds the addresses it wants (a new link has none).
   */
  override async repair({ signal }: { signal?: AbortSignal } = {}): Promise<string | undefined> {
    const state = this.#requireOpen('repair')
    throwIfAborted(signal, 'repair')
    const { socket, name } = state
    let link = await getLink(socket, name)
    let done: string | undefined
    if (!link) {
      link = (await this.#makeLink(socket, name)).link
      done = `interface ${name} was removed under the daemon: created it again (index ${link.index})`
    } else if (link.index !== state.index) {
      checkAdoptable(link, await dumpLinks(socket))
      done = `interface ${name} was replaced under the daemon (index ${state.index} → ${link.index}): adopted the new one`
    }
    if ((await bringUp(socket, link, name)) && !done) done = `interface ${name} was brought down under the daemon: set it up again`
    state.index = link.index
    state.info.index = link.index // the contract: the InterfaceInfo open() returned follows a new link
    return done
  }

  /** Deletes the link when `removeInterface` (default: `removeOnClose`, true). Safe to call twice. */
  override async close({ removeInterface }: { removeInterface?: boolean } = {}): Promise<void> {
    if (this.#opening) await this.#opening.catch(() => undefined)
    const state = this.#state
    if (!state) return
    this.#state = undefined
    try {
      if (removeInterface ?? this.#options.removeOnClose ?? true) {
        const r = await state.socket.request((seq) => delLinkRequest({ seq, index: state.index }), { what: `RTM_DELLINK ${state.name}` })
        if (r.errno !== 0 && r.errno !== LINUX_ERRNO.ENODEV) {
          throw netlinkError('RTM_DELLINK', r.errno, { detail: state.name, ...kernel(r.kernelMessage) })
        }
        this.#logger.info({ name: state.name }, 'linux-netlink: deleted link')
      }
    } finally {
      await state.socket.close()
    }
  }

  override diagnose(): Promise<Check[]> {
    return diagnoseLinuxNetlink({ name: this.#options.name, subnet: this.#options.subnet, force: this.#options.force === true, ...(this.#state ? { info: this.#state.info } : {}) })
  }

  #requireOpen(what: string): OpenState {
    return requireOpen(this.#state, 'linux-netlink', `${what}()`)
  }
}

/** Sets the link up unless it is; true when it had to. */
async function bringUp(socket: RouteSocket, link: LinkMessage, name: string): Promise<boolean> {
  if (link.flags & IFF_UP) return false
  const index = link.index
  const up = await socket.request((seq) => setLinkUpRequest({ seq, index }), { what: `RTM_NEWLINK ${name} up` })
  if (up.errno !== 0) throw netlinkError('RTM_NEWLINK', up.errno, { detail: `${name} up`, ...kernel(up.kernelMessage) })
  return true
}

async function defaultTransport(): Promise<NetlinkTransport> {
  const { NetlinkSocket } = await loadFfi()
  return NetlinkSocket.open()
}


function validateName(name: string): void {
  // dev_valid_name() in net/core/dev.c: 1..IFNAMSIZ-1 bytes, not "." or "..", no '/', ':' or whitespace; and no '%',
  // which RTM_NEWLINK takes for a template (dev_get_valid_name: "ngk%d" makes ngk0, ngk1, … under another name)
  if (typeof name !== 'string' || name.length === 0 || Buffer.byteLength(name) >= IFNAMSIZ || name === '.' || name === '..' || /[/:%\s]/.test(name)) {
    throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `linux-netlink: invalid interface name ${JSON.stringify(name)}`, {
      hint: `use 1 to ${IFNAMSIZ - 1} characters without '/', ':', '%' or spaces, e.g. ngrokd0`,
    })
  }
}

function parseSubnetOption(text: string): Ipv4Subnet {
  try {
    return parseSubnet(text)
  } catch (e) {
    throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `linux-netlink: invalid net.subnet ${JSON.stringify(text)}`, {
      cause: e,
      hint: 'use an IPv4 CIDR subnet such as 10.107.0.0/16',
    })
  }
}

function validateAddress(address: string): void {
  if (typeof address !== 'string' || !isIpv4(address)) {
    throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `linux-netlink: not an IPv4 address: ${JSON.stringify(address)}`)
  }
}

function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw abortedError(what, signal.reason)
}

function abortedError(what: string, cause: unknown): NgrokdError {
  return new NgrokdError('NGROKD_ERR_ABORTED', `linux-netlink: ${what} aborted`, { cause })
}

function kernel(message: string | undefined): { kernelMessage?: string } {
  return message === undefined ? {} : { kernelMessage: message }
}

export { LINK_CREATE_GROUP, LINK_TAG } from './link-ownership.js'
