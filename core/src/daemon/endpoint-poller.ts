import { join } from 'node:path'
import type { Logger } from '../contracts/logger.js'
import { formatError, isNgrokdError } from '../errors/ngrokd-error.js'
import type { NamePolicy } from '../names/name-policy.js'
import { groupEndpoints, type DesiredService, type RejectedEndpoint } from '../protocol/endpoints.js'
import { JsonStateFile } from '../util/json-state-file.js'
import { writeStateFile } from '../util/state-dir-guard.js'
import type { PollStatus } from './control-api.js'
import type { ReconcileReport } from './reconciler.js'

/** The last endpoint list, served at once on the next start (before the API answers). */
export const ENDPOINT_CACHE_FILE = 'endpoints.json'

/**
 * API requests a minute the polls may spend: half the account's 120 (PROTOCOL.md, "Rate limit"), which every other
 * tool of the account shares. A poll that needs more pages than `poll_interval` allows at this rate waits longer.
 */
export const POLL_REQUESTS_PER_MINUTE = 60
/** New skipped endpoints logged one by one in a poll; the rest in one line. */
export const SKIPS_LOGGED_PER_POLL = 20

export interface EndpointPollerOptions {
  stateDir: string
  intervalMs: number
  logger: Logger
  /** Every page of the operator's bound endpoints, as the API sent them (malformed items are skipped here). */
  list: () => Promise<readonly unknown[]>
  /** Runs before each poll (certificate renewal); a failure is logged, the poll goes on. */
  beforePoll?: () => Promise<void>
  /** Which hostnames may be published; the others are skipped as unsafe and reported. Default: every name. */
  namePolicy?: NamePolicy
  /** Brings the machine to the grouped services. */
  reconcile: (services: DesiredService[]) => Promise<ReconcileReport>
  /** API requests sent so far (a counter that only grows): what a poll spent, for {@link POLL_REQUESTS_PER_MINUTE}. */
  requestsSent?: () => number
  signal: AbortSignal
}

/**
 * The endpoint poller: every `intervalMs`, lists the bound endpoints (every page), validates and
 * groups them (skipping and reporting bad ones, once each), reconciles, and keeps the last good
 * list in `state_dir` for the next start. An API outage leaves everything serving. One poll at a
 * time: a poll asked for while one runs joins it.
 */
export class EndpointPoller {
  private lastPoll?: PollStatus
  private timer?: NodeJS.Timeout
  /** When the last poll began (performance.now()): a new interval counts from there. */
  private lastStartedAt = 0
  private polling?: Promise<PollStatus | undefined>
  /** The skipped endpoints of the last poll, each logged when it first appeared: an endpoint gone from the API is forgotten. */
  private rejectedSeen = new Set<string>()
  /** Polls failed since the last success: a failure is logged once, not on every poll of an outage. */
  private failedInARow = 0
  /** The last failure to save the endpoint list (its code); undefined after a save that worked. */
  /** The endpoint list's last failed save (its kind is its code), until one succeeds: for status and doctor. */
  private saveFailure: { kind: string; at: string; message: string; code: string; hint?: string } | undefined
  /** The endpoint list last saved (or tried), to save again. */
  private lastSaved?: DesiredService[]
  /** The wait between polls when the last poll's requests need more than `intervalMs` (the API budget); else undefined. */
  private stretchedMs: number | undefined
  /** Set by stop(): nothing is scheduled after it. */
  private stopped = false
  readonly counts = { ok: 0, failed: 0, lastSuccessUnixSeconds: undefined as number | undefined }

  constructor(private readonly options: EndpointPollerOptions) {}

  get last(): PollStatus | undefined {
    return this.lastPoll
  }

  /** Polls now, then every interval until the signal aborts. */
  async start(): Promise<void> {
    await this.pollOnce()
    this.schedule()
  }

