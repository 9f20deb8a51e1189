import { lookup } from 'node:dns/promises'
import net from 'node:net'
import { join } from 'node:path'
import {
  formatError,
  Lifecycle,
  loadWindowsNrptRegistry,
  NgrokdError,
  NRPT_RECORD_FILE,
  silentLogger,
  WindowsNrpt,
  type Check,
  type Logger,
  type NameRecord,
  type NameResolver,
  type NameResolverHealth,
  type NrptRegistry,
} from '@ngrokd/core/plugin'
import { DNS_PORT, type DnsResponder } from './dns-responder.js'
import { ResolvedLink } from './resolved-link.js'
import { SystemdResolved, systemBusAddress, RESOLVED_BUS_NAME } from './systemd-resolved.js'
import { NrptRoute, ResolverFilesRoute, type SuffixRoute } from './suffix-routes.js'

export interface AttachOptions {
  /** The daemon's interface; resolved keys links by `index`. */
  link: { name: string; index?: number }
  /** The hosts-file resolver to publish through when systemd-resolved cannot be used. */
  hostsFile: () => NameResolver
  platform?: NodeJS.Platform
  /** The system bus; default `DBUS_SYSTEM_BUS_ADDRESS`, else the standard socket. */
  busAddress?: string
  /** macOS: the folder of per-domain resolver files; default /etc/resolver (tests give another). */
  resolverDir?: string
  /** Windows: the registry calls of NRPT; default through koffi (tests give a fake). */
  nrpt?: () => Promise<NrptRegistry>
  /** `state_dir`: where Windows' NRPT rules are recorded (NRPT_RECORD_FILE; none, none recorded); named in each macOS resolver file (none, any daemon's). */
  stateDir?: string
}

/** Why the plugin serves no names while the daemon has not opened its resolver. */
export const NOT_IN_USE = 'the daemon does not publish through the dns plugin (names.resolver is not dns)'

/** What each OS's resolver is told through, for messages. */
const ROUTE_NAME: Partial<Record<NodeJS.Platform, string>> = { linux: 'systemd-resolved', darwin: '/etc/resolver', win32: 'NRPT' }

/** How the names reach the machine's resolver, once {@link DnsNameResolver.attach} decided. */
type Route =
  | { kind: 'unattached' }
  | { kind: 'system'; link: SuffixRoute }
  | { kind: 'hosts-file'; names: NameResolver; reason: string; via: string; hint?: string }

/**
 * Publishes the names as the answers of a {@link DnsResponder} (`names.resolver: dns`). The responder's
 * sockets belong to the plugin (they open once the interface has its address); this resolver
 * swaps the answer set, whole, on each `publish()`.
 *
 * Once the responder listens, {@link attach} makes the machine ask it: on Linux with
 * systemd-resolved on the system bus, the responder becomes the interface's per-link DNS server
 * with a routing domain per served suffix (updated by each `publish()` that changes the suffixes,
 * reverted by {@link detach}); on macOS one /etc/resolver/<suffix> file per suffix, on Windows one
 * NRPT rule per suffix (suffix-routes.ts), removed the same way. Where none can be used it says so
 * once and publishes through the hosts file as well, so the names still resolve.
 *
 * What is published lives in memory: after a restart nothing is answered until the daemon
 * publishes again (it does at start, from its last known endpoint list).
 */
export class DnsNameResolver implements NameResolver {
  readonly resolver = 'dns'
  readonly #lifecycle = new Lifecycle('dns name resolver')
  readonly #logger: Logger
  #route: Route = { kind: 'unattached' }
  /** Where the names go when the system route refuses them later (a refused SetLinkDomains): set by {@link attach}. */
  #fallback: Pick<AttachOptions, 'hostsFile' | 'platform'> | undefined
  /** The interface as last seen ({@link attach}, {@link relink}): resolved's link follows it. */
  #link: AttachOptions['link'] | undefined
  /** The updates of the system route, one after the other, in the background: publish() never waits on the OS's resolver. */
  #routing: Promise<void> = Promise.resolve()
  /** An update is queued and not begun: it reads the suffixes and the link when it begins, so one is enough. */
  #routeQueued = false
  /** Set by {@link detach}: an update not begun is dropped. */
  #detached = false

  constructor(
    private readonly responder: DnsResponder,
    { logger = silentLogger }: { logger?: Logger } = {},
  ) {
    this.#logger = logger
  }

