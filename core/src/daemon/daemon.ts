import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { DaemonConfig } from '../config/index.js'
import type { Logger } from '../contracts/logger.js'
import type { Forwarder, ListenerStatus } from '../contracts/forwarder.js'
import { setTimeout as delay } from 'node:timers/promises'
import { DEFAULT_INGRESS_ENDPOINT, NgrokApiClient, normalizeIngressEndpoint } from '../api/index.js'
import { Registration } from '../cert/index.js'
import { createForwarder, loadIngressTrust, type CreateForwarderOptions } from '../forward/index.js'
import { groupEndpoints, type DesiredService } from '../protocol/endpoints.js'
import { createDaemonScope, type DaemonScope } from '../di/container.js'
import { ControlServer } from '../control/control-server.js'
import { PrometheusServer, type MetricsSnapshot } from '../metrics/prometheus.js'
import { NgrokdError, formatError, isNgrokdError } from '../errors/ngrokd-error.js'
import { writeFileAtomic } from '../util/atomic-file.js'
import { CORE_VERSION, USER_AGENT } from '../version.js'
import { Reconciler, type ReconcileReport } from './reconciler.js'
import { NetworkPorts } from '../network/network-ports.js'
import { FORWARDER } from '../di/tokens.js'

export type DaemonPhase = 'starting' | 'waiting-for-api-key' | 'registering' | 'running' | 'stopping' | 'stopped'

export interface PollStatus {
  at: string
  ok: boolean
  endpoints?: number
  services?: number
  rejected?: Array<{ id: string; url: string; reason: string }>
  error?: { code?: string; message: string }
  report?: ReconcileReport
}

export interface DaemonOptions {
  config: DaemonConfig
  logger: Logger
  /** Used instead of the in-thread forwarder (the worker pool, tests). */
  forwarder?: Forwarder
  /** How long removed endpoints' open connections may finish. Default: `forwarder.drain_timeout`. */
  drainMs?: number
}

const API_KEY_FILE = 'api-key'
const ENDPOINT_CACHE_FILE = 'endpoints.json'
/** Registration retry backoff: doubles from 1 s up to one poll interval. */
const REGISTER_BACKOFF_START_MS = 1_000

/**
 * The daemon: control socket, drivers, registration, then a poll → reconcile loop. The control plane
 * lives on this thread; an API outage never tears anything down.
 */
export class Daemon {
  phase: DaemonPhase = 'starting'
  private readonly startedAt = Date.now()
  private scope?: DaemonScope
  private reconciler?: Reconciler
  /** Network mode (net.network.listen): the stable ports, open while the daemon runs. */
  private networkPorts?: NetworkPorts
  private control?: ControlServer
  private registration?: Registration
  private api?: NgrokApiClient
  private operatorId?: string
  /** Trust anchors of the ingress, for status. */
  private ingressTrustSummary?: string
  /** The API named no ingress and the default was announced (once). */
  private warnedDefaultIngress = false
  private lastPoll?: PollStatus
  private timer?: NodeJS.Timeout
  private polling?: Promise<unknown>
  private readonly stopped = new AbortController()
  private apiKeyWaiter?: (key: string) => void
  private readonly rejectedSeen = new Set<string>()
  private readonly polls = { ok: 0, failed: 0, lastSuccessUnixSeconds: undefined as number | undefined }
  private metricsServer?: PrometheusServer

  constructor(private readonly options: DaemonOptions) {}

  private get config(): DaemonConfig {
    return this.options.config
  }
  private get logger(): Logger {
    return this.options.logger
  }