  /** Stops scheduling and waits for a poll in flight. */
  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    this.timer = undefined
    await this.polling?.catch(() => {})
  }

  /** One poll; never throws. Joins a poll in flight. */
  pollOnce(): Promise<PollStatus | undefined> {
    if (this.polling) return this.polling
    const run = this.poll().finally(() => {
      this.polling = undefined
    })
    this.polling = run
    return run
  }

  /**
   * Polls every `ms` from now on (a reload of `bound_endpoints.poll_interval`): the next poll is moved to `ms` after
   * the last one began (at once when that is past; it then joins a poll under way, which schedules the next itself).
   */
  setIntervalMs(ms: number): void {
    this.options.intervalMs = ms
    if (this.timer === undefined) return // not started, or stopped
    this.schedule(Math.max(0, this.lastStartedAt + this.effectiveIntervalMs - performance.now()))
  }

  /**
   * The endpoint list saved by the last good poll, if any. Its entries go through the rules the API's answers go
   * through (a hand edit or an older version may have left one no poll would pass): one that fails is skipped, said in
   * one warning naming the file and each entry, and the rest is served.
   */
  async cached(): Promise<DesiredService[] | undefined> {
    const path = join(this.options.stateDir, ENDPOINT_CACHE_FILE)
    let saved: unknown[]
    try {
      // one that does not parse is moved aside with a warning naming it, as the other state files are
      const parsed = await new JsonStateFile<{ services: unknown[] }>({
        path,
        what: 'the saved endpoint list',
        check: (v) => (Array.isArray((v as { services?: unknown } | null)?.services) ? undefined : 'it holds no list of services'),
        consequence: 'this start serves after its first poll',
        logger: this.options.logger,
      }).read()
      if (!parsed) return undefined
      saved = parsed.services
    } catch (e) {
      this.options.logger.warn({ err: e, path }, `${formatError(e)}; serving after the first poll`)
      return undefined
    }
    const grouped = groupEndpoints(saved.flatMap(endpointsOfSaved))
    if (grouped.rejected.length > 0) {
      const shown = grouped.rejected.slice(0, SKIPS_LOGGED_PER_POLL).map((r) => `${r.id || '(no id)'} (${JSON.stringify(r.url)}): ${r.reason}`)
      const more = grouped.rejected.length - shown.length
      this.options.logger.warn(
        { path, skipped: grouped.rejected },
        `${ENDPOINT_CACHE_FILE} (${path}): skipping ${grouped.rejected.length} saved endpoint${grouped.rejected.length === 1 ? '' : 's'} a poll would not serve, serving the rest until the first poll: ${shown.join('; ')}${more > 0 ? `; and ${more} more` : ''}`,
      )
    }
    // judged again: names.allow / names.deny may have changed since it was saved
    return this.judge(grouped.services, []).services
  }

  /** Saves the last endpoint list again (the state dir was removed under the daemon); false when there is none. */
  async saveAgain(): Promise<boolean> {
    return this.lastSaved !== undefined && (await this.save(this.lastSaved))
  }

  /** The wait between two polls' starts: `intervalMs`, or longer when the last poll spent more of the API budget. */
  get effectiveIntervalMs(): number {
    return Math.max(this.options.intervalMs, this.stretchedMs ?? 0)
  }

  /** Arms the one timer of the next poll (replacing one armed before). */
  private schedule(delayMs = this.effectiveIntervalMs): void {
    clearTimeout(this.timer)
    // a poll the timer began and stop() waited for must not arm the next one
    if (this.options.signal.aborted || this.stopped) return
    this.timer = setTimeout(() => {
      void this.pollOnce().finally(() => this.schedule())
    }, delayMs)
    this.timer.unref?.()
  }

  private async poll(): Promise<PollStatus | undefined> {
    const { logger, signal } = this.options
    if (signal.aborted) return undefined
    this.lastStartedAt = performance.now()
    const at = new Date().toISOString()
    const requestsBefore = this.options.requestsSent?.()
    try {
      await this.options.beforePoll?.().catch((e: unknown) => logger.warn({ err: e }, `before the poll: ${formatError(e)}`))
      const endpoints = await this.options.list()
      const grouped = groupEndpoints(endpoints)
      const { services, rejected } = this.judge(grouped.services, grouped.rejected)
      if (signal.aborted) return undefined
      const report = await this.options.reconcile(services)
      await this.save(services)
      const changed = report.addressesAdded + report.addressesRemoved + report.listenersAdded + report.listenersRemoved > 0 || report.namesChanged
      logger[changed ? 'info' : 'debug']({ report }, `reconciled ${services.length} services from ${endpoints.length} endpoints`)
      if (this.failedInARow > 0) logger.info(`the ngrok API answers again (after ${this.failedInARow} failed polls)`)
      this.failedInARow = 0
      this.lastPoll = { at, ok: true, endpoints: endpoints.length, services: services.length, rejected, report }
      this.counts.ok++
      this.counts.lastSuccessUnixSeconds = Math.floor(Date.now() / 1000)
    } catch (e) {
      // the daemon stops: a call its signal cut short (a Retry-After or back-off wait, a page under way) is no failure
      if (signal.aborted) {
        logger.debug(`poll stopped: ${formatError(e)}`)
        return undefined
      }
      const error = { code: isNgrokdError(e) ? e.code : undefined, message: (e as Error).message, ...(isNgrokdError(e) && e.hint ? { hint: e.hint } : {}) }
      // said once; while the same failure repeats on every poll, at debug
      const repeated = this.failedInARow > 0 && this.lastPoll?.error?.message === error.message
      this.failedInARow++
      logger[repeated ? 'debug' : 'warn']({ err: e }, `poll failed, keeping what is serving: ${formatError(e)}`)
      this.lastPoll = { at, ok: false, error }
      this.counts.failed++
    }
    if (requestsBefore !== undefined) this.spent(this.options.requestsSent!() - requestsBefore)
    return this.lastPoll
  }

  /**
   * A poll that sent `requests` (its pages, the retries, a renewal) spaces the next one so that polling spends at most
   * {@link POLL_REQUESTS_PER_MINUTE}; said when the wait grows past `poll_interval` and when it is back.
   */
  private spent(requests: number): void {
    const needed = Math.ceil((requests * 60_000) / POLL_REQUESTS_PER_MINUTE)
    const was = this.stretchedMs
    this.stretchedMs = needed > this.options.intervalMs ? needed : undefined
    const seconds = (ms: number) => `${+(ms / 1000).toFixed(1)} s`
    if (this.stretchedMs !== undefined && (was === undefined || this.stretchedMs > was * 1.25)) {
      this.options.logger.warn(
        { requests, intervalMs: this.options.intervalMs, waitMs: this.stretchedMs },
        `a poll took ${requests} API requests: polling every ${seconds(this.stretchedMs)} instead of every ${seconds(this.options.intervalMs)} (bound_endpoints.poll_interval), to spend at most ${POLL_REQUESTS_PER_MINUTE} of the account's 120 API requests a minute`,
      )
    } else if (this.stretchedMs === undefined && was !== undefined) {
      this.options.logger.info(`polling every ${seconds(this.options.intervalMs)} again (bound_endpoints.poll_interval): a poll takes ${requests} API requests`)
    }
  }

  /**
   * Applies the name policy; logs each skipped endpoint once (with its code, if it has one), at most
   * {@link SKIPS_LOGGED_PER_POLL} of them a poll and then one line with how many more: an API that keeps sending
   * new bad endpoints must not flood the log (status lists them all).
   */
  private judge(grouped: DesiredService[], malformed: RejectedEndpoint[]): { services: DesiredService[]; rejected: RejectedEndpoint[] } {
    const judged = this.options.namePolicy?.filter(grouped) ?? { services: grouped, rejected: [] }
    const rejected = [...malformed, ...judged.rejected]
    const seenBefore = this.rejectedSeen
    this.rejectedSeen = new Set()
    let logged = 0
    let more = 0
    for (const r of rejected) {
      const seen = `${r.id} ${r.url} ${r.reason}`
      this.rejectedSeen.add(seen)
      if (seenBefore.has(seen)) continue
      if (logged++ >= SKIPS_LOGGED_PER_POLL) {
        more++
        continue
      }
      this.options.logger.warn({ endpoint: r.id, url: r.url, ...(r.code ? { code: r.code } : {}) }, `skipping endpoint ${r.id || '(no id)'} (${JSON.stringify(r.url)}): ${r.reason}`)
    }
    if (more > 0) {
      this.options.logger.warn({ skipped: more }, `skipping ${more} more new endpoint${more === 1 ? '' : 's'} of this poll, not logged one by one: \`ngrokd status\` lists every skipped endpoint with its reason`)
    }
    return { services: judged.services, rejected }
  }

  /**
   * Saves the list for the next start to serve at once. A failure does not fail the poll (what it reconciled
   * serves); it is logged once while it repeats, and the next start polls before it serves. True when it was written.
   */
  private async save(services: DesiredService[]): Promise<boolean> {
    const path = join(this.options.stateDir, ENDPOINT_CACHE_FILE)
    this.lastSaved = services
    try {
      await writeStateFile(path, JSON.stringify({ savedAt: new Date().toISOString(), services }))
      if (this.saveFailure) this.options.logger.info({ path }, `the endpoint list is saved to ${path} again`)
      this.saveFailure = undefined
      return true
    } catch (e) {
      // the same failure by its code: its message names a temp file of its own each time
      const kind = String((e as { code?: unknown }).code ?? formatError(e))
      const message = `cannot save the endpoint list for the next start to ${path} (serving goes on; the next start serves the list saved before, if any, until its first poll): ${formatError(e)}`
      this.options.logger[this.saveFailure?.kind === kind ? 'debug' : 'warn']({ err: e, path }, message)
      const hint = isNgrokdError(e) ? e.hint : undefined
      this.saveFailure = { kind, at: new Date().toISOString(), message, code: isNgrokdError(e) ? e.code : 'NGROKD_ERR_STATE', ...(hint ? { hint } : {}) }
      return false
    }
  }

  /** The endpoint list's last failed save, until one succeeds (`status.stateError`). */
  get saveError(): { at: string; message: string; code: string; hint?: string } | undefined {
    if (!this.saveFailure) return undefined
    const { kind: _, ...said } = this.saveFailure
    return said
  }
}

/**
 * The API endpoints a saved service stands for (one per id, with the service's url), for {@link groupEndpoints} to
 * validate and group again as it does the API's answer; an entry that is not a saved service is passed as it is, for
 * groupEndpoints to refuse as malformed.
 */
function endpointsOfSaved(entry: unknown): unknown[] {
  const { url, endpointIds } = (typeof entry === 'object' && entry !== null ? entry : {}) as Partial<DesiredService>
  if (!Array.isArray(endpointIds) || endpointIds.length === 0) return [entry]
  return endpointIds.map((id: unknown) => ({ id, url }))
}