  /**
   * Called once the responder listens: registers it with systemd-resolved for `link`, or — no
   * resolved, not Linux, no interface index, no address on port 53 — logs why once and publishes
   * through the hosts file from now on.
   */
  async attach({ link, hostsFile, platform = process.platform, busAddress = systemBusAddress(), resolverDir, nrpt, stateDir }: AttachOptions): Promise<void> {
    const route =
      platform === 'linux'
        ? await this.#resolvedRoute(link, busAddress)
        : platform === 'darwin'
          ? this.#resolverFilesRoute(resolverDir, stateDir)
          : platform === 'win32'
            ? await this.#nrptRoute(nrpt, stateDir)
            : `no way to point the resolver of ${platform} at the responder is known`
    this.#fallback = { hostsFile, platform }
    this.#link = link
    if (typeof route !== 'string') {
      const system: Route = { kind: 'system', link: route }
      this.#route = system
      await this.#updateRoute() // the first update is the start's: a refusal sends the names to the hosts file before it ends
      if (this.#route === system) await this.#clearHostsFile(hostsFile)
      return
    }
    // resolved runs, but takes no server off port 53: the fix is the responder's address, not resolved
    const portHint = platform === 'linux' && this.#port53Ipv4().length === 0 ? `let the responder answer on port ${DNS_PORT} of an IPv4 address (options.listen without a port, e.g. ["10.107.0.1"]), or set names.resolver: hosts-file to say the hosts file is meant` : undefined
    await this.useHostsFile(route, { hostsFile, platform }, portHint)
  }

  /**
   * Brings the system route up to date with the interface and the served suffixes, after the update under way (one
   * queued at most: it reads them when it begins). Resolves when that update is done; never rejects (a failure is
   * the route's to log).
   */
  #updateRoute(): Promise<void> {
    if (this.#routeQueued) return this.#routing
    this.#routeQueued = true
    this.#routing = this.#routing.then(async () => {
      this.#routeQueued = false
      const route = this.#route
      if (route.kind !== 'system' || this.#detached) return
      try {
        await this.#routeSuffixes(route)
      } catch (e) {
        this.#logger.warn({ err: e }, `dns: cannot update how the machine's resolver reaches the responder (tried again at the next reconcile): ${formatError(e)}`)
      }
    })
    return this.#routing
  }

  /**
   * resolved's link moved to the interface made again, then the served suffixes to the system route; one it refuses
   * for good (it reverted itself) sends the names to the hosts file.
   */
  async #routeSuffixes(route: Extract<Route, { kind: 'system' }>): Promise<void> {
    const link = this.#link
    if (route.link instanceof ResolvedLink && link?.index !== undefined && link.index !== route.link.link.index) await route.link.relink({ name: link.name, index: link.index })
    const refused = await route.link.setSuffixes(this.responder.routes)
    if (refused && this.#route === route) {
      await this.useHostsFile(refused, this.#fallback!, 'a routing domain comes from the suffixes option or an endpoint hostname: fix the one refused and restart ngrokd, or set names.resolver: hosts-file')
    }
  }

  /** Resolves once the updates of the system route asked for so far are done (what publish() leaves in the background). */
  routed(): Promise<void> {
    return this.#routing
  }

  /** True while the daemon uses this resolver (`names.resolver: dns`): it opened it, and publishes through it. */
  get inUse(): boolean {
    return this.#lifecycle.isOpen
  }

  /**
   * Publishes through the hosts file from now on, saying why once: what {@link attach} does when the system
   * resolver cannot be pointed at the responder, and the plugin's start when the responder cannot listen.
   */
  async useHostsFile(reason: string, { hostsFile, platform = process.platform }: Pick<AttachOptions, 'hostsFile' | 'platform'>, hint?: string): Promise<void> {
    const names = hostsFile()
    await names.open()
    await names.publish({ records: await this.list() })
    const via = ROUTE_NAME[platform] ?? 'the system resolver'
    this.#route = { kind: 'hosts-file', names, reason, via, ...(hint ? { hint } : {}) }
    const answering = this.responder.addresses.length > 0 ? `the responder still answers on ${this.#where()}` : 'the responder does not answer'
    this.#logger.warn(`dns: ${via} is not used: ${reason}; the names are published in the hosts file instead (${answering})`)
  }

