import { inject, injectable } from '../di/tsyringe.js'
import type { Interface } from '../contracts/interface.js'
import type { Allocation, Allocator } from '../contracts/allocator.js'
import type { NameResolver, NameRecord } from '../contracts/name-resolver.js'
import type { Forwarder, ForwardTarget, ListenerStatus } from '../contracts/forwarder.js'
import type { Logger } from '../contracts/logger.js'
import type { DesiredService } from '../protocol/endpoints.js'
import { ALLOCATOR, FORWARDER, INTERFACE, LOGGER, NAME_RESOLVER } from '../di/tokens.js'
import { NgrokdError, formatError, isNgrokdError } from '../errors/ngrokd-error.js'
import { networkPortKey, type NetworkPorts } from '../network/network-ports.js'

export type ServiceStateName = 'serving' | 'error'

/** Why a service (or its network side, or its name) is not as desired; `hint` says how to fix it. */
export interface ServiceError {
  code?: string
  message: string
  hint?: string
}

/** How many endpoint changes one reconcile logs at info, one line each; the rest at debug. */
const ANNOUNCED_PER_PASS = 20
/** Names removed under the daemon this many times in one episode are said once more, with who likely does it. */
const NAMES_GONE_SAID_AGAIN_AT = 3
/** An episode of names removed under the daemon ends after this long without it. */
const NAMES_GONE_QUIET_MS = 600_000

export interface ServiceState {
  /** Normalised URL, e.g. `tcp://db.prod:5432`. */
  key: string
  url: string
  hostname: string
  port: number
  proto: ForwardTarget['proto']
  /** The desired service's own list (shared, never changed). */
  endpointIds: string[]
  address?: string
  state: ServiceStateName
  error?: ServiceError
  /** Network mode: where other machines reach this service (`net.network.listen`:port). */
  network?: NetworkExposure
  /**
   * The name resolver refuses changes until a failed write is repaired (NGROKD_ERR_NAMES_FROZEN): the
   * service serves, but a name it needs published (or unpublished) waits. Names published before still resolve.
   */
  nameError?: ServiceError
}

/** Services by state; `networkError`: how many serve locally but not on the network (network mode), when any. */
export interface ServiceCounts {
  total: number
  serving: number
  error: number
  networkError?: number
}

export interface NetworkExposure {
  address: string
  /** The service's stable network port (persisted in state_dir). */
  port: number
  /** The Host value every request is rewritten to (`http` services only). */
  rewriteHost?: string
  /** Set when the port could not be assigned or listened on; the service still serves locally. */
  error?: ServiceError
}

/** Network mode for {@link Reconciler.setNetworkMode}: the address and the stable ports. */
export interface NetworkModeOptions {
  /** `net.network.listen`, e.g. `0.0.0.0` or a LAN address of this machine. */
  listen: string
  /** Opened by the caller, who also closes it. */
  ports: NetworkPorts
  /**
   * How long the connections of a network port that moved (its service still served, on another port) may go on:
   * they are no removed endpoint's, so not cut after the drain of one (`forwarder.idle_timeout` in the daemon).
   * Default: the pass's drain.
   */
  movedDrainMs?: number
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
  /**
   * Hostnames going away whose names could not be unpublished (the resolver failed): they still resolve, so their
   * addresses are kept from every other hostname until a later pass withdraws them. Absent when there are none.
   */
  namesNotWithdrawn?: string[]
}

/** How many listen() calls run at once: enough for 10,000 endpoints, not a storm of fds. */
const LISTEN_CONCURRENCY = 64

const listenerKey = (address: string, port: number): string => `${address}:${port}`

/** A failure as services carry it: code, message, and the fix when the error names one. */
const errorOf = (e: unknown): ServiceError => ({
  code: isNgrokdError(e) ? e.code : undefined,
  message: e instanceof Error ? e.message : String(e),
  ...(isNgrokdError(e) && e.hint ? { hint: e.hint } : {}),
})

/** The Host header value for a service: its hostname, with `:port` unless the port is http's default. */
export function hostHeaderFor(hostname: string, port: number): string {
  return port === 80 ? hostname : `${hostname}:${port}`
}

