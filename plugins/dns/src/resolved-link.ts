import { formatError, silentLogger, type Check, type Logger } from '@ngrokd/core/plugin'
import type { SuffixRoute } from './suffix-routes.js'
import { linkDnsAddress, NO_SUCH_LINK, ResolvedRefusal, routingDomains, SystemdResolved, type LinkDnsAddress } from './systemd-resolved.js'

export interface ResolvedLinkOptions {
  resolved: SystemdResolved
  /** The daemon's interface: its name (for messages) and index (what resolved keys links by). */
  link: { name: string; index: number }
  /** The responder's addresses (IPv4, port 53). */
  addresses: readonly string[]
  logger?: Logger
}

/**
 * How long the stop waits for resolved to take the link back, a call under way first: far above a call's round trip.
 * A resolved that does not answer (stopped, hung) does not hold the stop: the interface goes right after, and resolved
 * drops the link with it.
 */
const REVERT_WAIT_MS = 2_000
/** How long doctor waits for resolved to say what it holds for the link: within doctor's 5 s for a plugin's checks. */
const CHECK_TIMEOUT_MS = 3_000

/**
 * The responder registered with systemd-resolved as the per-link DNS server of the daemon's
 * interface, with a routing-only domain (`~prod`) for each served suffix: resolved then sends
 * those names, and only those, to the responder — every program resolves them, no file edited.
 *
 * The link is not a default route (names outside the suffixes never reach the responder) and does
 * no DNSSEC validation (the zone is unsigned, and `.prod`-like suffixes may shadow signed public ones).
 *
 * ```ts
 * const link = await ResolvedLink.register({ resolved, link: { name: 'ngrokd0', index: 7 }, addresses: ['10.107.0.1'] })
 * await link.setSuffixes(new Set(['prod']))  // after a reconcile; a call only when the set changed
 * await link.revert()                        // at stop: resolved forgets everything set for the link
 * ```
 */
export class ResolvedLink implements SuffixRoute {
  /** The suffixes resolved has now: a failed update leaves the old ones, and the next update retries. */
  #sent: ReadonlySet<string> = new Set()
  /** The suffixes last asked for: what an update sends, and what doctor compares with. */
  #wanted: ReadonlySet<string> = new Set()
  /** The servers were just set (register, relink, reconnect): the next domain update need not check they are held. */
  #serversJustSet = true
  /** Why the last call failed (the bus, no answer), until one succeeds: logged once at warn while it repeats. */
  #failed: string | undefined
  /** When the call to resolved under way began (performance.now()); undefined when none is. */
  #callSince: number | undefined
  /** Why resolved refused the domains: the link was then reverted, and every later call is answered with this. */
  #refused: string | undefined
  /** Set by {@link revert}: no update begins after it. */
  #stopping = false
  /** The stop stopped waiting for resolved: the connection is closed, and nothing more is sent. */
  #abandoned = false
  /** Calls one after the other: an update never overtakes another, nor the revert. */
  #queue: Promise<void> = Promise.resolve()
  readonly #logger: Logger

  private constructor(
    private resolved: SystemdResolved,
    public link: { name: string; index: number },
    readonly addresses: readonly string[],
    logger: Logger,
  ) {
    this.#logger = logger
  }

  /** Sets the link's DNS servers, no default route, no DNSSEC; the domains come with {@link setSuffixes}. */
  static async register({ resolved, link, addresses, logger = silentLogger }: ResolvedLinkOptions): Promise<ResolvedLink> {
    await setServers(resolved, link.index, addresses)
    return new ResolvedLink(resolved, link, addresses, logger)
  }