  /** Linux: the responder as the link's DNS server in systemd-resolved, or why not. */
  async #resolvedRoute(link: AttachOptions['link'], busAddress: string): Promise<SuffixRoute | string> {
    const addresses = this.#port53Ipv4()
    if (link.index === undefined) return `the interface ${link.name} has no interface index`
    if (addresses.length === 0) return `resolved asks per-link DNS servers on port ${DNS_PORT} over IPv4, and the responder listens on ${this.#where()}`
    return this.#registerWithResolved({ name: link.name, index: link.index }, addresses, busAddress)
  }

  /** macOS: /etc/resolver files name any address and port, so the responder's first one. */
  #resolverFilesRoute(dir: string | undefined, stateDir: string | undefined): SuffixRoute | string {
    const first = this.responder.addresses[0]
    if (!first) return 'the responder listens nowhere'
    return new ResolverFilesRoute({ nameserver: first.host, port: first.port, ...(stateDir === undefined ? {} : { owner: stateDir }) }, this.#logger, dir)
  }

  /** Windows: NRPT rules carry no port, so the responder's IPv4 addresses on port 53. */
  async #nrptRoute(load: AttachOptions['nrpt'] = () => loadWindowsNrptRegistry(), stateDir?: string): Promise<SuffixRoute | string> {
    const servers = this.#port53Ipv4()
    if (servers.length === 0) return `NRPT rules name DNS servers on port ${DNS_PORT}, and the responder listens on ${this.#where()}`
    try {
      return new NrptRoute(new WindowsNrpt(await load(), stateDir === undefined ? undefined : join(stateDir, NRPT_RECORD_FILE)), servers, this.#logger)
    } catch (e) {
      return reasonOf(e)
    }
  }

  #port53Ipv4(): string[] {
    return this.responder.addresses.filter((a) => a.port === DNS_PORT && net.isIPv4(a.host)).map((a) => a.host)
  }

  /**
   * After a reconcile: when the daemon made its interface again (a new index), the systemd-resolved registration
   * moves to it, domains included, in the background ({@link routed}). Nothing to do on other routes (they do not
   * name the link) or the same index.
   */
  relink(link: AttachOptions['link']): void {
    this.#link = link
    const route = this.#route
    if (route.kind !== 'system' || !(route.link instanceof ResolvedLink) || link.index === undefined || link.index === route.link.link.index) return
    void this.#updateRoute()
  }

  /**
   * At stop: the OS forgets the route (resolved's `RevertLink`, the resolver files, the NRPT rules), after the update
   * under way; one not begun is dropped. resolved's is bounded: one that does not answer does not hold the stop.
   */
  async detach(): Promise<void> {
    this.#detached = true
    const route = this.#route
    if (route.kind !== 'system') return
    // resolved's link queues its revert behind the call under way itself; the files and rules are written at once
    if (!(route.link instanceof ResolvedLink)) await this.#routing
    await route.link.revert()
  }

  /** The registered link, or why there is none; a reason as text (never thrown: the fallback takes over). */
  async #registerWithResolved(link: { name: string; index: number }, addresses: string[], busAddress: string): Promise<ResolvedLink | string> {
    let resolved: SystemdResolved
    try {
      resolved = await SystemdResolved.connect(busAddress)
    } catch (e) {
      return reasonOf(e)
    }
    try {
      if (!(await resolved.isOnBus())) throw new NgrokdError('NGROKD_ERR_PLUGIN_FAILED', `${RESOLVED_BUS_NAME} is not on the system bus ${busAddress}`)
      return await ResolvedLink.register({ resolved, link, addresses, logger: this.#logger })
    } catch (e) {
      resolved.close()
      return reasonOf(e)
    }
  }

  /** Names an earlier run published in the hosts file while it fell back are removed: resolved answers them now. */
  async #clearHostsFile(hostsFile: () => NameResolver): Promise<void> {
    const names = hostsFile()
    try {
      await names.open()
      const left = await names.list()
      if (left.length > 0) {
        await names.publish({ records: [] })
        this.#logger.info(`dns: removed ${left.length} names an earlier run published in the hosts file (systemd-resolved answers them now)`)
      }
    } catch (e) {
      this.#logger.warn({ err: e }, `dns: cannot check the hosts file for names an earlier run published: ${formatError(e)}`)
    } finally {
      await names.close()
    }
  }

  /** Doctor: how the machine's resolver learns the names — resolved's link, the resolver files, NRPT, or the hosts file and why. */
  async #routeChecks(): Promise<Check[]> {
    const route = this.#route
    if (route.kind === 'system') return [await route.link.check()]
    if (route.kind === 'unattached') return [{ id: 'dns.resolved', status: 'skip', summary: 'not registered with systemd-resolved: the responder has not started' }]
    return [
      {
        id: 'dns.resolved',
        status: 'warn',
        summary: `${route.via} is not used: ${route.reason}; the names are published in the hosts file instead`,
        hint:
          route.hint ??
          (route.via === 'systemd-resolved'
            ? 'on Linux, run systemd-resolved (systemctl enable --now systemd-resolved) and restart ngrokd, or set names.resolver: hosts-file to say the hosts file is meant'
            : 'see the reason; or set names.resolver: hosts-file to say the hosts file is meant'),
      },
      ...(await route.names.diagnose()),
    ]
  }

  #where(): string {
    return this.responder.addresses.map((a) => `${a.host}:${a.port}`).join(', ') || 'no address'
  }

  async open({ signal }: { signal?: AbortSignal } = {}): Promise<void> {
    throwIfAborted(signal, 'open()')
    this.#lifecycle.open()
  }

  async publish({ records, signal }: { records: readonly NameRecord[]; signal?: AbortSignal }): Promise<{ changed: boolean }> {
    this.#lifecycle.assertOpen('publish()')
    throwIfAborted(signal, 'publish()')
    const next = new Map(records.map((r) => [r.hostname.toLowerCase(), r.address]))
    const current = this.responder.zone
    const changed = next.size !== current.size || [...next].some(([name, address]) => current.get(name) !== address)
    if (changed) this.responder.setZone(next)
    // answered from the responder's table at once; the OS's resolver is told of new suffixes in the background
    if (this.#route.kind === 'system') void this.#updateRoute()
    const route = this.#route
    if (route.kind === 'hosts-file') return { changed: (await route.names.publish({ records, signal })).changed || changed }
    return { changed }
  }

  health(): NameResolverHealth {
    return this.#route.kind === 'hosts-file' ? (this.#route.names.health?.() ?? { state: 'ok' }) : { state: 'ok' }
  }

  async list(): Promise<NameRecord[]> {
    return [...this.responder.zone].map(([hostname, address]) => ({ hostname, address }))
  }

  async close(): Promise<void> {
    this.#lifecycle.close()
    if (this.#route.kind === 'hosts-file') await this.#route.names.close()
  }

  /** Where it answers, and whether the machine's own resolver gives each published name its address. */
  async diagnose(): Promise<Check[]> {
    const where = this.responder.addresses
    if (!this.inUse) {
      return [
        {
          id: 'dns.names',
          status: 'warn',
          summary: `the dns plugin serves no names: ${NOT_IN_USE}; its responder${where.length > 0 ? ` on ${this.#where()}` : ''} answers no name (REFUSED)`,
          hint: 'set names.resolver: dns to publish the endpoint names by DNS, or remove dns from plugins:',
        },
      ]
    }
    const checks: Check[] = [
      where.length === 0
        ? { id: 'dns.responder', status: 'warn', summary: 'the DNS responder is not answering (the daemon is not running, or its listen failed: see its log)' }
        : { id: 'dns.responder', status: 'ok', summary: `DNS responder answering on ${where.map((a) => `${a.host}:${a.port}`).join(', ')}` },
    ]
    checks.push(...(await this.#routeChecks()))
    const records = await this.list()
    if (records.length === 0) return checks
    const wrong: string[] = []
    await Promise.all(
      records.map(async ({ hostname, address }) => {
        const got = await lookup(hostname, { family: 4 }).then((r) => r.address, (e: NodeJS.ErrnoException) => e.code ?? 'error')
        if (got !== address) wrong.push(`${hostname} → ${got} (published ${address})`)
      }),
    )
    checks.push(
      wrong.length === 0
        ? { id: 'dns.system-resolver', status: 'ok', summary: `all ${records.length} names resolve through the system resolver` }
        : {
            id: 'dns.system-resolver',
            status: 'warn',
            summary: `${wrong.length} of ${records.length} names do not resolve through the system resolver: ${wrong.slice(0, 5).join('; ')}`,
            hint: `point the system resolver at the responder for the endpoint suffixes (systemd-resolved per-link DNS, or /etc/resolver on macOS), or use names.resolver: hosts-file`,
          },
    )
    return checks
  }
}

function throwIfAborted(signal: AbortSignal | undefined, method: string): void {
  if (signal?.aborted) throw new NgrokdError('NGROKD_ERR_ABORTED', `dns name resolver: ${method} aborted`, { cause: signal.reason })
}

/** An error as a one-line reason (status and doctor show it on one line; formatError puts hint and causes on their own). */
function reasonOf(e: unknown): string {
  return formatError(e)
    .split('\n')
    .map((line) => line.trim())
    .join('; ')
}
