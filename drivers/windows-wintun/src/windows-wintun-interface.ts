import { setImmediate as turn } from 'node:timers/promises'
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
  requireOpen,
} from '@ngrokd/core/driver'
import {
  AF_INET,
  ERROR_ACCESS_DENIED,
  ERROR_ALREADY_INITIALIZED,
  ERROR_HANDLE_EOF,
  ERROR_NO_MORE_ITEMS,
  ERROR_NOT_FOUND,
  ERROR_OBJECT_ALREADY_EXISTS,
  ERROR_SUCCESS,
  MAX_ADAPTER_NAME,
  WINTUN_MIN_RING_CAPACITY,
  win32ErrorName,
} from './abi/constants.js'
import { adapterGuid, decodeAddressTable, fillAddressRow, findLoopbackLuid, MIB_UNICASTIPADDRESS_ROW_SIZE, type NetLuid } from './abi/structs.js'
import { diagnoseWindowsWintun, type WindowsWintunMode } from './diagnose.js'
import type { Handle, WindowsNetApi, WintunApi } from './windows-net-api.js'

/** Options users may set (`net.driver_options`), as passed to the driver's `create()`. */
export interface WindowsWintunOptions {
  name?: string
  subnet?: string
  /** `auto` (default): Wintun when wintun.dll loads, else the loopback pseudo-interface. */
  mode?: WindowsWintunMode
  /** Absolute path of wintun.dll. Default `%ProgramFiles%\ngrokd\wintun.dll` (see wintun-dll-path.ts). */
  wintun_dll?: string
  stateDir?: string
}

export interface WindowsWintunInterfaceOptions {
  mode?: WindowsWintunMode
  logger?: Logger
  /** iphlpapi and friends: koffi on Windows, FakeWindows in tests. */
  net: WindowsNetApi
  /** Loads wintun.dll (throws a coded error when it cannot); called once, on the first open() that wants it. */
  loadWintun: () => WintunApi
  /** For messages and doctor: where wintun.dll is looked for. */
  wintunDllPath: string
}

/** What the Wintun adapter's own name says in Device Manager: "<TunnelType> Tunnel" (wintun.h). */
export const TUNNEL_TYPE = 'ngrokd'
const ADMIN_HINT = 'run ngrokd as Administrator (an elevated prompt, or the ngrokd Windows service)'

interface Opened {
  mode: 'wintun' | 'loopback'
  name: string
  subnet: Ipv4Subnet
  luid: NetLuid
  /** Wintun only. */
  adapter?: AdapterHold
  session?: Session
}

interface AdapterHold {
  handle: Handle
  /** True when this process created it: WintunCloseAdapter then removes it (wintun.h). */
  created: boolean
}

interface Session {
  handle: Handle
  event: Handle
  stopping: boolean
  drained: Promise<void>
  dropped: number
}

/**
 * Adapters this process created and still holds, by wintun.dll and name. Windows removes a Wintun adapter when the
 * handle that created it is closed or its process exits (SwDevice lifetime, wintun api/adapter.c), so `close()`
 * without `removeInterface` keeps the handle here and a later `open()` in the same process adopts it.
 */
const keptAdapters = new WeakMap<WintunApi, Map<string, AdapterHold>>()

function kept(api: WintunApi): Map<string, AdapterHold> {
  let m = keptAdapters.get(api)
  if (!m) keptAdapters.set(api, (m = new Map()))
  return m
}

/**
 * The windows-wintun interface driver. Each endpoint address is a /32 `MIB_UNICASTIPADDRESS_ROW` (SkipAsSource,
 * DadState Preferred) made with CreateUnicastIpAddressEntry on:
 * - `wintun`: a Wintun adapter named `net.interface_name` (WintunCreateAdapter, or WintunOpenAdapter for one that
 *   exists already), kept up by a session whose ring is read and dropped (traffic to a local address never reaches
 *   the adapter; anything else that does is not ours). Reads wait on the session's read event with
 *   WaitForSingleObject on a koffi worker thread, never spinning.
 * - `loopback`: the loopback pseudo-interface (the interface holding 127.0.0.1, LUID IfType 24), what the seed
 *   daemon did with `netsh`; used when wintun.dll is not installed (`mode: auto`).
 * `listAddresses()` reads GetUnicastIpAddressTable and keeps the rows of our interface inside the subnet, so
 * leftovers of a crash are adopted. Needs Administrator.
 *
 * ```ts
 * const iface = new WindowsWintunInterface({ net: loadWindowsNetApi(systemRoot), loadWintun: () => loadWintun(dll, systemRoot), wintunDllPath: dll })
 * const info = await iface.open({ name: 'ngrokd0', subnet: '10.107.0.0/16' })
 * await iface.addAddress({ address: '10.107.0.2' })
 * ```
 */
