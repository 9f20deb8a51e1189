import net from 'node:net'
import dbus from '@homebridge/dbus-native'
import { NgrokdError } from '@ngrokd/core/plugin'

/** The bus name, object and interfaces of systemd-resolved — org.freedesktop.resolve1(5). */
export const RESOLVED_BUS_NAME = 'org.freedesktop.resolve1'
export const RESOLVED_MANAGER_PATH = '/org/freedesktop/resolve1'
export const RESOLVED_MANAGER = 'org.freedesktop.resolve1.Manager'
export const RESOLVED_LINK = 'org.freedesktop.resolve1.Link'
/** Where the system bus is when DBUS_SYSTEM_BUS_ADDRESS is not set — the D-Bus specification's default. */
export const DEFAULT_SYSTEM_BUS_ADDRESS = 'unix:path=/var/run/dbus/system_bus_socket'
/** The IPv4 address family as resolved takes it (`<linux/socket.h>`). */
export const AF_INET = 2
/** How long a call waits for its reply: libdbus's default (DBUS_TIMEOUT_USE_DEFAULT, 25 s). */
const CALL_TIMEOUT_MS = 25_000

/**
 * Error replies that come from the bus, not from resolved (it is not there yet, or did not answer): the next call may
 * go through. Any other error reply is resolved's own answer to the call (InvalidArgs, AccessDenied, UnknownMethod):
 * asking again gets it again.
 */
const BUS_ERRORS = new Set(['ServiceUnknown', 'NameHasNoOwner', 'NoReply', 'Timeout', 'TimedOut', 'Disconnected', 'NoServer', 'LimitsExceeded'].map((e) => `org.freedesktop.DBus.Error.${e}`))

/**
 * resolved's answer for an ifindex whose link is gone (bus-common-errors.h, BUS_ERROR_NO_SUCH_LINK): the interface was
 * deleted and is being made again, under a new ifindex that relinking registers; no refusal of what was asked.
 */
export const NO_SUCH_LINK = 'org.freedesktop.resolve1.NoSuchLink'

/** resolved answered a call with an error of its own: {@link BUS_ERRORS} tells it from the bus's. */
export class ResolvedRefusal extends NgrokdError<'NGROKD_ERR_PLUGIN_FAILED'> {
  override name = 'ResolvedRefusal'
  constructor(
    readonly dbusName: string,
    message: string,
  ) {
    super('NGROKD_ERR_PLUGIN_FAILED', message)
  }
}

/** The system bus ngrokd talks to: `DBUS_SYSTEM_BUS_ADDRESS`, else the standard socket. */
export function systemBusAddress(env: NodeJS.ProcessEnv = process.env): string {
  return env.DBUS_SYSTEM_BUS_ADDRESS || DEFAULT_SYSTEM_BUS_ADDRESS
}

/** One per-link DNS server as `SetLinkDNS` takes it: `(iay)`, the family and the address's bytes. */
export type LinkDnsAddress = [family: number, address: Buffer]

/** One per-link domain as `SetLinkDomains` takes it: `(sb)`, the domain and whether it only routes. */
export type LinkDomain = [domain: string, routingOnly: boolean]

/** What resolved holds for a link (its `org.freedesktop.resolve1.Link` properties). */
export interface LinkState {
  dns: string[]
  domains: Array<{ domain: string; routingOnly: boolean }>
}

interface Message {
  destination: string
  path: string
  interface: string
  member: string
  signature?: string
  body?: unknown[]
}

/** The part of @homebridge/dbus-native's bus this uses (its own typings leave `invoke` untyped). */
interface Bus {
  invoke(message: Message, callback: (error: { name?: string; message?: unknown } | null | undefined, ...values: unknown[]) => void): void
  connection: NodeJS.EventEmitter & { end(): void; stream: { destroy(): void } }
}

