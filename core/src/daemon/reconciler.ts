import { inject, injectable } from 'tsyringe'
import type { Interface } from '../contracts/interface.js'
import type { Allocator } from '../contracts/allocator.js'
import type { NameResolver, NameRecord } from '../contracts/name-resolver.js'
import type { Forwarder, ForwardTarget } from '../contracts/forwarder.js'
import type { Logger } from '../contracts/logger.js'
import type { DesiredService } from '../protocol/endpoints.js'
import { ALLOCATOR, FORWARDER, INTERFACE, LOGGER, NAME_RESOLVER } from '../di/tokens.js'
import { formatError, isNgrokdError } from '../errors/ngrokd-error.js'
import { networkPortKey, type NetworkPorts } from '../network/network-ports.js'

export type ServiceStateName = 'serving' | 'error'

export interface ServiceState {
  /** Normalised URL, e.g. `tcp://db.prod:5432`. */
  key: string
  url: string
  hostname: string
  port: number
  proto: ForwardTarget['proto']
  endpointIds: string[]
  address?: string
  state: ServiceStateName
  error?: { code?: string; message: string }
  /** Network mode: where other machines reach this service (`net.network.listen`:port). */
  network?: NetworkExposure
}

export interface NetworkExposure {
  address: string
  /** The service's stable network port (persisted in state_dir). */
  port: number
  /** The Host value every request is rewritten to (`http` services only). */
  rewriteHost?: string
  /** Set when the port could not be assigned or listened on; the service still serves locally. */
  error?: { code?: string; message: string }
}

/** Network mode for {@link Reconciler.setNetworkMode}: the address and the stable ports. */
export interface NetworkModeOptions {
  /** `net.network.listen`, e.g. `0.0.0.0` or a LAN address of this machine. */
  listen: string
  /** Opened by the caller, who also closes it. */
  ports: NetworkPorts
}

/** A service as `services()` shows it (`ngrokd list --json`): with its listeners' live figures. */
export type ServiceView = Omit<ServiceState, 'network'> & {
  openConnections: number
  totalConnections: number
  bytesIn: number
  bytesOut: number
  network?: NetworkExposure & { openConnections: number; totalConnections: number }
}

export interface ReconcileReport {
  services: number
  addressesAdded: number
  addressesRemoved: number
  listenersAdded: number
  listenersRemoved: number
  namesChanged: boolean
  errors: number
  durationMs: number
}

/** How many listen()/unlisten() calls run at once: enough for 10,000 endpoints, not a storm of fds. */
const LISTEN_CONCURRENCY = 64

const listenerKey = (address: string, port: number): string => `${address}:${port}`

/** The Host header value for a service: its hostname, with `:port` unless the port is http's default. */
export function hostHeaderFor(hostname: string, port: number): string {
  return port === 80 ? hostname : `${hostname}:${port}`
}

/**
 * Brings what is really there (kernel addresses, published names, listeners) to the desired set.
 * Adds run allocate → address → name → listen; removals run in reverse (stop listening, unpublish,
 * remove the address, release the IP). Every step diffs against what the drivers report, not against
 * memory, so a reconcile is idempotent and safe after a crash. One service's failure never blocks another.
 *
 * Network mode ({@link setNetworkMode}): each service also gets a listener on `listen:<stable port>`
 * (Host rewritten for `http`), added after its local listener and removed before any local one. A
 * network-side failure is recorded in the service's `network.error` and leaves local serving alone.
 */
@injectable()
export class Reconciler {
  private states = new Map<string, ServiceState>()
  /** Serialises reconciles: a poll and a teardown never interleave. */
  private running: Promise<unknown> = Promise.resolve()
  private network?: NetworkModeOptions

  constructor(
    @inject(INTERFACE) private readonly iface: Interface,
    @inject(ALLOCATOR) private readonly allocator: Allocator,
    @inject(NAME_RESOLVER) private readonly names: NameResolver,
    @inject(FORWARDER) private readonly forwarder: Forwarder,
    @inject(LOGGER) private readonly logger: Logger,
  ) {}

  reconcile(desired: readonly DesiredService[], options: { drainMs?: number } = {}): Promise<ReconcileReport> {
    const run = this.running.then(() => this.reconcileNow(desired, options.drainMs ?? 0))
    this.running = run.catch(() => {})
    return run
  }

  /**
   * Turns network mode on (or off with `undefined`) from the next reconcile on. Call it before the
   * first reconcile; turning it off later leaves earlier network listeners to be removed as stale.
   */
  setNetworkMode(mode: NetworkModeOptions | undefined): void {
    this.network = mode
  }

  /** Removes everything ngrokd put on the machine, in reverse order. Mappings are kept for stability. */
  teardown(options: { drainMs?: number } = {}): Promise<ReconcileReport> {
    return this.reconcile([], options)
  }

  /** The desired services and their state, with live connection counts. */
  /** How many services are serving and in error: cheap enough to call on every status request. */
  counts(): { total: number; serving: number; error: number } {
    let serving = 0
    for (const s of this.states.values()) if (s.state === 'serving') serving++
    return { total: this.states.size, serving, error: this.states.size - serving }
  }