export class WindowsWintunInterface extends InterfaceBase {
  readonly driver = 'windows-wintun'
  readonly #options: WindowsWintunInterfaceOptions
  readonly #logger: Logger
  readonly #mode: WindowsWintunMode
  #wintun: WintunApi | undefined
  #wintunError: NgrokdError | undefined
  #opened: Opened | undefined
  /** What open() made, kept after close() so a later close({ removeInterface: true }) can delete it. */
  #made: Opened | undefined
  #queue: Promise<unknown> = Promise.resolve()

  constructor(options: WindowsWintunInterfaceOptions) {
    super()
    this.#options = options
    this.#logger = options.logger ?? silentLogger
    this.#mode = options.mode ?? 'auto'
    if (!['auto', 'wintun', 'loopback'].includes(this.#mode)) {
      throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `windows-wintun: mode ${JSON.stringify(this.#mode)} is not auto, wintun or loopback`, { hint: 'net.driver_options.mode: auto' })
    }
  }

  override get capabilities(): InterfaceCapabilities {
    return { loopbackOnly: false, ipv6: false, requiresPrivileges: 'administrator', batching: false }
  }

  async open({ name, subnet, adoptOnly = false, signal }: InterfaceOpenOptions): Promise<InterfaceInfo> {
    throwIfAborted(signal)
    if (name.length === 0 || name.length >= MAX_ADAPTER_NAME || /[\0\\/]/.test(name)) {
      throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `windows-wintun: adapter name ${JSON.stringify(name)} is not usable`, {
        hint: `net.interface_name: 1 to ${MAX_ADAPTER_NAME - 1} characters, no NUL, \\ or /`,
      })
    }
    const parsed = parseCidr(subnet)
    return this.#serial(async () => {
      throwIfAborted(signal)
      const notes: string[] = []
      const wintun = this.#mode === 'loopback' ? undefined : this.#tryWintun()
      if (!wintun) {
        if (this.#mode === 'wintun') throw this.#wintunError!
        if (this.#mode === 'auto') notes.push(`wintun.dll not loaded (${this.#wintunError!.message}); addresses go on the loopback pseudo-interface`)
        return this.#openLoopback(name, parsed, notes)
      }
      return this.#openWintun(wintun, name, parsed, notes, adoptOnly)
    })
  }

  async addAddress({ address, signal }: { address: string; signal?: AbortSignal }): Promise<void> {
    return this.applyAddresses({ add: [address], remove: [], signal })
  }

  async removeAddress({ address, signal }: { address: string; signal?: AbortSignal }): Promise<void> {
    return this.applyAddresses({ add: [], remove: [address], signal })
  }

  override async applyAddresses({ add, remove, signal }: AddressChange): Promise<void> {
    const opened = this.#ready()
    for (const address of [...add, ...remove]) checkAddress(address, opened.subnet)
    throwIfAborted(signal)
    return this.#serial(async () => {
      throwIfAborted(signal)
      for (const address of remove) this.#deleteAddress(opened, address)
      for (const address of add) this.#createAddress(opened, address)
    })
  }

  async listAddresses({ signal }: { signal?: AbortSignal } = {}): Promise<string[]> {
    const opened = this.#ready()
    throwIfAborted(signal)
    return this.#addressesOn(opened.luid, opened.subnet)
  }

  async close({ removeInterface = false }: { removeInterface?: boolean } = {}): Promise<void> {
    const opened = this.#opened
    this.#opened = undefined
    if (opened?.session) await this.#endSession(opened.session)
    if (!removeInterface) {
      if (opened?.adapter) kept(this.#wintun!).set(opened.name.toLowerCase(), opened.adapter) // the adapter lives on with its handle
      return
    }
    const made = this.#made
    if (!made) return
    this.#made = undefined
    let hold = opened?.adapter
    if (!hold && made.adapter) {
      const key = made.name.toLowerCase()
      if (kept(this.#wintun!).get(key) !== made.adapter) return // another instance adopted the adapter since: it is theirs
      kept(this.#wintun!).delete(key)
      hold = made.adapter
    }
    await this.#serial(async () => {
      for (const address of this.#addressesOn(made.luid, made.subnet)) this.#deleteAddress(made, address)
      if (!hold) return
      this.#wintun!.closeAdapter(hold.handle) // removes the adapter when this process created it
      if (!hold.created) this.#refuseAdapterLeft(made.name)
    })
  }

  /**
   * After closing an adapter this process opened rather than created: WintunCloseAdapter removes only an adapter its
   * creator closes (wintun api/adapter.c), so one that can still be opened stays, and saying it was removed would lie.
   */
  #refuseAdapterLeft(name: string): void {
    const again = this.#wintun!.openAdapter(name)
    if (again.handle === 0n) return
    this.#wintun!.closeAdapter(again.handle)
    throw new NgrokdError('NGROKD_ERR_SYSCALL', `windows-wintun: the Wintun adapter ${name} stays: ngrokd did not make it in this process, and Wintun removes an adapter only when the process that made it closes it`, {
      hint: 'it goes when the process holding it exits, or at a reboot; on Windows 7, which keeps it, remove it in Device Manager (Network adapters)',
    })
  }

  override async diagnose(): Promise<Check[]> {
    return diagnoseWindowsWintun({
      mode: this.#mode,
      wintunDllPath: this.#options.wintunDllPath,
      net: this.#options.net,
      loadWintun: () => this.#tryWintun() ?? (() => { throw this.#wintunError! })(),
      opened: this.#opened ? { mode: this.#opened.mode, name: this.#opened.name, dropped: this.#opened.session?.dropped ?? 0 } : undefined,
    })
  }

  /** Packets read from the adapter's ring and dropped since open() (nothing is routed there on purpose). */
  get droppedPackets(): number {
    return this.#opened?.session?.dropped ?? 0
  }

  #tryWintun(): WintunApi | undefined {
    if (this.#wintun) return this.#wintun
    if (this.#wintunError) return undefined
    try {
      this.#wintun = this.#options.loadWintun()
    } catch (e) {
      this.#wintunError = toLibraryError(e, this.#options.wintunDllPath)
    }
    return this.#wintun
  }

  #loopbackLuid(): NetLuid {
    const luid = findLoopbackLuid(this.#table())
    if (luid === undefined) {
      throw new NgrokdError('NGROKD_ERR_SYSCALL', 'windows-wintun: no loopback pseudo-interface (no interface of type 24 holds 127.0.0.1)', {
        hint: 'check the TCP/IP stack (netsh interface ipv4 show addresses), or install wintun.dll',
      })
    }
    return luid
  }

  #openLoopback(name: string, subnet: Ipv4Subnet, notes: string[]): InterfaceInfo {
    const luid = this.#loopbackLuid()
    const present = this.#addressesOn(luid, subnet)
    const opened: Opened = { mode: 'loopback', name, subnet, luid }
    this.#opened = this.#made = opened
    if (present.length > 0) this.#logger.info({ subnet: subnet.cidr, addresses: present.length }, 'windows-wintun: adopted addresses left on the loopback interface')
    return { name: 'Loopback Pseudo-Interface 1', kind: 'loopback pseudo-interface', adopted: present.length > 0, notes }
  }

  #openWintun(wintun: WintunApi, name: string, subnet: Ipv4Subnet, notes: string[], adoptOnly: boolean): InterfaceInfo {
    const key = name.toLowerCase()
    let adapter = kept(wintun).get(key)
    let adopted = adapter !== undefined
    if (!adapter) {
      const opened = wintun.openAdapter(name)
      if (opened.handle !== 0n) {
        adapter = { handle: opened.handle, created: false }
        adopted = true
        notes.push(`adopted the existing Wintun adapter ${name}`)
      } else if (opened.error !== ERROR_NOT_FOUND) {
        throw wintunError('WintunOpenAdapter', opened.error, name)
      } else if (adoptOnly) {
        // ngrokd cleanup makes nothing: a Wintun adapter goes with the process that made it, and what is left to find
        // is what a run in loopback mode (before wintun.dll was there) left on the loopback pseudo-interface
        const luid = this.#loopbackLuid()
        if (this.#addressesOn(luid, subnet).length > 0) return this.#openLoopback(name, subnet, notes)
        return { name, kind: 'wintun', adopted: false, notes, absent: true }
      } else {
        const made = wintun.createAdapter(name, TUNNEL_TYPE, adapterGuid(name))
        if (made.handle === 0n) throw wintunError('WintunCreateAdapter', made.error, name)
        adapter = { handle: made.handle, created: true }
      }
    }
    kept(wintun).delete(key)
    const luid = wintun.getAdapterLuid(adapter.handle).readBigUInt64LE(0)
    if (!adoptOnly) this.#removeLoopbackStrays(subnet)
    // a cleanup (adoptOnly) reads no ring: the adapter is only looked at, then closed
    const session = adoptOnly ? undefined : this.#startSession(wintun, adapter, name, notes, adopted)
    const opened: Opened = { mode: 'wintun', name, subnet, luid, adapter, session }
    this.#opened = this.#made = opened
    adopted ||= this.#addressesOn(luid, subnet).length > 0
    if (adopted) this.#logger.info({ name }, 'windows-wintun: adopted an existing adapter')
    return { name, kind: 'wintun', adopted, notes }
  }

  /** A session whose ring is read and dropped; none when another handle holds the adapter's one session. */
  #startSession(wintun: WintunApi, adapter: AdapterHold, name: string, notes: string[], adopted: boolean): Session | undefined {
    // The ring is the smallest Wintun allows: nothing is meant to arrive on it.
    const started = wintun.startSession(adapter.handle, WINTUN_MIN_RING_CAPACITY)
    if (started.handle !== 0n) {
      const session: Session = { handle: started.handle, event: wintun.readWaitEvent(started.handle), stopping: false, drained: Promise.resolve(), dropped: 0 }
      session.drained = this.#drain(wintun, session, name)
      return session
    }
    if (started.error === ERROR_ALREADY_INITIALIZED) {
      // driver/wintun.c allows one session per adapter: another handle (this process, or another ngrokd) keeps it up
      notes.push(`another session holds ${name}; not reading its ring`)
      return undefined
    }
    if (!adopted) wintun.closeAdapter(adapter.handle)
    throw wintunError('WintunStartSession', started.error, name)
  }

  /**
   * The subnet's addresses on the loopback pseudo-interface when serving on a Wintun adapter: what a run in loopback
   * mode left (killed before wintun.dll was installed). They would answer beside the adapter's and no later run
   * would ever look there, so they go, said once.
   */
  #removeLoopbackStrays(subnet: Ipv4Subnet): void {
    const table = this.#table()
    const luid = findLoopbackLuid(table)
    if (luid === undefined) return
    const loopback: Opened = { mode: 'loopback', name: 'Loopback Pseudo-Interface 1', subnet, luid }
    const strays = this.#addressesOn(luid, subnet, table)
    for (const address of strays) this.#deleteAddress(loopback, address)
    if (strays.length > 0) this.#logger.info({ subnet: subnet.cidr, addresses: strays.length }, 'windows-wintun: removed the addresses a run in loopback mode left on the loopback interface')
  }

  /** Reads and drops whatever arrives on the adapter's ring; waits on the read event when it is empty. */
  async #drain(wintun: WintunApi, session: Session, name: string): Promise<void> {
    let sinceYield = 0
    while (!session.stopping) {
      const { error } = wintun.receivePacket(session.handle)
      if (error === ERROR_SUCCESS) {
        session.dropped++
        if (++sinceYield >= 64) {
          sinceYield = 0
          await turn() // a burst must not hold the event loop
        }
        continue
      }
      sinceYield = 0
      if (error === ERROR_NO_MORE_ITEMS) {
        if ((await wintun.waitForEvent(session.event)) === 'failed' && !session.stopping) {
          this.#logger.warn({ name }, 'windows-wintun: waiting on the read event failed; no longer reading the ring')
          return
        }
        continue
      }
      if (error !== ERROR_HANDLE_EOF) this.#logger.warn({ name, error: win32ErrorName(error) }, 'windows-wintun: reading the ring failed; no longer reading it')
      return
    }
  }

  /** wireguard-go's order: flag, wake the waiter with SetEvent, wait for the reader, then WintunEndSession. */
  async #endSession(session: Session): Promise<void> {
    if (session.stopping) return session.drained
    session.stopping = true
    this.#wintun!.setEvent(session.event)
    await session.drained
    this.#wintun!.endSession(session.handle)
  }

  #table() {
    const { status, rows } = this.#options.net.getUnicastIpAddressTable(AF_INET)
    if (status !== ERROR_SUCCESS) throw netError('GetUnicastIpAddressTable', status, 'AF_INET')
    return decodeAddressTable(rows)
  }

  #addressesOn(luid: NetLuid, subnet: Ipv4Subnet, table = this.#table()): string[] {
    const found = new Set<string>()
    for (const row of table) {
      if (row.luid === luid && row.address && row.address !== '127.0.0.1' && subnetContains(subnet, row.address)) found.add(row.address)
    }
    return [...found].sort((a, b) => ipv4ToInt(a) - ipv4ToInt(b))
  }

  #row(opened: Opened, address: string): Buffer {
    const row = Buffer.alloc(MIB_UNICASTIPADDRESS_ROW_SIZE)
    this.#options.net.initializeUnicastIpAddressEntry(row)
    return fillAddressRow(row, { address, luid: opened.luid })
  }

  #createAddress(opened: Opened, address: string): void {
    const status = this.#options.net.createUnicastIpAddressEntry(this.#row(opened, address))
    if (status !== ERROR_SUCCESS && status !== ERROR_OBJECT_ALREADY_EXISTS) throw netError('CreateUnicastIpAddressEntry', status, `${address}/32 on ${where(opened)}`)
  }

  #deleteAddress(opened: Opened, address: string): void {
    const status = this.#options.net.deleteUnicastIpAddressEntry(this.#row(opened, address))
    if (status !== ERROR_SUCCESS && status !== ERROR_NOT_FOUND) throw netError('DeleteUnicastIpAddressEntry', status, `${address}/32 on ${where(opened)}`)
  }

  #ready(): Opened {
    return requireOpen(this.#opened, 'windows-wintun')
  }

  async #serial<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.#queue.then(fn, fn)
    this.#queue = run.catch(() => {})
    return run
  }
}

