/**
 * A strict fake of the Windows calls the driver makes (iphlpapi, wintun.dll, kernel32), for tests on any OS.
 * It keeps interfaces, adapters, addresses and sessions the way the documentation and Wintun's sources describe,
 * records every call with the exact bytes passed, and lists misuses (a handle used after it was closed, a handle
 * closed while waited on) instead of crashing, so tests can assert there were none.
 */
import {
  AF_INET,
  ERROR_ACCESS_DENIED,
  ERROR_ALREADY_INITIALIZED,
  ERROR_FILE_NOT_FOUND,
  ERROR_INVALID_HANDLE,
  ERROR_INVALID_PARAMETER,
  ERROR_NO_MORE_ITEMS,
  ERROR_NOT_FOUND,
  ERROR_OBJECT_ALREADY_EXISTS,
  ERROR_SUCCESS,
  IF_TYPE_PROP_VIRTUAL,
  IF_TYPE_SOFTWARE_LOOPBACK,
  IpDadStatePreferred,
  IpPrefixOriginManual,
  IpSuffixOriginManual,
  MAX_ADAPTER_NAME,
  WINTUN_MAX_RING_CAPACITY,
  WINTUN_MIN_RING_CAPACITY,
} from '../abi/constants.js'
import {
  decodeAddressRow,
  fillAddressRow,
  GUID_SIZE,
  initializedRow,
  MIB_UNICASTIPADDRESS_ROW_SIZE,
  netLuid,
  ROW,
  type NetLuid,
} from '../abi/structs.js'
import type { Handle, WindowsNetApi, WintunApi } from '../windows-net-api.js'

const IF_TYPE_ETHERNET_CSMACD = 6 // ipifcons.h

export interface FakeCall {
  call: string
  /** The struct passed, as hex (MIB_UNICASTIPADDRESS_ROW, GUID). */
  hex?: string
  args?: unknown[]
  result?: number | string
}

interface FakeIf {
  luid: NetLuid
  index: number
  alias: string
  /** address → the row as the stack keeps it */
  addresses: Map<string, Buffer>
}

interface FakeAdapter {
  name: string
  guid: string
  luid: NetLuid
}

interface FakeSession {
  adapter: string
  /** The adapter handle it was started on. */
  owner: Handle
  event: Handle
  ended: boolean
  packets: number[]
}

interface FakeEvent {
  signalled: boolean
  waiter?: (r: 'signalled' | 'failed') => void
  closed: boolean
}

export interface FakeWindowsOptions {
  /** Elevated Administrator (default true). */
  administrator?: boolean
  /** A leftover adapter (Windows 7 style: it survives its process) present from the start. */
  leftoverAdapters?: string[]
}

export class FakeWindows implements WindowsNetApi, WintunApi {
  readonly path = 'C:\\Program Files\\ngrokd\\wintun.dll'
  readonly calls: FakeCall[] = []
  readonly misuses: string[] = []
  administrator: boolean
  /** Win32 error to return from the next call of that name (once). */
  readonly failNext = new Map<string, number>()
  readonly interfaces = new Map<NetLuid, FakeIf>()
  readonly adapters = new Map<string, FakeAdapter>()
  readonly sessions = new Map<Handle, FakeSession>()
  readonly events = new Map<Handle, FakeEvent>()
  #handles = new Map<Handle, { adapter: string; created: boolean; closed: boolean }>()
  #nextHandle = 0x1000n
  #nextLuidIndex = 8
  #driverLoaded = false
  #lastError = 0
  receiveCalls = 0

  constructor(options: FakeWindowsOptions = {}) {
    this.administrator = options.administrator ?? true
    // the loopback LUID and index Wine's GetUnicastIpAddressTable reported (probe/windows-abi.json, wine.rows)
    this.#addInterface(netLuid(IF_TYPE_SOFTWARE_LOOPBACK, 1), 1, 'Loopback Pseudo-Interface 1', ['127.0.0.1'])
    this.#addInterface(netLuid(IF_TYPE_ETHERNET_CSMACD, 1), 4, 'Ethernet', ['192.168.1.10', '10.107.0.99'])
    for (const name of options.leftoverAdapters ?? []) this.#makeAdapter(name, 'leftover')
  }

  get loopbackLuid(): NetLuid {
    return netLuid(IF_TYPE_SOFTWARE_LOOPBACK, 1)
  }

  /** The addresses on an interface, by LUID, as strings. */
  addressesOn(luid: NetLuid): string[] {
    return [...(this.interfaces.get(luid)?.addresses.keys() ?? [])].sort()
  }