  async start(): Promise<void> {
    const { config, logger } = this
    logger.info({ version: CORE_VERSION, pid: process.pid, stateDir: config.stateDir }, `ngrokd ${CORE_VERSION} starting`)
    await mkdir(config.stateDir, { recursive: true, mode: 0o700 })
    this.control = new ControlServer({ socketPath: config.control.socket, group: config.control.group, logger, routes: this.routes() })
    await this.control.start()
    if (config.metrics.prometheusListen) {
      this.metricsServer = new PrometheusServer(config.metrics.prometheusListen, () => this.metricsSnapshot(), logger)
      await this.metricsServer.start()
    }

    try {
      const trust = await loadIngressTrust({ caFile: config.ingress.caFile, caMode: config.ingress.caMode })
      this.ingressTrustSummary = trust.summary
      const ingress: CreateForwarderOptions['ingress'] = {
        credentials: () => {
          if (!this.registration) throw new NgrokdError('NGROKD_ERR_CERT', 'not registered with the ngrok API yet')
          return this.registration.credentials()
        },
        endpoint: () => this.ingressEndpoint(),
        ca: trust.ca,
        insecureSkipVerify: config.ingress.insecureSkipVerify,
        podIdentity: config.ingress.podIdentity,
        sessionResumption: config.ingress.sessionResumption,
        predial: config.ingress.predial,
      }
      // forwarder.workers 0 (or no fd hand-off on this OS): in-thread; else the worker pool
      const forwarder = this.options.forwarder ?? (await createForwarder({ logger, settings: config.forwarder, ingress }))
      this.scope = await createDaemonScope({ config, logger, forwarder })
      this.reconciler = this.scope.scope.resolve(Reconciler)
      logger.info(
        { driver: this.scope.driverName, interface: this.scope.interfaceInfo.name, kind: this.scope.interfaceInfo.kind, adopted: this.scope.interfaceInfo.adopted, subnet: this.scope.subnet },
        `interface ${this.scope.interfaceInfo.name} ready (${this.scope.interfaceInfo.kind}${this.scope.interfaceInfo.adopted ? ', adopted from an earlier run' : ''})`,
      )
      // --- network mode: every service also on net.network.listen, stable ports from start_port ---
      const { listen, startPort } = config.net.network
      if (listen) {
        const ports = new NetworkPorts({ stateDir: config.stateDir, logger })
        await ports.open({ startPort })
        this.networkPorts = ports
        this.reconciler.setNetworkMode({ listen, ports })
        logger.info({ listen, startPort }, `network mode: endpoints are also served on ${listen}, ports from ${startPort}`)
      }
      // --- end network mode ---

      // serve what was there before a restart or crash right away, API or not
      const cached = await this.readEndpointCache()
      if (cached) {
        const report = await this.reconciler.reconcile(cached)
        logger.info({ report }, `restored ${cached.length} services from the last known endpoint list`)
      }
    } catch (e) {
      await this.stop()
      throw e
    }
    void this.run()
  }

  /** Registration and the poll loop, in the background until stop(). */
  private async run(): Promise<void> {
    const signal = this.stopped.signal
    let backoff = REGISTER_BACKOFF_START_MS
    while (!signal.aborted && !this.registration) {
      const key = await this.apiKey()
      if (signal.aborted) return
      this.phase = 'registering'
      this.api = new NgrokApiClient({ baseUrl: this.config.api.url, apiKey: key, logger: this.logger, userAgent: USER_AGENT, timeoutMs: this.config.api.timeoutMs })
      const registration = new Registration({
        api: this.api,
        stateDir: this.config.stateDir,
        logger: this.logger,
        selectors: this.config.boundEndpoints.selectors,
        region: this.config.registration.region,
        deploymentName: this.config.registration.deploymentName,
        ...(this.config.registration.description ? { description: this.config.registration.description } : {}),
      })
      try {
        const info = await registration.ensure()
        this.registration = registration
        this.operatorId = info.operatorId
        this.logger.info({ operatorId: info.operatorId, ingress: this.ingressEndpoint(), certNotAfter: info.notAfter }, `registered as operator ${info.operatorId}`)
      } catch (e) {
        const badKey = isNgrokdError(e, 'NGROKD_ERR_API') && [401, 403].includes((e as { status?: number }).status ?? 0)
        this.logger.error({ err: e }, `registration failed: ${formatError(e)}`)
        if (badKey) {
          this.logger.error('the API key was refused: set a valid one with `ngrokd set-api-key`')
          this.apiKeyOverride = undefined
          this.phase = 'waiting-for-api-key'
          await this.waitForApiKey()
          continue
        }
        await delay(backoff, undefined, { signal }).catch(() => {}) // aborted: the loop ends
        backoff = Math.min(backoff * 2, this.config.boundEndpoints.pollIntervalMs)
      }
    }
    if (signal.aborted) return
    this.phase = 'running'
    await this.pollOnce()
    this.schedule()
  }

  private schedule(): void {
    if (this.stopped.signal.aborted) return
    this.timer = setTimeout(() => {
      void this.pollOnce().finally(() => this.schedule())
    }, this.config.boundEndpoints.pollIntervalMs)
    this.timer.unref?.()
  }

  /** One poll: list bound endpoints (every page), validate and group, reconcile. Never throws. */
  pollOnce(): Promise<PollStatus | undefined> {
    if (this.polling) return this.polling as Promise<PollStatus | undefined>
    const run = this.doPoll().finally(() => {
      this.polling = undefined
    })
    this.polling = run
    return run
  }