function where(opened: Opened): string {
  return opened.mode === 'wintun' ? opened.name : 'the loopback interface'
}

function netError(call: string, status: number, detail: string): NgrokdError {
  if (status === ERROR_ACCESS_DENIED) return new PermissionError(`windows-wintun: ${call} ${detail} refused: ERROR_ACCESS_DENIED (5)`, { hint: ADMIN_HINT })
  return new SyscallError(call, status, win32ErrorName(status), { detail })
}

function wintunError(call: string, error: number, name: string): NgrokdError {
  if (error === ERROR_ACCESS_DENIED) {
    return new PermissionError(`windows-wintun: ${call} ${name} refused: ERROR_ACCESS_DENIED (5)`, { hint: `${ADMIN_HINT}; creating a Wintun adapter installs its driver` })
  }
  return new SyscallError(call, error, win32ErrorName(error), { detail: name })
}

/** Any failure to load wintun.dll as the coded error the driver reports (and `mode: auto` notes). */
function toLibraryError(e: unknown, path: string): NgrokdError {
  if (typeof e === 'object' && e !== null && 'code' in e && (e as NgrokdError).code === 'NGROKD_ERR_DRIVER_LIBRARY') return e as NgrokdError
  return new NgrokdError('NGROKD_ERR_DRIVER_LIBRARY', `windows-wintun: cannot load ${path}: ${(e as Error)?.message ?? String(e)}`, {
    cause: e,
    hint: 'download wintun.dll for this architecture from https://www.wintun.net and put it there, or set net.driver_options.wintun_dll to its absolute path',
  })
}

function checkAddress(address: string, subnet: Ipv4Subnet): void {
  if (!isIpv4(address) || !subnetContains(subnet, address) || address === subnet.cidr.split('/')[0]) {
    throw new NgrokdError('NGROKD_ERR_DRIVER_MISUSE', `windows-wintun: ${JSON.stringify(address)} is not an address in ${subnet.cidr}`, {
      hint: 'allocate addresses from InterfaceInfo.subnet',
    })
  }
}

function parseCidr(cidr: string): Ipv4Subnet {
  try {
    return parseSubnet(cidr)
  } catch (cause) {
    throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `windows-wintun: net.subnet ${JSON.stringify(cidr)} is not an IPv4 CIDR subnet`, { cause, hint: 'e.g. 10.107.0.0/16' })
  }
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new NgrokdError('NGROKD_ERR_ABORTED', 'windows-wintun: aborted', { cause: signal.reason })
}