  adapterLuid(name: string): NetLuid | undefined {
    return this.adapters.get(name.toLowerCase())?.luid
  }

  /** Queues packets on the adapter's ring and signals the session's read event. */
  injectPackets(adapterName: string, sizes: number[]): void {
    for (const s of this.sessions.values()) {
      if (s.ended || s.adapter !== adapterName.toLowerCase()) continue
      s.packets.push(...sizes)
      this.#signal(s.event)
      return
    }
    throw new Error(`fake: no open session on ${adapterName}`)
  }

  // --- iphlpapi ---------------------------------------------------------------------------------------------

  initializeUnicastIpAddressEntry(row: Buffer): void {
    if (row.length !== MIB_UNICASTIPADDRESS_ROW_SIZE) this.misuses.push(`InitializeUnicastIpAddressEntry on ${row.length} bytes`)
    initializedRow().copy(row)
    this.calls.push({ call: 'InitializeUnicastIpAddressEntry' })
  }

  createUnicastIpAddressEntry(row: Buffer): number {
    const result = this.#createAddress(row)
    this.calls.push({ call: 'CreateUnicastIpAddressEntry', hex: row.toString('hex'), result })
    return result
  }

  deleteUnicastIpAddressEntry(row: Buffer): number {
    const result = this.#deleteAddress(row)
    this.calls.push({ call: 'DeleteUnicastIpAddressEntry', hex: row.toString('hex'), result })
    return result
  }

  getUnicastIpAddressTable(family: number): { status: number; rows: Buffer } {
    const injected = this.#injected('GetUnicastIpAddressTable')
    this.calls.push({ call: 'GetUnicastIpAddressTable', args: [family], result: injected ?? 0 })
    if (injected !== undefined) return { status: injected, rows: Buffer.alloc(0) }
    if (family !== AF_INET) return { status: ERROR_INVALID_PARAMETER, rows: Buffer.alloc(0) }
    const rows: Buffer[] = []
    for (const i of this.interfaces.values()) for (const row of i.addresses.values()) rows.push(row)
    return { status: ERROR_SUCCESS, rows: Buffer.concat(rows) }
  }

  isAdministrator(): boolean {
    return this.administrator
  }

  lastError(): number {
    return this.#lastError
  }

  // --- wintun.dll -------------------------------------------------------------------------------------------