  private async doPoll(): Promise<PollStatus | undefined> {
    if (!this.api || !this.operatorId || !this.reconciler || this.stopped.signal.aborted) return undefined
    const at = new Date().toISOString()
    try {
      await this.renewCertificate()
      const endpoints = await this.api.listBoundEndpoints(this.operatorId)
      const { services, rejected } = groupEndpoints(endpoints)
      for (const r of rejected) {
        if (this.rejectedSeen.has(`${r.id} ${r.url}`)) continue
        this.rejectedSeen.add(`${r.id} ${r.url}`)
        this.logger.warn({ endpoint: r.id, url: r.url }, `skipping endpoint ${r.id} (${JSON.stringify(r.url)}): ${r.reason}`)
      }
      if (this.stopped.signal.aborted) return undefined
      const report = await this.reconciler.reconcile(services, { drainMs: this.options.drainMs ?? this.config.forwarder.drainTimeoutMs })
      await this.writeEndpointCache(services)
      const changed = report.addressesAdded + report.addressesRemoved + report.listenersAdded + report.listenersRemoved > 0 || report.namesChanged
      this.logger[changed ? 'info' : 'debug']({ report }, `reconciled ${services.length} services from ${endpoints.length} endpoints`)
      this.lastPoll = { at, ok: true, endpoints: endpoints.length, services: services.length, rejected, report }
      this.polls.ok++
      this.polls.lastSuccessUnixSeconds = Math.floor(Date.now() / 1000)
    } catch (e) {
      // an API outage leaves everything serving
      this.logger.warn({ err: e }, `poll failed, keeping what is serving: ${formatError(e)}`)
      this.lastPoll = { at, ok: false, error: { code: isNgrokdError(e) ? e.code : undefined, message: (e as Error).message } }
      this.polls.failed++
    }
    return this.lastPoll
  }

  /** Renews the client certificate when it nears expiry; a failure is logged, the old one stays in use. */
  private async renewCertificate(): Promise<void> {
    try {
      if (this.registration && (await this.registration.renewIfNeeded())) {
        this.logger.info({ notAfter: this.registration.info?.notAfter }, 'client certificate renewed; new connections use it')
      }
    } catch (e) {
      this.logger.warn({ err: e }, `certificate renewal failed, will retry at the next poll: ${formatError(e)}`)
    }
  }

  /** Drains and removes listeners, names and addresses, then closes everything. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.phase === 'stopped' || this.phase === 'stopping') return
    this.phase = 'stopping'
    this.stopped.abort()
    clearTimeout(this.timer)
    await this.polling?.catch(() => {})
    if (this.reconciler) {
      try {
        await this.reconciler.teardown({ drainMs: this.options.drainMs ?? this.config.forwarder.drainTimeoutMs })
      } catch (e) {
        this.logger.error({ err: e }, `cleanup failed: ${formatError(e)}`)
      }
    }
    await this.scope?.close()
    await this.networkPorts?.close() // network mode
    await this.metricsServer?.close()
    await this.control?.close()
    this.phase = 'stopped'
    this.logger.info('ngrokd stopped; listeners, names and addresses removed')
  }

  /**
   * Where connections go: `ingress.endpoint`, else the ingress of the latest registration reply (a
   * renewal may move us: a certificate works only at the ingress that issued it), else — the API
   * named none — the documented default, announced loudly once.
   */
  private ingressEndpoint(): string {
    const { endpoint, source } = this.ingressTarget()
    if (source === 'default' && !this.warnedDefaultIngress) {
      this.warnedDefaultIngress = true
      this.logger.warn(
        { operatorId: this.operatorId, ingress: endpoint },
        `the ngrok API named no binding ingress for operator ${this.operatorId}: dialling the documented default ${endpoint}; set ingress.endpoint if connections fail`,
      )
    }
    return endpoint
  }

  private ingressTarget(): { endpoint: string; source: 'config' | 'api' | 'default' } {
    if (this.config.ingress.endpoint) return { endpoint: normalizeIngressEndpoint(this.config.ingress.endpoint), source: 'config' }
    if (!this.registration) throw new NgrokdError('NGROKD_ERR_CERT', 'no binding ingress endpoint known yet')
    const fromApi = this.registration.info?.ingressEndpoint
    return fromApi ? { endpoint: fromApi, source: 'api' } : { endpoint: DEFAULT_INGRESS_ENDPOINT, source: 'default' }
  }

  // --- API key -----------------------------------------------------------------------------

  private apiKeyOverride?: string

  private async apiKey(): Promise<string> {
    const key = this.apiKeyOverride ?? this.config.api.key ?? (await readFile(join(this.config.stateDir, API_KEY_FILE), 'utf8').catch(() => ''))
    if (key.trim()) return key.trim()
    this.phase = 'waiting-for-api-key'
    this.logger.warn('no ngrok API key configured: waiting for one. Run `ngrokd set-api-key` (or set NGROK_API_KEY / api.key)')
    return this.waitForApiKey()
  }

  private waitForApiKey(): Promise<string> {
    return new Promise<string>((resolve) => {
      this.apiKeyWaiter = resolve
      this.stopped.signal.addEventListener('abort', () => resolve(''), { once: true })
    })
  }