  /**
   * The routing domains `~<suffix>`, sent only when the set differs from what resolved has (an update queued behind
   * one under way sends the set last asked for). Resolves to why resolved refused them (an error reply of its own,
   * such as InvalidArgs): the link is then reverted, as a refused call at {@link register} is, and the caller
   * publishes another way. A failure of the bus, or no answer, is logged (once while it repeats) and tried again at
   * the next call.
   */
  setSuffixes(suffixes: ReadonlySet<string>): Promise<string | undefined> {
    this.#wanted = new Set(suffixes)
    return this.#enqueue(async () => {
      if (this.#refused !== undefined || this.#stopping) return
      const next = this.#wanted
      try {
        await this.#reconnectIfClosed()
        if (sameSet(next, this.#sent)) return
        await this.#ensureServers()
        await this.resolved.setLinkDomains(this.link.index, routingDomains(next))
        this.#sent = next
        this.#answered()
        this.#logger.info(`systemd-resolved sends ${describeSuffixes(next)} to ${this.addresses.join(', ')} on ${this.link.name}`)
      } catch (e) {
        // a link deleted under the daemon is made again with a new ifindex (relink): tried again then, not refused
        if (e instanceof ResolvedRefusal && e.dbusName !== NO_SUCH_LINK) {
          this.#refused = `systemd-resolved refused the routing domains ${describeDomains(next)} of ${this.link.name} (${e.message}); the link was reverted`
          await this.resolved.revertLink(this.link.index).catch(() => undefined)
          this.resolved.close()
          return
        }
        this.#failedCall(`cannot set the routing domains of ${this.link.name} in systemd-resolved`, e)
      }
    }).then(() => this.#refused)
  }

  /**
   * `RevertLink`: resolved drops the link's servers and domains; the bus connection is closed. It comes after a call
   * under way, and waits {@link REVERT_WAIT_MS} at most: a resolved that does not answer is left, said once.
   */
  async revert(): Promise<void> {
    this.#stopping = true
    const reverted = this.#enqueue(async () => {
      if (this.#refused !== undefined || this.#abandoned) return // reverted when refused; given up
      try {
        await this.#reconnectIfClosed()
        await this.resolved.revertLink(this.link.index, { timeoutMs: REVERT_WAIT_MS })
        this.#logger.info(`systemd-resolved no longer sends names to ${this.link.name}`)
      } catch (e) {
        this.#logger.warn({ err: e }, `dns: cannot revert ${this.link.name} in systemd-resolved: ${formatError(e)}`)
      } finally {
        this.resolved.close()
      }
    })
    if (await settlesWithin(reverted, REVERT_WAIT_MS)) return
    this.#abandoned = true
    this.resolved.close()
    this.#logger.warn(`dns: systemd-resolved did not answer within ${REVERT_WAIT_MS / 1000} s at stop${this.#waiting()}: ${this.link.name} is not reverted there; resolved drops it with the interface`)
  }

  /**
   * The daemon made its interface again (deleted under it: a new ifindex): the responder is registered for the new
   * link and the domains are sent to it whole at the next {@link setSuffixes}. The old link is gone, and resolved with
   * it, so nothing is reverted there. A failure keeps the old link, and the next call tries again.
   */
  relink(link: { name: string; index: number }): Promise<void> {
    return this.#enqueue(async () => {
      if (link.index === this.link.index || this.#refused !== undefined || this.#stopping) return
      try {
        const resolved = this.resolved.connected ? this.resolved : await SystemdResolved.connect(this.resolved.address)
        if (resolved !== this.resolved) this.resolved = resolved
        await setServers(resolved, link.index, this.addresses)
        this.#answered()
        this.#logger.info(`dns: ${link.name} was made again (ifindex ${this.link.index} → ${link.index}): registered with systemd-resolved anew`)
        this.link = link
        this.#sent = new Set()
        this.#serversJustSet = true
      } catch (e) {
        this.#failedCall(`cannot register ${link.name} (ifindex ${link.index}, made again) with systemd-resolved`, e)
      }
    })
  }