/** An IPv4 address as `SetLinkDNS` takes it; undefined for any other (the daemon's addresses are IPv4). */
export function linkDnsAddress(address: string): LinkDnsAddress | undefined {
  return net.isIPv4(address) ? [AF_INET, Buffer.from(address.split('.').map(Number))] : undefined
}

/** `~suffix` for each suffix: routing-only, so resolved sends only those names to the link. */
export function routingDomains(suffixes: Iterable<string>): LinkDomain[] {
  return [...suffixes].sort().map((s) => [s, true])
}

/**
 * systemd-resolved over the system bus: the per-link calls of its Manager
 * (`SetLinkDNS`, `SetLinkDomains`, `SetLinkDefaultRoute`, `SetLinkDNSSEC`, `RevertLink`) and
 * what it holds for a link. Each call is typed by its signature from org.freedesktop.resolve1(5).
 *
 * ```ts
 * const resolved = await SystemdResolved.connect()
 * if (await resolved.isOnBus()) await resolved.setLinkDns(ifindex, [linkDnsAddress('10.107.0.1')])
 * resolved.close()
 * ```
 */
export class SystemdResolved {
  #closed = false

  private constructor(
    private readonly bus: Bus,
    readonly address: string,
  ) {
    bus.connection.on('end', () => (this.#closed = true))
  }

  /** Connects to the system bus (`DBUS_SYSTEM_BUS_ADDRESS`); fails with the reason when there is none. */
  static async connect(address = systemBusAddress(), { timeoutMs = CALL_TIMEOUT_MS }: { timeoutMs?: number } = {}): Promise<SystemdResolved> {
    let bus: Bus
    try {
      bus = (dbus as unknown as { createClient(options: { busAddress: string }): Bus }).createClient({ busAddress: address })
    } catch (e) {
      throw new NgrokdError('NGROKD_ERR_PLUGIN_FAILED', `no system bus at ${address}: ${(e as Error).message}`, { cause: e })
    }
    const resolved = new SystemdResolved(bus, address)
    await new Promise<void>((resolve, reject) => {
      const failed = (e: unknown) => {
        clearTimeout(timer)
        bus.connection.stream.destroy()
        reject(new NgrokdError('NGROKD_ERR_PLUGIN_FAILED', `no system bus at ${address}: ${errorText(e)}`, { cause: e }))
      }
      // a socket that accepts but never finishes the handshake must not hold the daemon's start
      const timer = setTimeout(() => failed(`no D-Bus handshake within ${timeoutMs} ms`), timeoutMs)
      bus.connection.once('error', failed)
      bus.connection.once('connect', () => {
        clearTimeout(timer)
        bus.connection.off('error', failed)
        // an error later (the bus going away) fails the calls in flight, never the process
        bus.connection.on('error', () => (resolved.#closed = true))
        resolve()
      })
    })
    return resolved
  }

  /** False once the connection ended (the bus restarted): connect again. */
  get connected(): boolean {
    return !this.#closed
  }

  /** resolved runs, or the bus would start it for a call (D-Bus activation). */
  async isOnBus(): Promise<boolean> {
    const bus = { destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus' }
    const [owned] = await this.#call({ ...bus, member: 'NameHasOwner', signature: 's', body: [RESOLVED_BUS_NAME] })
    if (owned === true) return true
    const [activatable] = await this.#call({ ...bus, member: 'ListActivatableNames' })
    return Array.isArray(activatable) && activatable.includes(RESOLVED_BUS_NAME)
  }

  /** `SetLinkDNS(in i ifindex, in a(iay) addresses)`: the link's DNS servers (port 53). */
  async setLinkDns(ifindex: number, addresses: readonly LinkDnsAddress[]): Promise<void> {
    await this.#manager('SetLinkDNS', 'ia(iay)', [ifindex, addresses])
  }

  /** `SetLinkDomains(in i ifindex, in a(sb) domains)`: the link's search and routing (`~`) domains. */
  async setLinkDomains(ifindex: number, domains: readonly LinkDomain[]): Promise<void> {
    await this.#manager('SetLinkDomains', 'ia(sb)', [ifindex, domains])
  }

  /** `SetLinkDefaultRoute(in i ifindex, in b enable)`: whether names outside its domains go to the link too. */
  async setLinkDefaultRoute(ifindex: number, enable: boolean): Promise<void> {
    await this.#manager('SetLinkDefaultRoute', 'ib', [ifindex, enable])
  }

  /** `SetLinkDNSSEC(in i ifindex, in s mode)`. */
  async setLinkDnssec(ifindex: number, mode: 'yes' | 'no' | 'allow-downgrade' | ''): Promise<void> {
    await this.#manager('SetLinkDNSSEC', 'is', [ifindex, mode])
  }

  /** `RevertLink(in i ifindex)`: drops everything set for the link. `timeoutMs`: how long to wait for the reply. */
  async revertLink(ifindex: number, { timeoutMs = CALL_TIMEOUT_MS }: { timeoutMs?: number } = {}): Promise<void> {
    await this.#manager('RevertLink', 'i', [ifindex], timeoutMs)
  }

  /** The link's `DNS` and `Domains` properties, through `GetLink(in i ifindex, out o path)`; `timeoutMs` per call. */
  async linkState(ifindex: number, { timeoutMs = CALL_TIMEOUT_MS }: { timeoutMs?: number } = {}): Promise<LinkState> {
    const [path] = await this.#manager('GetLink', 'i', [ifindex], timeoutMs)
    const get = async (property: string) =>
      (await this.#call({ destination: RESOLVED_BUS_NAME, path: String(path), interface: 'org.freedesktop.DBus.Properties', member: 'Get', signature: 'ss', body: [RESOLVED_LINK, property] }, timeoutMs))[0]
    // a variant arrives as [signature, [value]]
    const value = (v: unknown) => (Array.isArray(v) && Array.isArray(v[1]) ? v[1][0] : undefined) as unknown[] | undefined
    const dns = (value(await get('DNS')) ?? []) as Array<[number, Buffer]>
    const domains = (value(await get('Domains')) ?? []) as Array<[string, boolean]>
    return {
      dns: dns.map(([family, bytes]) => addressText(family, Buffer.from(bytes))),
      domains: domains.map(([domain, routingOnly]) => ({ domain, routingOnly })),
    }
  }

  close(): void {
    this.#closed = true
    this.bus.connection.end()
  }

  #manager(member: string, signature: string, body: unknown[], timeoutMs?: number): Promise<unknown[]> {
    return this.#call({ destination: RESOLVED_BUS_NAME, path: RESOLVED_MANAGER_PATH, interface: RESOLVED_MANAGER, member, signature, body }, timeoutMs)
  }

  #call(message: Message, timeoutMs = CALL_TIMEOUT_MS): Promise<unknown[]> {
    const what = `${message.interface}.${message.member}`
    if (this.#closed) return Promise.reject(new NgrokdError('NGROKD_ERR_PLUGIN_FAILED', `${what}: the connection to the system bus ${this.address} is closed`))
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new NgrokdError('NGROKD_ERR_PLUGIN_FAILED', `${what}: no reply within ${+(timeoutMs / 1000).toFixed(2)} s`)), timeoutMs)
      timer.unref()
      this.bus.invoke(message, (error, ...values) => {
        clearTimeout(timer)
        if (!error) return resolve(values)
        const message = `${what}: ${error.name ?? 'error'}: ${errorText(error.message)}`
        reject(error.name && !BUS_ERRORS.has(error.name) ? new ResolvedRefusal(error.name, message) : new NgrokdError('NGROKD_ERR_PLUGIN_FAILED', message))
      })
    })
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : typeof e === 'string' ? e : JSON.stringify(e)
}

function addressText(family: number, bytes: Buffer): string {
  return family === AF_INET && bytes.length === 4 ? [...bytes].join('.') : `family ${family}: ${bytes.toString('hex')}`
}