  private async setApiKey(key: unknown): Promise<{ ok: true; saved: string }> {
    if (typeof key !== 'string' || !/^[A-Za-z0-9_\-]{8,512}$/.test(key.trim())) {
      throw new NgrokdError('NGROKD_ERR_API_KEY_MISSING', 'that does not look like an ngrok API key', { hint: 'copy the key from the ngrok dashboard (API Keys)' })
    }
    const path = join(this.config.stateDir, API_KEY_FILE)
    await writeFileAtomic(path, `${key.trim()}\n`, { mode: 0o600 })
    this.apiKeyOverride = key.trim()
    this.logger.info({ file: path }, 'API key saved')
    const waiter = this.apiKeyWaiter
    this.apiKeyWaiter = undefined
    waiter?.(key.trim())
    return { ok: true, saved: path }
  }

  // --- endpoint cache ------------------------------------------------------------------------

  private async readEndpointCache(): Promise<DesiredService[] | undefined> {
    try {
      const parsed = JSON.parse(await readFile(join(this.config.stateDir, ENDPOINT_CACHE_FILE), 'utf8')) as { services?: unknown }
      return Array.isArray(parsed.services) ? (parsed.services as DesiredService[]) : undefined
    } catch {
      return undefined
    }
  }

  private async writeEndpointCache(services: DesiredService[]): Promise<void> {
    await writeFileAtomic(join(this.config.stateDir, ENDPOINT_CACHE_FILE), JSON.stringify({ savedAt: new Date().toISOString(), services }), { mode: 0o600 })
  }

  // --- control API ---------------------------------------------------------------------------

  status(): Record<string, unknown> {
    const counts = this.reconciler?.counts() ?? { total: 0, serving: 0, error: 0 }
    return {
      version: CORE_VERSION,
      pid: process.pid,
      phase: this.phase,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      operatorId: this.operatorId,
      ...(this.registration || this.config.ingress.endpoint ? { ingressEndpoint: this.ingressTarget().endpoint, ingressEndpointSource: this.ingressTarget().source } : {}),
      ingressVerification: this.config.ingress.insecureSkipVerify ? 'DISABLED (ingress.insecure_skip_verify)' : 'verified',
      ingressTrust: this.ingressTrustSummary,
      driver: this.scope?.driverName,
      interface: this.scope?.interfaceInfo,
      subnet: this.scope?.subnet,
      pollIntervalMs: this.config.boundEndpoints.pollIntervalMs,
      lastPoll: this.lastPoll,
      services: counts,
      ...this.trafficTotals(),
      metrics: this.config.metrics.prometheusListen ? `http://${this.config.metrics.prometheusListen}/metrics` : undefined,
    }
  }

  /** Totals over every listener: bytes each way, connections, errors by code, handshake time. */
  private trafficTotals() {
    const listeners = this.listeners()
    return {
      openConnections: listeners.reduce((n, l) => n + l.openConnections, 0),
      traffic: this.trafficFrom(listeners),
    }
  }

  private trafficFrom(listeners: ListenerStatus[]) {
    const errors: Record<string, number> = {}
    let handshakes = 0
    let handshakeMs = 0
    for (const l of listeners) {
      for (const [code, n] of Object.entries(l.errors)) errors[code] = (errors[code] ?? 0) + n
      handshakes += l.handshake?.count ?? 0
      handshakeMs += l.handshake?.totalMs ?? 0
    }
    return {
      connections: listeners.reduce((n, l) => n + l.totalConnections, 0),
      refused: listeners.reduce((n, l) => n + (l.refused ?? 0), 0),
      bytesIn: listeners.reduce((n, l) => n + l.bytesIn, 0),
      bytesOut: listeners.reduce((n, l) => n + l.bytesOut, 0),
      errors,
      meanHandshakeMs: handshakes ? handshakeMs / handshakes : undefined,
    }
  }

  private listeners(): ListenerStatus[] {
    return this.scope?.scope.isRegistered(FORWARDER) ? this.scope.scope.resolve(FORWARDER).listeners() : []
  }

  private metricsSnapshot(): MetricsSnapshot {
    return {
      version: CORE_VERSION,
      listeners: this.listeners(),
      services: this.reconciler?.counts() ?? { total: 0, serving: 0, error: 0 },
      polls: { ...this.polls },
    }
  }

  private routes() {
    return {
      'GET /v1/status': () => this.status(),
      'GET /v1/endpoints': () => ({ services: this.reconciler?.services() ?? [] }),
      'GET /v1/metrics': () => this.metricsSnapshot(),
      'POST /v1/api-key': (body: unknown) => this.setApiKey((body as { key?: unknown } | undefined)?.key),
      'POST /v1/poll': async () => ({ poll: await this.pollOnce() }),
    } as const
  }
}