  /**
   * The system bus went away (restarted): connect again and register the link anew — resolved
   * may have restarted with it — so the next domain update is sent whole.
   */
  async #reconnectIfClosed(): Promise<void> {
    if (this.resolved.connected) return
    const resolved = await SystemdResolved.connect(this.resolved.address)
    try {
      await setServers(resolved, this.link.index, this.addresses)
    } catch (e) {
      resolved.close()
      throw e
    }
    this.resolved = resolved
    this.#sent = new Set()
    this.#serversJustSet = true
    this.#logger.info(`dns: connected to the system bus ${resolved.address} again; ${this.link.name} registered with systemd-resolved anew`)
  }

  /**
   * Before domains are sent: resolved still holds the link's DNS servers, else — it forgot the link (`resolvectl revert
   * ngrokd0`, a restart of resolved) — they are set again, default route and DNSSEC with them, so that the domains do
   * not go to a link without a server. Read back (GetLink and the link's DNS) only when domains are sent, never at a
   * poll that changes nothing; a resolved that cannot say (no GetLink) is taken to hold them.
   */
  async #ensureServers(): Promise<void> {
    if (this.#serversJustSet) {
      this.#serversJustSet = false
      return
    }
    let held: string[]
    try {
      held = (await this.resolved.linkState(this.link.index)).dns
    } catch (e) {
      if (e instanceof ResolvedRefusal) return // its own answer (an older resolved, the link gone): the domains say the rest
      throw e
    }
    if (this.addresses.every((a) => held.includes(a))) return
    await setServers(this.resolved, this.link.index, this.addresses)
    this.#sent = new Set()
    this.#logger.info(`dns: systemd-resolved no longer had ${this.link.name} registered (resolvectl revert, or resolved restarted): registered it anew`)
  }

  /** A call that failed for a reason that may pass: said at warn once, then at debug while the same reason repeats. */
  #failedCall(what: string, e: unknown): void {
    const reason = formatError(e)
    const again = reason === this.#failed || this.#abandoned // (the stop gave up on resolved: the call it cut is no news)
    this.#failed = reason
    this.#logger[again ? 'debug' : 'warn']({ err: e }, `dns: ${what} (tried again at the next reconcile): ${reason}`)
  }

  /** resolved took a call: a failure said before is over. */
  #answered(): void {
    if (this.#failed === undefined) return
    this.#failed = undefined
    this.#logger.info(`dns: systemd-resolved answers again; ${this.link.name} is up to date there`)
  }

  /** For messages: the call under way and how long it has waited, and the last failure. */
  #waiting(): string {
    const since = this.#callSince === undefined ? '' : `; a call to it has waited ${Math.round((performance.now() - this.#callSince) / 1000)} s for its answer`
    return `${since}${this.#failed !== undefined ? `; the last update failed: ${this.#failed}` : ''}`
  }

  /** Doctor: whether resolved holds the link's DNS servers and routing domains as registered. */
  async check(): Promise<Check> {
    const id = 'dns.resolved'
    const where = `${this.link.name} (ifindex ${this.link.index})`
    try {
      const state = await this.resolved.linkState(this.link.index, { timeoutMs: CHECK_TIMEOUT_MS })
      const missingServers = this.addresses.filter((a) => !state.dns.includes(a))
      const routing = new Set(state.domains.filter((d) => d.routingOnly).map((d) => d.domain))
      // what was asked for last, not what went through: a failed update shows here until one succeeds
      const missingDomains = [...this.#wanted].filter((s) => !routing.has(s))
      if (missingServers.length === 0 && missingDomains.length === 0) {
        return { id, status: 'ok', summary: `systemd-resolved has ${where} registered: ${describeSuffixes(this.#wanted)} go to ${this.addresses.join(', ')}` }
      }
      const lacks = [missingServers.length > 0 && `DNS server ${missingServers.join(', ')}`, missingDomains.length > 0 && `routing domains ${missingDomains.map((s) => `~${s}`).join(' ')}`].filter(Boolean)
      const waiting = this.#waiting()
      return {
        id,
        status: 'warn',
        summary: `systemd-resolved does not have ${where} registered as ngrokd set it: it lacks ${lacks.join(' and ')} (it has DNS ${state.dns.join(', ') || 'none'}, domains ${state.domains.map((d) => (d.routingOnly ? `~${d.domain}` : d.domain)).join(' ') || 'none'})${waiting}`,
        hint: waiting ? 'the update is tried again at the next reconcile; see the daemon log' : `compare with resolvectl status ${this.link.name}; restarting ngrokd registers the link again`,
      }
    } catch (e) {
      return {
        id,
        status: 'warn',
        summary: `cannot read ${where} from systemd-resolved: ${formatError(e)}${this.#waiting()}; the responder answers, but the machine's resolver may not send it the names ${[...this.#wanted].sort().map((s) => `~${s}`).join(' ')}`,
        hint: 'check that systemd-resolved runs and answers (systemctl status systemd-resolved; resolvectl status); ngrokd tries again at every reconcile',
      }
    }
  }

  #enqueue(fn: () => Promise<void>): Promise<void> {
    this.#queue = this.#queue.then(async () => {
      this.#callSince = performance.now()
      try {
        await fn()
      } finally {
        this.#callSince = undefined
      }
    })
    return this.#queue
  }
}

/**
 * `RevertLink` of `ifindex` for `ngrokd cleanup`, the daemon gone: true when resolved held DNS servers or domains for
 * the link and took them back; false when it held none (a stop that reverted it, a daemon that never registered), when
 * there is no resolved to ask (no system bus, nobody owning org.freedesktop.resolve1), or it does not know the link;
 * throws what else resolved or the bus answered.
 */
export async function revertResolvedLink(ifindex: number, busAddress: string): Promise<boolean> {
  let resolved: SystemdResolved
  try {
    resolved = await SystemdResolved.connect(busAddress)
  } catch {
    return false // no system bus: no resolved holding anything
  }
  try {
    const held = await resolved.linkState(ifindex)
    if (held.dns.length === 0 && held.domains.length === 0) return false
    await resolved.revertLink(ifindex)
    return true
  } catch (e) {
    // resolved no longer knows the link; or the bus says nobody owns resolved's name (not running, not installed)
    if (e instanceof ResolvedRefusal ? e.dbusName === NO_SUCH_LINK : /\.(ServiceUnknown|NameHasNoOwner)\b/.test((e as Error).message)) return false
    throw e
  } finally {
    resolved.close()
  }
}

/** True when `work` settles within `ms`, false when it is still pending then. */
async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)))
  try {
    return await Promise.race([work.then(() => true, () => true), late])
  } finally {
    clearTimeout(timer)
  }
}

/** The link's DNS servers, no default route, no DNSSEC; half of it (an older resolved refusing a call) is taken back whole. */
async function setServers(resolved: SystemdResolved, ifindex: number, addresses: readonly string[]): Promise<void> {
  const servers = addresses.map(linkDnsAddress).filter((a): a is LinkDnsAddress => a !== undefined)
  try {
    await resolved.setLinkDns(ifindex, servers)
    await resolved.setLinkDefaultRoute(ifindex, false)
    await resolved.setLinkDnssec(ifindex, 'no')
  } catch (e) {
    await resolved.revertLink(ifindex).catch(() => undefined)
    throw e
  }
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((x) => b.has(x))
}

function describeDomains(suffixes: ReadonlySet<string>): string {
  return [...suffixes].sort().map((s) => `~${s}`).join(' ') || '(none)'
}

function describeSuffixes(suffixes: ReadonlySet<string>): string {
  return suffixes.size === 0 ? 'no names (none served)' : `names under ${[...suffixes].sort().map((s) => `~${s}`).join(' ')}`
}