/** One reconcile's working set: the services as they will be, and the report being built. */
interface Pass {
  desired: readonly DesiredService[]
  states: Map<string, ServiceState>
  report: ReconcileReport
  drainMs: number
  /** Teardown: waits for every drain (earlier passes' too) before addresses go; a normal pass waits for none. */
  teardown: boolean
  /** hostname → allocated address. */
  addressOf: Map<string, string>
  /** Local listeners wanted (`address:port` → service), network ones, and the addresses they need. */
  wanted: Map<string, ServiceState>
  wantedNetwork: Map<string, ServiceState>
  wantedAddresses: Set<string>
  /** Addresses on the interface before this pass. */
  present: Set<string>
  /** Step 0 put the interface back: its addresses went with it, which the repair's own line says. */
  repaired: boolean
  /** Step 2: hostnames going away whose names are still published (their addresses must not go to another hostname). */
  namesNotWithdrawn: Set<string>
  fail(state: ServiceState, e: unknown): void
  failNetwork(state: ServiceState, e: unknown): void
}

/**
 * Brings what is really there (kernel addresses, published names, listeners) to the desired set.
 * Every step diffs against what the drivers report, not against memory, so a reconcile is
 * idempotent and safe after a crash. One service's failure never blocks another.
 *
 * The steps, in order ({@link reconcileNow}):
 * 0. {@link repairInterface}: an interface deleted or brought down under the daemon is put back;
 * 1. {@link plan}: an address per hostname (the allocator), a network port per service (network mode);
 * 2. {@link withdrawNames}: names that go away are unpublished first, before their listener or address;
 * 3. {@link stopStaleListeners}: network listeners first, then local ones, of what is no longer wanted (their
 *    connections drain in the background; teardown waits for them);
 * 4. {@link addAddresses}; 5. {@link listenLocal};
 * 6. {@link publishNames}: a hostname is published only when every one of its listeners is ngrokd's
 *    (a port held by another program withholds the name: clients must never reach that program by it);
 * 7. {@link removeAddresses} nobody wants (one whose listener still drains waits for a later pass);
 * 8. {@link exposeNetwork}: network listeners, after the local ones;
 * 9. {@link releaseGone}: hostnames and network ports no longer desired keep their mapping, inactive.
 *
 * Network mode ({@link setNetworkMode}): each service also gets a listener on `listen:<stable port>`
 * (Host rewritten for `http`). A network-side failure is recorded in the service's `network.error`
 * and leaves local serving alone.
 */
@injectable()
export class Reconciler {
  private states = new Map<string, ServiceState>()
  /** The address-change failures logged, by `<op> <address>` (or `<op> batch`), with what was said: repeats go to debug. */
  private readonly failuresLogged = new Map<string, string>()
  /** Serialises reconciles: a poll and a teardown never interleave. */
  private running: Promise<unknown> = Promise.resolve()
  private network?: NetworkModeOptions
  /** Addresses of the interface that are no endpoint's but stay (the interface's own, for a plugin's DNS). */
  private readonly kept = new Set<string>()
  /** What the last pass left in place, wanted: addresses on the interface, names published (hostname → address). */
  private placedAddresses = new Set<string>()
  private placedNames = new Map<string, string>()
  /**
   * Hostnames that may be published: those the names store last listed, and since then every one published. Undefined
   * until it was first read. When it cannot be read, only these may have been left there.
   */
  private mayBePublished?: Set<string>
  /** Names removed under the daemon: how often in this episode, the last time (a new episode after {@link NAMES_GONE_QUIET_MS}). */
  private namesGone?: { times: number; since: number; lastAt: number }
  /**
   * Unlistens whose connections are still draining, started by this pass or earlier ones. A normal pass does not
   * wait for them (an endpoint change is picked up within one poll); their addresses stay on the interface until
   * the drain is over (removing one would cut its connections), and a later pass removes them. Teardown waits.
   */
  private readonly drains = new Set<{ address: string; done: Promise<void> }>()

  constructor(
    @inject(INTERFACE) private readonly iface: Interface,
    @inject(ALLOCATOR) private readonly allocator: Allocator,
    @inject(NAME_RESOLVER) private readonly names: NameResolver,
    @inject(FORWARDER) private readonly forwarder: Forwarder,
    @inject(LOGGER) private readonly logger: Logger,
  ) {}

  reconcile(desired: readonly DesiredService[], options: { drainMs?: number; announce?: boolean } = {}): Promise<ReconcileReport> {
    return this.serialized(desired, options.drainMs ?? 0, options.announce ?? true, false)
  }