  services(): ServiceView[] {
    const byListener = new Map(this.forwarder.listeners().map((l) => [listenerKey(l.address, l.port), l]))
    return [...this.states.values()].map((s) => {
      const l = s.address ? byListener.get(listenerKey(s.address, s.port)) : undefined
      const { network, ...local } = s
      const view: ServiceView = {
        ...local,
        openConnections: l?.openConnections ?? 0,
        totalConnections: l?.totalConnections ?? 0,
        bytesIn: l?.bytesIn ?? 0,
        bytesOut: l?.bytesOut ?? 0,
      }
      if (network) {
        const n = byListener.get(listenerKey(network.address, network.port))
        view.network = { ...network, openConnections: n?.openConnections ?? 0, totalConnections: n?.totalConnections ?? 0 }
      }
      return view
    })
  }

  private async reconcileNow(desired: readonly DesiredService[], drainMs: number): Promise<ReconcileReport> {
    const started = performance.now()
    const report: ReconcileReport = {
      services: desired.length, addressesAdded: 0, addressesRemoved: 0, listenersAdded: 0, listenersRemoved: 0, namesChanged: false, errors: 0, durationMs: 0,
    }
    const states = new Map<string, ServiceState>()
    for (const s of desired) {
      states.set(s.key, { key: s.key, url: s.url, hostname: s.hostname, port: s.port, proto: s.proto, endpointIds: [...s.endpointIds], state: 'serving' })
    }
    const fail = (state: ServiceState, e: unknown): void => {
      if (state.state === 'error') return
      state.state = 'error'
      state.error = { code: isNgrokdError(e) ? e.code : undefined, message: e instanceof Error ? e.message : String(e) }
      report.errors++
      this.logger.error({ url: state.url, err: e }, `cannot serve ${state.url}: ${formatError(e)}`)
    }

    // 1. allocate: one address per hostname (a hostname with several ports shares it)
    const hostnames = [...new Set(desired.map((s) => s.hostname))]
    const addressOf = new Map<string, string>()
    for (const a of await this.allocator.allocate({ hostnames })) {
      if ('address' in a) addressOf.set(a.hostname, a.address)
      else for (const st of states.values()) if (st.hostname === a.hostname) fail(st, a.error)
    }
    for (const st of states.values()) st.address = addressOf.get(st.hostname)

    // 1b. network mode: a stable port per hostname:port (never one of the endpoints' own ports)
    const network = this.network
    const failNetwork = (st: ServiceState, e: unknown): void => {
      const n = st.network!
      n.error = { code: isNgrokdError(e) ? e.code : undefined, message: e instanceof Error ? e.message : String(e) }
      report.errors++
      // logged at error once; while the same error repeats on every poll, at debug
      const before = this.states.get(st.key)?.network?.error
      this.logger[before?.message === n.error.message ? 'debug' : 'error']({ url: st.url, err: e }, `cannot expose ${st.url} on ${listenerKey(n.address, n.port)}: ${formatError(e)}`)
    }
    if (network) {
      const keys = [...states.values()].map((st) => networkPortKey(st.hostname, st.port))
      try {
        const assigned = await network.ports.assign({ keys, avoid: new Set(desired.map((s) => s.port)) })
        const byKey = new Map(assigned.map((a) => [a.key, a]))
        for (const st of states.values()) {
          const a = byKey.get(networkPortKey(st.hostname, st.port))!
          st.network = { address: network.listen, port: 'port' in a ? a.port : 0, ...(st.proto === 'http' ? { rewriteHost: hostHeaderFor(st.hostname, st.port) } : {}) }
          if ('error' in a) failNetwork(st, a.error)
        }
      } catch (e) {
        // the state file could not be written: the ports hold in memory, so use them and say so
        this.logger.error({ err: e }, `network ports: ${formatError(e)}`)
        for (const st of states.values()) {
          const port = network.ports.lookup(networkPortKey(st.hostname, st.port))
          st.network = { address: network.listen, port: port ?? 0, ...(st.proto === 'http' ? { rewriteHost: hostHeaderFor(st.hostname, st.port) } : {}) }
          if (port === undefined) failNetwork(st, e)
        }
      }
    }

    // 2. stop listening where nothing is desired any more (first step of removal): network listeners first
    const wanted = new Map<string, ServiceState>()
    for (const st of states.values()) if (st.address && st.state !== 'error') wanted.set(listenerKey(st.address, st.port), st)
    const wantedNetwork = new Map<string, ServiceState>()
    for (const st of states.values()) {
      if (st.state === 'error' || !st.network || st.network.error) continue
      const key = listenerKey(st.network.address, st.network.port)
      if (wanted.has(key)) failNetwork(st, new Error(`${key} is also the local listener of ${wanted.get(key)!.url}`))
      else wantedNetwork.set(key, st)
    }
    const stale = this.forwarder.listeners().filter((l) => !wanted.has(listenerKey(l.address, l.port)) && !wantedNetwork.has(listenerKey(l.address, l.port)))
    // a listener on an address the allocator never gave out is a network one (also after network mode was turned off)
    const allocated = new Set(this.allocator.list().map((e) => e.address))
    const isNetwork = (l: { address: string }): boolean => !allocated.has(l.address)
    for (const batch of [stale.filter(isNetwork), stale.filter((l) => !isNetwork(l))]) {
      await eachLimited(batch, LISTEN_CONCURRENCY, async (l) => {
        await this.forwarder.unlisten({ address: l.address, port: l.port, drainMs })
        report.listenersRemoved++
      })
    }

    // 3. add missing addresses
    const present = new Set(await this.iface.listAddresses())
    const wantedAddresses = new Set<string>()
    for (const st of wanted.values()) wantedAddresses.add(st.address!)
    const toAdd = [...wantedAddresses].filter((a) => !present.has(a))
    const failedAddresses = await this.applyAddresses(toAdd, 'add')
    report.addressesAdded = toAdd.length - failedAddresses.size
    for (const st of wanted.values()) {
      const e = failedAddresses.get(st.address!)
      if (e) fail(st, e)
    }

    // 4. publish names of everything that has its address (removes the names of what went away)
    const records = new Map<string, NameRecord>()
    for (const st of states.values()) {
      if (st.state !== 'error' && st.address) records.set(st.hostname, { hostname: st.hostname, address: st.address })
    }
    try {
      report.namesChanged = (await this.names.publish({ records: [...records.values()] })).changed
    } catch (e) {
      for (const st of states.values()) if (records.has(st.hostname)) fail(st, e)
    }

    // 5. remove addresses nobody wants
    const toRemove = [...present].filter((a) => !wantedAddresses.has(a))
    const failedRemovals = await this.applyAddresses(toRemove, 'remove')
    report.addressesRemoved = toRemove.length - failedRemovals.size

    // 6. listen where desired and not yet listening (listen() is idempotent and updates a changed target)
    const listening = new Set(this.forwarder.listeners().map((l) => listenerKey(l.address, l.port)))
    const toListen = [...wanted.entries()].filter(([, st]) => st.state !== 'error')
    await eachLimited(toListen, LISTEN_CONCURRENCY, async ([key, st]) => {
      try {
        await this.forwarder.listen({ address: st.address!, port: st.port, target: { hostname: st.hostname, port: st.port, proto: st.proto } })
        if (!listening.has(key)) report.listenersAdded++
      } catch (e) {
        fail(st, e)
      }
    })

    // 6b. network listeners, after the local ones, for the services that serve
    const toExpose = [...wantedNetwork.entries()].filter(([, st]) => st.state !== 'error')
    await eachLimited(toExpose, LISTEN_CONCURRENCY, async ([key, st]) => {
      const n = st.network!
      try {
        await this.forwarder.listen({
          address: n.address,
          port: n.port,
          target: { hostname: st.hostname, port: st.port, proto: st.proto },
          ...(n.rewriteHost ? { rewriteHost: n.rewriteHost } : {}),
        })
        if (!listening.has(key)) report.listenersAdded++
      } catch (e) {
        failNetwork(st, e)
      }
    })

    // 7. release hostnames no longer desired (their mapping is kept for when they come back)
    const gone = this.allocator.list().filter((e) => e.active && !addressOf.has(e.hostname)).map((e) => e.hostname)
    if (gone.length > 0) await this.allocator.release({ hostnames: gone })
    if (network) {
      const keep = new Set([...states.values()].map((st) => networkPortKey(st.hostname, st.port)))
      const goneKeys = network.ports.list().filter((e) => e.active && !keep.has(e.key)).map((e) => e.key)
      if (goneKeys.length > 0) {
        await network.ports.release({ keys: goneKeys }).catch((e: unknown) => this.logger.error({ err: e }, `network ports: ${formatError(e)}`))
      }
    }

    this.states = states
    report.durationMs = performance.now() - started
    return report
  }

  /** Applies a batch; on failure retries one by one to find out which addresses failed. */
  private async applyAddresses(addresses: string[], op: 'add' | 'remove'): Promise<Map<string, unknown>> {
    const failed = new Map<string, unknown>()
    if (addresses.length === 0) return failed
    try {
      await this.iface.applyAddresses(op === 'add' ? { add: addresses, remove: [] } : { add: [], remove: addresses })
      return failed
    } catch (batchError) {
      this.logger.warn({ err: batchError }, `batch ${op} of ${addresses.length} addresses failed; retrying one by one`)
    }
    for (const address of addresses) {
      try {
        if (op === 'add') await this.iface.addAddress({ address })
        else await this.iface.removeAddress({ address })
      } catch (e) {
        failed.set(address, e)
        this.logger.error({ err: e, address }, `${op} address ${address} failed: ${formatError(e)}`)
      }
    }
    return failed
  }
}

async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!)
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}