  createAdapter(name: string, tunnelType: string, guid: Buffer | null): { handle: Handle; error: number } {
    this.calls.push({ call: 'WintunCreateAdapter', args: [name, tunnelType], hex: guid?.toString('hex') })
    if (guid && guid.length !== GUID_SIZE) this.misuses.push(`WintunCreateAdapter with a ${guid.length}-byte GUID`)
    const error = this.#injected('WintunCreateAdapter') ?? (!this.administrator ? ERROR_ACCESS_DENIED : name.length >= MAX_ADAPTER_NAME ? ERROR_INVALID_PARAMETER : 0)
    if (error) return { handle: 0n, error: (this.#lastError = error) }
    const key = name.toLowerCase()
    const existing = this.adapters.get(key)
    if (existing) {
      // wintun api/adapter.c NciSetAdapterName: the other adapter is renamed "<name> 1" and ours takes the name
      this.adapters.delete(key)
      existing.name = `${existing.name} 1`
      this.adapters.set(existing.name.toLowerCase(), existing)
    }
    this.#makeAdapter(name, guid?.toString('hex') ?? 'random')
    this.#driverLoaded = true
    return { handle: this.#handle(key, true), error: 0 }
  }

  openAdapter(name: string): { handle: Handle; error: number } {
    this.calls.push({ call: 'WintunOpenAdapter', args: [name] })
    const key = name.toLowerCase()
    const error = this.#injected('WintunOpenAdapter') ?? (this.adapters.has(key) ? 0 : ERROR_NOT_FOUND)
    if (error) return { handle: 0n, error: (this.#lastError = error) }
    return { handle: this.#handle(key, false), error: 0 }
  }

  closeAdapter(adapter: Handle): void {
    this.calls.push({ call: 'WintunCloseAdapter', args: [adapter] })
    const h = this.#live(adapter, 'WintunCloseAdapter')
    if (!h) return
    h.closed = true
    for (const [sh, s] of this.sessions) if (s.owner === adapter && !s.ended) this.misuses.push(`WintunCloseAdapter with its session 0x${sh.toString(16)} still open`)
    if (h.created) {
      const a = this.adapters.get(h.adapter)
      this.adapters.delete(h.adapter)
      if (a) this.interfaces.delete(a.luid) // its addresses go with it
    }
  }

  deleteDriver(): boolean {
    this.calls.push({ call: 'WintunDeleteDriver' })
    if (this.adapters.size > 0) return false
    this.#driverLoaded = false
    return true
  }

  getAdapterLuid(adapter: Handle): Buffer {
    this.calls.push({ call: 'WintunGetAdapterLUID', args: [adapter] })
    const h = this.#live(adapter, 'WintunGetAdapterLUID')
    const b = Buffer.alloc(8)
    const a = h && this.adapters.get(h.adapter)
    if (a) b.writeBigUInt64LE(a.luid)
    return b
  }

  runningDriverVersion(): { version: number; error: number } {
    this.calls.push({ call: 'WintunGetRunningDriverVersion' })
    return this.#driverLoaded ? { version: 0x000e0000, error: 0 } : { version: 0, error: (this.#lastError = ERROR_FILE_NOT_FOUND) }
  }

  startSession(adapter: Handle, capacity: number): { handle: Handle; error: number } {
    this.calls.push({ call: 'WintunStartSession', args: [adapter, capacity] })
    const h = this.#live(adapter, 'WintunStartSession')
    if (!h) return { handle: 0n, error: (this.#lastError = ERROR_INVALID_HANDLE) }
    const injected = this.#injected('WintunStartSession')
    if (injected) return { handle: 0n, error: (this.#lastError = injected) }
    // wintun.h: a power of two between WINTUN_MIN_RING_CAPACITY and WINTUN_MAX_RING_CAPACITY
    if (capacity < WINTUN_MIN_RING_CAPACITY || capacity > WINTUN_MAX_RING_CAPACITY || (capacity & (capacity - 1)) !== 0) {
      return { handle: 0n, error: (this.#lastError = ERROR_INVALID_PARAMETER) }
    }
    // driver/wintun.c TunRegisterBuffers: one session per adapter; another gets STATUS_ALREADY_INITIALIZED
    if ([...this.sessions.values()].some((s) => s.adapter === h.adapter && !s.ended)) return { handle: 0n, error: (this.#lastError = ERROR_ALREADY_INITIALIZED) }
    const event = this.#nextHandle++
    this.events.set(event, { signalled: false, closed: false })
    const session = this.#nextHandle++
    this.sessions.set(session, { adapter: h.adapter, owner: adapter, event, ended: false, packets: [] })
    return { handle: session, error: 0 }
  }

  endSession(session: Handle): void {
    this.calls.push({ call: 'WintunEndSession', args: [session] })
    const s = this.sessions.get(session)
    if (!s || s.ended) {
      this.misuses.push(`WintunEndSession of ${s ? 'an ended' : 'an unknown'} session`)
      return
    }
    s.ended = true
    const e = this.events.get(s.event)!
    // WaitForSingleObject docs: closing a handle that is being waited on is undefined behaviour
    if (e.waiter) this.misuses.push('WintunEndSession closed the read event while a wait on it was pending')
    e.closed = true
  }

  readWaitEvent(session: Handle): Handle {
    this.calls.push({ call: 'WintunGetReadWaitEvent', args: [session] })
    const s = this.sessions.get(session)
    if (!s || s.ended) {
      this.misuses.push('WintunGetReadWaitEvent of a session that is not open')
      return 0n
    }
    return s.event
  }

  receivePacket(session: Handle): { size: number; error: number } {
    this.receiveCalls++
    const s = this.sessions.get(session)
    if (!s || s.ended) {
      this.misuses.push('WintunReceivePacket on a session that is not open')
      return { size: 0, error: (this.#lastError = ERROR_INVALID_HANDLE) }
    }
    const size = s.packets.shift()
    if (size === undefined) return { size: 0, error: (this.#lastError = ERROR_NO_MORE_ITEMS) }
    return { size, error: 0 }
  }

  waitForEvent(event: Handle): Promise<'signalled' | 'failed'> {
    const e = this.events.get(event)
    if (!e || e.closed) {
      this.misuses.push('WaitForSingleObject on a closed event')
      return Promise.resolve('failed')
    }
    if (e.waiter) this.misuses.push('two waits on one event')
    if (e.signalled) {
      e.signalled = false // Wintun's read event resets when a wait is satisfied
      return Promise.resolve('signalled')
    }
    return new Promise((resolve) => {
      e.waiter = resolve
    })
  }

  setEvent(event: Handle): void {
    this.calls.push({ call: 'SetEvent', args: [event] })
    const e = this.events.get(event)
    if (!e || e.closed) {
      this.misuses.push('SetEvent on a closed event')
      return
    }
    this.#signal(event)
  }

  // --- internals --------------------------------------------------------------------------------------------

  #signal(event: Handle): void {
    const e = this.events.get(event)!
    if (e.waiter) {
      const w = e.waiter
      e.waiter = undefined
      w('signalled')
    } else {
      e.signalled = true
    }
  }

  #injected(call: string): number | undefined {
    const code = this.failNext.get(call)
    if (code !== undefined) this.failNext.delete(call)
    return code
  }

  #addInterface(luid: NetLuid, index: number, alias: string, addresses: string[]): FakeIf {
    const i: FakeIf = { luid, index, alias, addresses: new Map() }
    this.interfaces.set(luid, i)
    for (const a of addresses) i.addresses.set(a, this.#stackRow(i, a, 8))
    return i
  }

  #makeAdapter(name: string, guid: string): void {
    const luid = netLuid(IF_TYPE_PROP_VIRTUAL, this.#nextLuidIndex++)
    this.adapters.set(name.toLowerCase(), { name, guid, luid })
    this.#addInterface(luid, 20 + this.#nextLuidIndex, name, [])
  }

  #handle(adapter: string, created: boolean): Handle {
    const h = this.#nextHandle++
    this.#handles.set(h, { adapter, created, closed: false })
    return h
  }

  #live(handle: Handle, call: string) {
    const h = this.#handles.get(handle)
    if (!h || h.closed) {
      this.misuses.push(`${call} with ${h ? 'a closed' : 'an unknown'} adapter handle`)
      return undefined
    }
    return h
  }

  /** A row as GetUnicastIpAddressTable reports it: the stack fills InterfaceIndex and ScopeId. */
  #stackRow(i: FakeIf, address: string, prefix: number): Buffer {
    const row = fillAddressRow(initializedRow(), { address, luid: i.luid })
    row.writeUInt32LE(i.index, ROW.InterfaceIndex)
    row.writeUInt8(prefix, ROW.OnLinkPrefixLength)
    row.writeUInt32LE(i.index, ROW.ScopeId)
    return row
  }

  #createAddress(row: Buffer): number {
    const injected = this.#injected('CreateUnicastIpAddressEntry')
    if (injected !== undefined) return injected
    if (!this.administrator) return ERROR_ACCESS_DENIED
    const r = checkRow(row, this.misuses)
    if (!r) return ERROR_INVALID_PARAMETER
    const i = this.interfaces.get(r.luid)
    if (!i) return ERROR_NOT_FOUND // netioapi: "the interface could not be found"
    if (i.addresses.has(r.address)) return ERROR_OBJECT_ALREADY_EXISTS
    i.addresses.set(r.address, this.#stackRow(i, r.address, r.onLinkPrefixLength))
    return ERROR_SUCCESS
  }

  #deleteAddress(row: Buffer): number {
    const injected = this.#injected('DeleteUnicastIpAddressEntry')
    if (injected !== undefined) return injected
    if (!this.administrator) return ERROR_ACCESS_DENIED
    const r = checkRow(row, this.misuses)
    if (!r) return ERROR_INVALID_PARAMETER
    const i = this.interfaces.get(r.luid)
    if (!i || !i.addresses.delete(r.address)) return ERROR_NOT_FOUND
    return ERROR_SUCCESS
  }
}

/** What ngrokd must put in every row it passes (anything else is a bug the fake reports). */
function checkRow(row: Buffer, misuses: string[]): { address: string; luid: NetLuid; onLinkPrefixLength: number } | undefined {
  if (row.length !== MIB_UNICASTIPADDRESS_ROW_SIZE) {
    misuses.push(`a ${row.length}-byte MIB_UNICASTIPADDRESS_ROW`)
    return undefined
  }
  const r = decodeAddressRow(row)
  const problems: string[] = []
  if (r.family !== AF_INET || !r.address) problems.push(`family ${r.family}`)
  if (r.onLinkPrefixLength !== 32) problems.push(`OnLinkPrefixLength ${r.onLinkPrefixLength}`)
  if (!r.skipAsSource) problems.push('SkipAsSource false')
  if (r.dadState !== IpDadStatePreferred) problems.push(`DadState ${r.dadState}`)
  if (row.readInt32LE(ROW.PrefixOrigin) !== IpPrefixOriginManual || row.readInt32LE(ROW.SuffixOrigin) !== IpSuffixOriginManual) problems.push('origins not manual')
  if (problems.length > 0) {
    misuses.push(`bad MIB_UNICASTIPADDRESS_ROW: ${problems.join(', ')}`)
    return undefined
  }
  return { address: r.address!, luid: r.luid, onLinkPrefixLength: r.onLinkPrefixLength }
}