  private serialized(desired: readonly DesiredService[], drainMs: number, announce: boolean, teardown: boolean): Promise<ReconcileReport> {
    const run = this.running.then(() => this.reconcileNow(desired, drainMs, announce, teardown))
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

  /**
   * Keeps `addresses` on the interface from the next reconcile on (added if missing, never removed
   * as unwanted) until teardown.
   */
  keepAddresses(addresses: readonly string[]): void {
    for (const a of addresses) this.kept.add(a)
  }

  /** Removes everything ngrokd put on the machine, in reverse order. Mappings are kept for stability. */
  teardown(options: { drainMs?: number } = {}): Promise<ReconcileReport> {
    this.kept.clear()
    return this.serialized([], options.drainMs ?? 0, false, true)
  }

  /**
   * How many services are serving and in error, and (network mode) how many are not exposed on the
   * network: cheap enough to call on every status request.
   */
  counts(): ServiceCounts {
    let serving = 0
    let networkError = 0
    for (const s of this.states.values()) {
      if (s.state === 'serving') serving++
      if (s.network?.error) networkError++
    }
    return { total: this.states.size, serving, error: this.states.size - serving, ...(networkError > 0 ? { networkError } : {}) }
  }

  /** The desired services and their state, with live connection counts. */
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

  private async reconcileNow(desired: readonly DesiredService[], drainMs: number, announce: boolean, teardown: boolean): Promise<ReconcileReport> {
    const started = performance.now()
    const pass = this.newPass(desired, drainMs, teardown)
    pass.repaired = await this.repairInterface(desired)
    await this.plan(pass)
    await this.withdrawNames(pass)
    await this.stopStaleListeners(pass)
    await this.addAddresses(pass)
    await this.listenLocal(pass)
    await this.publishNames(pass)
    await this.removeAddresses(pass)
    await this.exposeNetwork(pass)
    await this.releaseGone(pass)
    if (announce) this.announceChanges(this.states, pass.states)
    this.states = pass.states
    pass.report.durationMs = performance.now() - started
    return pass.report
  }

  /**
   * One log line per service that started (or resumed) serving, or went away, naming its URL; past
   * {@link ANNOUNCED_PER_PASS} in one pass the rest go to debug with a count. Failures are logged where
   * they happen (`fail`). Teardown says it once for all.
   */
  private announceChanges(before: ReadonlyMap<string, ServiceState>, after: ReadonlyMap<string, ServiceState>): void {
    const lines: Array<[Record<string, unknown>, string]> = []
    for (const st of after.values()) {
      if (st.state !== 'serving') continue
      const was = before.get(st.key)
      if (was?.state === 'serving' && was.address === st.address) continue
      lines.push([{ url: st.url, hostname: st.hostname, address: st.address }, `${was ? 'serving again' : 'serving'} ${st.url} on ${st.address}:${st.port}`])
    }
    for (const st of before.values()) {
      if (!after.has(st.key)) lines.push([{ url: st.url, hostname: st.hostname }, `stopped serving ${st.url}: no longer bound to this operator`])
    }
    for (const [i, [fields, msg]] of lines.entries()) this.logger[i < ANNOUNCED_PER_PASS ? 'info' : 'debug'](fields, msg)
    if (lines.length > ANNOUNCED_PER_PASS) this.logger.info(`and ${lines.length - ANNOUNCED_PER_PASS} more endpoint changes (log.level debug lists them; ngrokd list shows the state)`)
  }

  private newPass(desired: readonly DesiredService[], drainMs: number, teardown: boolean): Pass {
    const report: ReconcileReport = {
      services: desired.length, addressesAdded: 0, addressesRemoved: 0, listenersAdded: 0, listenersRemoved: 0, namesChanged: false, errors: 0, durationMs: 0,
    }
    const states = new Map<string, ServiceState>()
    for (const s of desired) {
      states.set(s.key, { key: s.key, url: s.url, hostname: s.hostname, port: s.port, proto: s.proto, endpointIds: s.endpointIds, state: 'serving', address: undefined })
    }
    const previous = this.states
    const logger = this.logger
    return {
      desired, states, report, drainMs, teardown,
      addressOf: new Map(), wanted: new Map(), wantedNetwork: new Map(), wantedAddresses: new Set(), present: new Set(), repaired: false, namesNotWithdrawn: new Set(),
      fail(state, e) {
        if (state.state === 'error') return
        state.state = 'error'
        state.error = errorOf(e)
        report.errors++
        // logged at error once; while the same error repeats on every poll, at debug
        const before = previous.get(state.key)?.error
        logger[before?.message === state.error.message ? 'debug' : 'error']({ url: state.url, hostname: state.hostname, err: e }, `cannot serve ${state.url}: ${formatError(e)}`)
      },
      failNetwork(state, e) {
        const n = state.network!
        n.error = errorOf(e)
        report.errors++
        const before = previous.get(state.key)?.network?.error
        logger[before?.message === n.error.message ? 'debug' : 'error']({ url: state.url, err: e }, `cannot expose ${state.url} on ${listenerKey(n.address, n.port)}: ${formatError(e)}`)
      },
    }
  }

  /** 0. The interface deleted or brought down under us is put back first (its addresses follow in step 4); true when it was. */
  private async repairInterface(desired: readonly DesiredService[]): Promise<boolean> {
    if (desired.length === 0 || !this.iface.repair) return false // teardown, or nothing to serve: nothing to put back
    try {
      const repaired = await this.iface.repair()
      this.failuresLogged.delete('repair')
      if (repaired) this.logger.warn(`${this.iface.driver}: ${repaired}`)
      return repaired !== undefined
    } catch (e) {
      this.logOnce('repair', 'error', e, `${this.iface.driver}: the interface is not as it should be and could not be put back: ${formatError(e)}`)
      return false
    }
  }

  /** 1. One address per hostname (a hostname with several ports shares it), a stable network port per service. */
  private async plan(pass: Pass): Promise<void> {
    const { states, addressOf } = pass
    const hostnames = [...new Set(pass.desired.map((s) => s.hostname))]
    let allocations: Allocation[]
    try {
      allocations = await this.allocator.allocate({ hostnames })
    } catch (e) {
      this.holdBackUnsaved(pass, e)
      allocations = []
    }
    for (const a of allocations) {
      if ('address' in a) addressOf.set(a.hostname, a.address)
      else for (const st of states.values()) if (st.hostname === a.hostname) pass.fail(st, a.error)
    }
    for (const st of states.values()) st.address = addressOf.get(st.hostname)
    await this.planNetwork(pass)
    for (const st of states.values()) if (st.address && st.state !== 'error') pass.wanted.set(listenerKey(st.address, st.port), st)
    for (const st of states.values()) {
      if (st.state === 'error' || !st.network || st.network.error) continue
      const key = listenerKey(st.network.address, st.network.port)
      if (pass.wanted.has(key)) pass.failNetwork(st, new Error(`${key} is also the local listener of ${pass.wanted.get(key)!.url}`))
      else pass.wantedNetwork.set(key, st)
    }
    for (const st of pass.wanted.values()) pass.wantedAddresses.add(st.address!)
    for (const a of this.kept) pass.wantedAddresses.add(a)
  }

  /**
   * The allocator could not save (a full or read-only state_dir): an address is used only once it is saved, so that a
   * restart gives each name the same one. A hostname the last pass placed keeps its address (saved then); a new one is
   * held back, in error with the reason and the fix, and served at the first pass whose save works.
   */
  private holdBackUnsaved(pass: Pass, e: unknown): void {
    const placed = new Map([...this.states.values()].filter((st) => st.address !== undefined).map((st) => [st.hostname, st.address!]))
    // the allocator's message is in this one's (list shows no causes): not its cause too, which a log line would repeat
    const held = new NgrokdError('NGROKD_ERR_STATE', `not served until its address is saved (so that a restart gives it the same one): ${e instanceof Error ? e.message : String(e)}`, {
      hint: `${(isNgrokdError(e) && e.hint) || 'check that state_dir is writable'}; ngrokd serves it at the first poll after`,
    })
    for (const st of pass.states.values()) {
      const address = placed.get(st.hostname)
      if (address !== undefined && this.allocator.lookup(st.hostname) === address) pass.addressOf.set(st.hostname, address)
      else pass.fail(st, held)
    }
  }

  /** Network mode: a stable port per hostname:port (never one of the endpoints' own ports). */
  private async planNetwork(pass: Pass): Promise<void> {
    const network = this.network
    if (!network) return
    const { states } = pass
    const exposure = (st: ServiceState, port: number): NetworkExposure => ({
      address: network.listen,
      port,
      ...(st.proto === 'http' ? { rewriteHost: hostHeaderFor(st.hostname, st.port) } : {}),
    })
    const keys = [...states.values()].map((st) => networkPortKey(st.hostname, st.port))
    try {
      // a wildcard listen address takes the port on every address, the endpoints' own too; a specific one collides with none
      const wildcard = /^[0.]+$/.test(network.listen) // 0.0.0.0 (net.network.listen is IPv4)
      const assigned = await network.ports.assign({ keys, ...(wildcard ? { avoid: new Set(pass.desired.map((s) => s.port)) } : {}) })
      const byKey = new Map(assigned.map((a) => [a.key, a]))
      for (const st of states.values()) {
        const a = byKey.get(networkPortKey(st.hostname, st.port))!
        st.network = exposure(st, 'port' in a ? a.port : 0)
        if ('error' in a) pass.failNetwork(st, a.error)
      }
    } catch (e) {
      // the state file could not be written: the ports hold in memory, so use them and say so
      this.logger.error({ err: e }, `network ports: ${formatError(e)}`)
      for (const st of states.values()) {
        const port = network.ports.lookup(networkPortKey(st.hostname, st.port))
        st.network = exposure(st, port ?? 0)
        if (port === undefined) pass.failNetwork(st, e)
      }
    }
  }

  /**
   * 2. Names that go away (or move to another address) are unpublished before anything else of theirs. Those that
   * cannot be keep their addresses from every other hostname ({@link releaseGone}) until a later pass withdraws them:
   * a stale name must never lead to another endpoint.
   */
  private async withdrawNames(pass: Pass): Promise<void> {
    const desired = new Set(pass.desired.map((s) => s.hostname))
    let published: NameRecord[]
    try {
      published = await this.names.list()
      this.failuresLogged.delete('list names')
      this.mayBePublished = new Set(published.map((r) => r.hostname))
    } catch (e) {
      this.logOnce('list names', 'warn', e, `cannot read the published names: ${formatError(e)}`)
      // not known to be gone: every hostname going away that may have been published may still be (none, when the
      // store was never read: nothing was published through it since)
      const mayBe = this.mayBePublished ?? new Set()
      this.keepUnwithdrawn(pass, this.allocator.list().filter((a) => a.active && !desired.has(a.hostname) && mayBe.has(a.hostname)).map((a) => a.hostname))
      return
    }
    this.warnNamesGone(pass, published)
    const keep = published.filter((r) => pass.addressOf.get(r.hostname) === r.address)
    if (keep.length === published.length) return
    try {
      if ((await this.names.publish({ records: keep })).changed) pass.report.namesChanged = true
    } catch (e) {
      const left = published.filter((r) => !desired.has(r.hostname)).map((r) => r.hostname)
      this.keepUnwithdrawn(pass, left)
      // step 6 tries once more in this pass (a stop's last word says what is left after it)
      const later = pass.teardown ? 'trying once more' : 'their addresses go to no other endpoint until they are; ngrokd tries again on every reconcile'
      this.logger.error({ err: e, hostnames: left }, `cannot unpublish the names of removed endpoints (${left.length}), ${later}: ${formatError(e)}`)
    }
  }

  private keepUnwithdrawn(pass: Pass, hostnames: string[]): void {
    if (hostnames.length === 0) return
    pass.namesNotWithdrawn = new Set(hostnames)
    pass.report.namesNotWithdrawn = hostnames
  }

  /**
   * Names the last pass published, still wanted at the same address, that the resolver no longer has (the hosts
   * block edited away): said at warn; step 6 publishes them again. A name not put back is not in place, so it
   * is not said again until it has been. When it happens again and again (another program rewrites the file without
   * the block), the third time says so, and the rest of the episode is at debug.
   */
  private warnNamesGone(pass: Pass, published: readonly NameRecord[]): void {
    const there = new Set(published.map((r) => `${r.hostname} ${r.address}`))
    const gone = [...this.placedNames].filter(([hostname, address]) => pass.addressOf.get(hostname) === address && !there.has(`${hostname} ${address}`)).map(([hostname]) => hostname)
    if (gone.length === 0) return
    const now = Date.now()
    const episode = this.namesGone && now - this.namesGone.lastAt < NAMES_GONE_QUIET_MS ? this.namesGone : { times: 0, since: now, lastAt: now }
    episode.times++
    episode.lastAt = now
    this.namesGone = episode
    const where = this.names.resolver === 'hosts-file' ? 'its hosts block' : `name resolver ${this.names.resolver}`
    const said = `${describeSome(gone, 'name')} ${gone.length === 1 ? 'was' : 'were'} removed from ${where} under the daemon: publishing ${gone.length === 1 ? 'it' : 'them'} again`
    const fields = { hostnames: gone.slice(0, ANNOUNCED_PER_PASS), times: episode.times }
    if (episode.times === 1) this.logger.warn(fields, said)
    else if (episode.times === NAMES_GONE_SAID_AGAIN_AT) {
      const minutes = Math.max(1, Math.round((now - episode.since) / 60_000))
      const who = this.names.resolver === 'hosts-file' ? 'another program rewrites the hosts file without ngrokd\'s block (a network manager, a container runtime, a cloud agent?)' : `something else changes name resolver ${this.names.resolver}`
      this.logger.warn(fields, `${said} (${episode.times} times within ${minutes} min): ${who}; each time they are published again, said at debug until ${NAMES_GONE_QUIET_MS / 60_000} minutes pass without it`)
    } else this.logger.debug(fields, said)
  }

  /**
   * 3. Stops listening where nothing is desired any more: network listeners first. The listeners close at once; a
   * normal pass leaves their connections draining ({@link drains}), teardown waits for every drain before going on.
   */
  private async stopStaleListeners(pass: Pass): Promise<void> {
    const wanted = (l: { address: string; port: number }): boolean => pass.wanted.has(listenerKey(l.address, l.port)) || pass.wantedNetwork.has(listenerKey(l.address, l.port))
    const stale = this.forwarder.listeners().filter((l) => !wanted(l))
    // a listener on an address the allocator never gave out is a network one (also after network mode was turned off)
    const allocated = new Set(this.allocator.list().map((e) => e.address))
    const isNetwork = (l: { address: string }): boolean => !allocated.has(l.address)
    // a network listener whose service is still served on the network (its port moved) is no removed endpoint's
    const servedOnNetwork = new Set([...pass.wantedNetwork.values()].map((st) => `${st.hostname}:${st.port}`))
    const moved = (l: ListenerStatus): boolean => isNetwork(l) && servedOnNetwork.has(`${l.target.hostname}:${l.target.port}`)
    for (const batch of [stale.filter(isNetwork), stale.filter((l) => !isNetwork(l))]) {
      // an unlisten begun holds no fd and costs a close: all at once, so that no drain waits for another's
      const begun = batch.map((l) => this.beginUnlisten(l.address, l.port, !pass.teardown && moved(l) ? (this.network?.movedDrainMs ?? pass.drainMs) : pass.drainMs))
      pass.report.listenersRemoved += batch.length
      if (pass.teardown) await Promise.all(begun)
      // one with nothing to drain is done within a turn of the event loop: its address goes in this pass (step 7)
      else if (begun.length > 0) await Promise.race([Promise.all(begun), new Promise((resolve) => setImmediate(resolve))])
    }
    // a second stop signal (forwarder.endDrains()) cuts these short
    if (pass.teardown) await Promise.all([...this.drains].map((d) => d.done))
  }

  /** Starts an unlisten and tracks its drain in {@link drains} until it ends; a failure is logged, never thrown. */
  private beginUnlisten(address: string, port: number, drainMs: number): Promise<void> {
    const key = listenerKey(address, port)
    const drain = {
      address,
      done: this.forwarder
        .unlisten({ address, port, drainMs })
        .catch((e: unknown) => this.logger.error({ err: e, listener: key }, `cannot stop listening on ${key}: ${formatError(e)}`))
        .finally(() => this.drains.delete(drain)),
    }
    this.drains.add(drain)
    return drain.done
  }

  /** 4. Adds the addresses wanted and missing. */
  private async addAddresses(pass: Pass): Promise<void> {
    pass.present = new Set(await this.iface.listAddresses())
    const toAdd = [...pass.wantedAddresses].filter((a) => !pass.present.has(a))
    // ours, there after the last pass, and gone now (`ip addr del`): said once; a repaired interface said it already
    const gone = toAdd.filter((a) => this.placedAddresses.has(a))
    if (gone.length > 0 && !pass.repaired) this.logger.warn({ addresses: gone.slice(0, ANNOUNCED_PER_PASS) }, `${describeSome(gone, 'address')} ${gone.length === 1 ? 'was' : 'were'} removed from the interface under the daemon: adding ${gone.length === 1 ? 'it' : 'them'} back`)
    const failed = await this.applyAddresses(toAdd, 'add')
    this.placedAddresses = new Set([...pass.wantedAddresses].filter((a) => !failed.has(a)))
    pass.report.addressesAdded = toAdd.length - failed.size
    for (const st of pass.wanted.values()) {
      const e = failed.get(st.address!)
      if (e) pass.fail(st, e)
    }
  }

  /** 5. Listens where desired (listen() is idempotent and updates a changed target). */
  private async listenLocal(pass: Pass): Promise<void> {
    const listening = new Set(this.forwarder.listeners().map((l) => listenerKey(l.address, l.port)))
    const toListen = [...pass.wanted.entries()].filter(([, st]) => st.state !== 'error')
    await eachLimited(toListen, LISTEN_CONCURRENCY, async ([key, st]) => {
      try {
        await this.forwarder.listen({ address: st.address!, port: st.port, target: { hostname: st.hostname, port: st.port, proto: st.proto } })
        if (!listening.has(key)) pass.report.listenersAdded++
      } catch (e) {
        pass.fail(st, e)
      }
    })
  }

  /**
   * 6. Publishes the names of the hostnames whose every service listens (removing the names of what
   * went away). A hostname with a port another program holds is withheld, its services in error.
   */
  private async publishNames(pass: Pass): Promise<void> {
    const byHost = new Map<string, ServiceState[]>()
    for (const st of pass.states.values()) {
      if (!st.address) continue
      const list = byHost.get(st.hostname) ?? []
      list.push(st)
      byHost.set(st.hostname, list)
    }
    const records: NameRecord[] = []
    for (const [hostname, services] of byHost) {
      const failed = services.find((s) => s.state === 'error')
      if (!failed) {
        records.push({ hostname, address: services[0]!.address! })
        continue
      }
      const why = `${hostname} is not published: ${failed.url} cannot be served (${failed.error?.message ?? 'failed'})`
      for (const s of services) {
        if (s.state !== 'error') pass.fail(s, new NgrokdError('NGROKD_ERR_NAME_WITHHELD', why, { hint: 'fix the failing port of this hostname (ngrokd list shows it); the next poll publishes the name' }))
      }
    }
    try {
      if ((await this.names.publish({ records })).changed) pass.report.namesChanged = true
      this.placedNames = new Map(records.map((r) => [r.hostname, r.address]))
      this.mayBePublished = new Set(this.placedNames.keys())
      // exactly these are published now: step 2's names that could not go are gone too
      pass.namesNotWithdrawn.clear()
      delete pass.report.namesNotWithdrawn
    } catch (e) {
      this.placedNames = new Map() // not known to be in place
      const published = new Set(records.map((r) => r.hostname))
      // a frozen resolver (its last write failed and was undone) keeps what it published: serve on, and say why of the
      // names it does not have as wanted (a new endpoint's, a moved address); all of them when it cannot be read
      const frozen = isNgrokdError(e, 'NGROKD_ERR_NAMES_FROZEN')
      const inPlace = frozen ? await this.names.list().then((rs) => new Set(rs.map((r) => `${r.hostname} ${r.address}`)), () => undefined) : undefined
      for (const st of pass.states.values()) {
        if (!published.has(st.hostname)) continue
        if (!frozen) pass.fail(st, e)
        else if (!inPlace?.has(`${st.hostname} ${st.address}`)) st.nameError = errorOf(e)
      }
      if (frozen) this.logger.debug({ err: e }, `names not updated: ${formatError(e)}`)
    }
  }

  /**
   * 7. Removes the addresses nobody wants, but for those of listeners still draining (a later pass removes them) and
   * those of names still published (step 2): off the interface, such a name would lead wherever the machine's routes
   * send its address, off the machine; on it, with no listener, a connection is refused here.
   */
  private async removeAddresses(pass: Pass): Promise<void> {
    const draining = new Set([...this.drains].map((d) => d.address))
    const stillNamed = new Set([...pass.namesNotWithdrawn].map((h) => this.allocator.lookup(h)).filter((a) => a !== undefined))
    const toRemove = [...pass.present].filter((a) => !pass.wantedAddresses.has(a) && !draining.has(a) && !stillNamed.has(a))
    const failed = await this.applyAddresses(toRemove, 'remove')
    pass.report.addressesRemoved = toRemove.length - failed.size
  }

  /** 8. Network listeners, after the local ones, for the services that serve. */
  private async exposeNetwork(pass: Pass): Promise<void> {
    const listening = new Set(this.forwarder.listeners().map((l) => listenerKey(l.address, l.port)))
    const toExpose = [...pass.wantedNetwork.entries()].filter(([, st]) => st.state !== 'error')
    await eachLimited(toExpose, LISTEN_CONCURRENCY, async ([key, st]) => {
      const n = st.network!
      try {
        await this.forwarder.listen({
          address: n.address,
          port: n.port,
          target: { hostname: st.hostname, port: st.port, proto: st.proto },
          ...(n.rewriteHost ? { rewriteHost: n.rewriteHost } : {}),
          remoteClients: true, // network mode: other machines are who it is for
        })
        if (!listening.has(key)) pass.report.listenersAdded++
      } catch (e) {
        pass.failNetwork(st, e)
      }
    })
  }

  /** 9. Releases hostnames and network ports no longer desired (their mapping is kept for when they come back). */
  private async releaseGone(pass: Pass): Promise<void> {
    // by the desired hostnames: one held back while its address cannot be saved is not gone
    const desired = new Set(pass.desired.map((s) => s.hostname))
    // a name still published keeps its address from other hostnames (step 2)
    const gone = this.allocator.list().filter((e) => e.active && !desired.has(e.hostname) && !pass.namesNotWithdrawn.has(e.hostname)).map((e) => e.hostname)
    // a release that cannot be saved is saved with the next batch (the allocator remembers): this pass's work stands
    if (gone.length > 0) await this.allocator.release({ hostnames: gone }).catch((e: unknown) => this.logger.warn({ err: e }, `released ${gone.length} hostnames whose endpoints went away, not saved yet (saved with the next change): ${formatError(e)}`))
    const network = this.network
    if (!network) return
    const keep = new Set([...pass.states.values()].map((st) => networkPortKey(st.hostname, st.port)))
    const goneKeys = network.ports.list().filter((e) => e.active && !keep.has(e.key)).map((e) => e.key)
    if (goneKeys.length > 0) {
      await network.ports.release({ keys: goneKeys }).catch((e: unknown) => this.logger.error({ err: e }, `network ports: ${formatError(e)}`))
    }
  }

  /**
   * Applies a batch; on failure retries one by one to find out which addresses failed. A failure is logged
   * (warn for the batch, error per address) once while it repeats on every poll; the repeats go to debug.
   */
  private async applyAddresses(addresses: string[], op: 'add' | 'remove'): Promise<Map<string, unknown>> {
    const failed = new Map<string, unknown>()
    if (addresses.length === 0) return failed
    try {
      await this.iface.applyAddresses(op === 'add' ? { add: addresses, remove: [] } : { add: [], remove: addresses })
      this.failuresLogged.delete(`${op} batch`)
      return failed
    } catch (batchError) {
      this.logOnce(`${op} batch`, 'warn', batchError, `batch ${op} of ${addresses.length} addresses failed; retrying one by one`)
    }
    for (const address of addresses) {
      try {
        if (op === 'add') await this.iface.addAddress({ address })
        else await this.iface.removeAddress({ address })
        this.failuresLogged.delete(`${op} ${address}`)
      } catch (e) {
        failed.set(address, e)
        this.logOnce(`${op} ${address}`, 'error', e, `${op} address ${address} failed: ${formatError(e)}`, { address })
      }
    }
    return failed
  }

  /** Logs `msg` at `level`, or at debug when the same failure of `key` was logged last time. */
  private logOnce(key: string, level: 'warn' | 'error', err: unknown, msg: string, fields: Record<string, unknown> = {}): void {
    const said = formatError(err)
    const repeat = this.failuresLogged.get(key) === said
    this.failuresLogged.set(key, said)
    this.logger[repeat ? 'debug' : level]({ err, ...fields }, msg)
  }
}

/** `3 addresses (10.0.0.2, 10.0.0.3, 10.0.0.4)`, `1 name (api.prod)`; past a few, `and N more`. */
function describeSome(items: readonly string[], noun: string): string {
  const shown = items.slice(0, 3).join(', ')
  const plural = noun.endsWith('s') ? `${noun}es` : `${noun}s`
  return `${items.length} ${items.length === 1 ? noun : plural} (${shown}${items.length > 3 ? `, and ${items.length - 3} more` : ''})`
}

async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!)
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}
