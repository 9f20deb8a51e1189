import { setTimeout as delay } from 'node:timers/promises'
import type { DaemonConfig } from '../config/index.js'
import { sameDaemonFlags } from '../config/load-config.js'
import { silentLogger, type Logger } from '../contracts/logger.js'
import type { Check } from '../contracts/check.js'
import type { Forwarder, ListenerStatus } from '../contracts/forwarder.js'
import { NgrokApiClient, chooseIngressEndpoint, isNgrokApiError, splitIngressEndpoint, type ApiEndpoint, type IngressTarget } from '../api/index.js'
import { Registration, type RegistrationInfo } from '../registration/index.js'
// by file, not the forward/ barrel: that also loads the worker pool (tinypool) a 2-core machine never starts
import { createForwarder, type CreateForwarderOptions, type ForwarderMode } from '../forward/create-forwarder.js'
import { loadIngressTrust, type IngressTrust } from '../forward/ingress-trust.js'
import { IngressDialer } from '../forward/ingress-dialer.js'
import { openFilesIssue } from '../forward/connection-limits.js'
import { createDaemonScope, type DaemonScope } from '../di/container.js'
import { ControlServer } from '../control/control-server.js'
import { container, type InjectionToken } from '../di/tsyringe.js'
import type { Registry } from 'prom-client'
import { readFile } from 'node:fs/promises'
import { realpathSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { MetricsSnapshot } from '../metrics/daemon-metrics.js'
import { PluginHost, pluginSpecsOf, type PluginSpec } from '../plugin/plugin-host.js'
import type { PluginInterfaceInfo, ServingEntry } from '../plugin/define-plugin.js'
import { hostInSubnet, intToIpv4, parseSubnet } from '../util/ipv4.js'
import { NgrokdError, formatError, isNgrokdError } from '../errors/ngrokd-error.js'
import { CORE_VERSION, USER_AGENT } from '../version.js'
import { ALLOCATOR, FORWARDER, INTERFACE, NAME_RESOLVER } from '../di/tokens.js'
import type { NameResolverHealth } from '../contracts/name-resolver.js'
import { NetworkPorts } from '../network/network-ports.js'
import { ApiKeySource, refusedKeyHint } from './api-key-source.js'
import { checkApiKey } from './api-key-file.js'
import { askApiAboutKey } from './api-key-check.js'
import { controlRoutes, type DaemonPhase, type DaemonStatus, type PollStatus } from './control-api.js'
import { describeStatus, metricsSnapshot, type StatusSources } from './status.js'
import { EndpointPoller } from './endpoint-poller.js'
import { prepareStateDir } from './state-dir.js'
import { START_CHECKS } from './start-checks.js'
import { acceptStateDir, refuseStateDir } from '../util/state-dir-guard.js'
import { removeStaleTempFilesIn } from '../util/atomic-file.js'
import { InstanceLock, STATE_LOCK_FILE, type InstanceLockOptions, type LockHolder } from './instance-lock.js'
import { REINSTALL_WHY, UNIT_WRITABLE_KEYS, planReload, type ReloadResult } from './config-reload.js'
import { hostOf, machineProtectedHosts, NamePolicy } from '../names/name-policy.js'
import { assertTrustedHostsFile, hostsFileResolverFor } from '../names/platform-hosts-file.js'
import { Reconciler, type ReconcileReport } from './reconciler.js'
import type { DesiredService } from '../protocol/endpoints.js'
import { runsAsSystemdService } from '../util/systemd-service.js'

export type { DaemonPhase, PollStatus } from './control-api.js'

export interface DaemonOptions {
  config: DaemonConfig
  logger: Logger
  /** Used instead of the forwarder from `forwarder.*` (tests). */
  forwarder?: Forwarder
  /** How long removed endpoints' open connections may finish. Default: `forwarder.drain_timeout`. */
  drainMs?: number
  /** Where the per-interface lock goes (tests); see {@link InstanceLockOptions.runDir}. */
  lock?: Pick<InstanceLockOptions, 'runDir'>
  /**
   * Reads the configuration again, for `ngrokd reload` (`POST /v1/reload`), with the file it came from (a daemon
   * started on no file finds one a user wrote since); SIGHUP is handled by the caller.
   */
  loadConfig?: () => Promise<{ config: DaemonConfig; source?: string }>
  /** The configuration file read (for the start banner, `status`); a reload of another one found since replaces it. */
  configSource?: string
  /** Where `config.api.key` came from (`LoadedConfig.apiKeyOrigin`), for `status`. */
  apiKeyOrigin?: string
  /** Called after each reconcile, by the process that owns the daemon (`ngrokd run` gives memory back there). */
  afterReconcile?: (report: ReconcileReport) => void
  /**
   * Called once when only a restart of the process can repair what a reconcile found (the hosts file's own mount gone
   * with a replaced file), with the reason; `ngrokd run` under a service manager exits for it to be started again.
   */
  onRestartNeeded?: (reason: string) => void
}

/** Registration retry backoff: doubles from 1 s up to one poll interval; each wait is drawn from its upper half (jitter, so daemons that failed together do not retry together). */
const REGISTER_BACKOFF_START_MS = 1_000
/** How often a registration refused for its key (401/403) tries the configured or saved key again, short of a new one. */
const REFUSED_KEY_RETRY_MS = 5 * 60_000

/**
 * The daemon: the stages, each owning its state, and the control socket that shows them.
 *
 * - start: control socket (and metrics), drivers (the DI scope), the reconciler — which serves the
 *   last known endpoint list at once, API or not;
 * - registration ({@link Registration}): waits for an API key ({@link ApiKeySource}), registers with
 *   backoff, renews the certificate before each poll;
 * - the endpoint poller ({@link EndpointPoller}): poll → group → reconcile, every interval;
 * - status (`status.ts`): {@link describeStatus} assembles what each stage reports.
 *
 * An API outage never tears anything down; `stop()` removes everything the daemon put on the machine.
 */
export class Daemon {
  phase: DaemonPhase = 'starting'
  private readonly startedAt = Date.now()
  private readonly stopped = new AbortController()
  private scope?: DaemonScope
  private reconciler?: Reconciler
  /** Network mode (net.network.listen): the stable ports, open while the daemon runs. */
  private networkPorts?: NetworkPorts
  private control?: ControlServer
  private lock?: InstanceLock
  /** The Prometheus registry of the daemon's metrics and every plugin's, made when a plugin is configured. */
  private metrics?: Registry
  private plugins?: PluginHost
  /** Resolved once the interface is open: what plugins get from `ctx.interface()`. */
  private readonly interfaceReady = deferred<PluginInterfaceInfo>()
  /** The interface's own address once a plugin asked for it (kept on the interface by the reconciler). */
  private ownAddress?: string
  private readonly apiKeys: ApiKeySource
  private registration?: Registration
  /** After a restart, the saved registration, dialled with until `registration` is confirmed by the API. */
  private savedRegistration?: RegistrationInfo | undefined
  private poller?: EndpointPoller
  /** Trust anchors of the ingress, for status. */
  private ingressTrustSummary?: string
  /** The ingress trust the forwarder was made with (`IngressTrust.ca`): a reload compares the ca_file's certificates with it. */
  private ingressCa?: readonly string[]
  private forwarderMode?: ForwarderMode
  /** The API named no ingress and the default was announced (once). */
  private warnedDefaultIngress = false
  /** How the forwarder dials the ingress (undefined with a forwarder handed in): the start's ingress check dials the same. */
  private ingressOptions?: CreateForwarderOptions['ingress']
  /** The last ingress check (a TLS handshake after each registration, and before each poll while it fails), for status. */
  private ingressCheck?: DaemonStatus['ingressCheck']
  /** A check is under way: one at a time. */
  private ingressChecking = false
  /** Registered since the last check: the next reconcile makes one. */
  private ingressCheckDue = false
  /** The last ingress endpoint found not to be an address of our own subnet. */
  private ownAddressChecked: string | undefined
  private running?: Promise<void>
  /** start() finished: a stop after it is news, one during it is the undoing of a failed start. */
  private started = false
  /** start() under way. */
  private starting?: Promise<void> | undefined
  /** stop() under way or done. */
  private stopping?: Promise<void>
  /** What the stop could not remove (empty when it removed everything): the CLI exits 1 when there is any. */
  readonly leftBehind: string[] = []
  /** The API's last refusal or failure (registration or poll), cleared by the next success. */
  private lastApiError?: DaemonStatus['apiKey']['lastError']
  /** {@link DaemonOptions.onRestartNeeded} was called (once per daemon). */
  private restartAsked = false
  /** The registration's last failure to read or write its files in state_dir, cleared by the next registration. */
  private lastStateError?: DaemonStatus['stateError']
  /** The state dir's lock was found lost and said so; until it is held again, repeats are at debug. */
  private stateLockLost = false
  /** What was last said of why it is not held again: a failure that repeats on every poll is said once. */
  private stateDirSaid?: string
  /** What was last said of a control socket that could not be made again (said once while it repeats). */
  private controlSocketSaid?: string

  private current: DaemonConfig
  /** The keys the last reload found changed that take effect only at a restart (against the config the daemon started on). */
  private restartPending: string[] = []
  /** The configuration file this daemon runs on: the one read at start, or the one a reload read since. */
  private configSource: string | undefined

  constructor(private readonly options: DaemonOptions) {
    this.current = options.config
    this.configSource = options.configSource
    this.apiKeys = new ApiKeySource({
      configured: options.config.api.key,
      ...(options.apiKeyOrigin ? { configuredOrigin: options.apiKeyOrigin } : {}),
      stateDir: options.config.stateDir,
      logger: options.logger,
      signal: this.stopped.signal,
      setKeyCommand: `ngrokd set-api-key${sameDaemonFlags(options.config.instance, options.configSource)}`,
    })
  }

  private get config(): DaemonConfig {
    return this.current
  }
  private get logger(): Logger {
    return this.options.logger
  }
  private get drainMs(): number {
    return this.options.drainMs ?? this.config.forwarder.drainTimeoutMs
  }

  /**
   * Starts every stage. A stop asked for meanwhile (SIGTERM while a driver or plugin is slow to come up) waits for
   * the step under way, which then ends the start, and removes whatever it had made.
   */
  async start(): Promise<void> {
    const starting = this.startStages()
    this.starting = starting
    try {
      await starting
    } finally {
      this.starting = undefined
    }
  }

  /** Throws at a step boundary when a stop was asked for during the start. */
  private stopIfAsked(): void {
    if (this.stopped.signal.aborted) throw new NgrokdError('NGROKD_ERR_ABORTED', 'stopped while starting')
  }

  private async startStages(): Promise<void> {
    const { config, logger } = this
    logger.info({ version: CORE_VERSION, config: this.configSource ?? 'defaults', stateDir: config.stateDir }, `ngrokd ${CORE_VERSION} starting (${this.configSource ?? 'no config file: defaults and environment'})`)
    // a control.group that does not exist fails before anything is created (Windows resolves it to a SID when the pipe opens)
    await START_CHECKS['control.group'](config)
    await prepareStateDir(config.stateDir)
    await assertTrustedHostsFile(config)
    // one daemon per state dir, interface, hosts block and subnet: a second one is refused before it touches anything
    this.lock = await InstanceLock.acquireFor(config, { ...this.options.lock, subnet: config.net.subnet })
    for (const temp of await removeStaleTempFilesIn(config.stateDir)) logger.info({ path: temp }, `removed ${temp}, left by a killed ngrokd`)
    // plugins first: their control routes, name resolvers and hooks are part of what starts
    const root = container.createChildContainer()
    try {
      const specs = this.pluginSpecs()
      this.plugins =
        specs.length === 0
          ? PluginHost.none(logger)
          : await PluginHost.load(specs, {
              configDir: config.configDir,
              stateDir: config.stateDir,
              logger,
              scope: root,
              metrics: await this.metricsRegistry(),
              interfaceInfo: () => this.pluginInterface(),
              hostsFileResolver: () => hostsFileResolverFor(config, logger),
              signal: this.stopped.signal,
            })
      // the daemon's own routes last: a plugin's never replaces one (each lives under /v1/plugins/<its name>/ besides)
      this.control = new ControlServer({ socketPath: config.control.socket, group: config.control.group, logger, routes: { ...this.plugins.routes(), ...this.routes() } })
      await this.control.start()
    } catch (e) {
      await this.lock.release()
      throw e
    }
    try {
      this.stopIfAsked()
      this.scope = await createDaemonScope({ config, logger, forwarder: this.options.forwarder ?? (await this.createForwarder()), scope: root, plugins: this.plugins })
      this.stopIfAsked()
      this.reconciler = this.scope.scope.resolve(Reconciler)
      const info = this.scope.interfaceInfo
      logger.info(
        { driver: this.scope.driverName, interface: info.name, kind: info.kind, adopted: info.adopted, subnet: this.scope.subnet },
        `interface ${info.name} ready (${info.kind}${info.adopted ? ', adopted from an earlier run' : ''})`,
      )
      // the driver's index when it has one: /sys/class/net shows the netns sysfs was mounted in, not ours
      const index = info.index !== undefined ? { index: info.index } : await interfaceIndex(info.name)
      this.interfaceReady.resolve({ name: info.name, ...index, address: intToIpv4(parseSubnet(this.scope.subnet).network + 1) })
      await this.startNetworkMode()
      await this.plugins.start()
      this.stopIfAsked()
      this.poller = new EndpointPoller({
        stateDir: config.stateDir,
        // the running value: a reload while the start waited (a slow plugin) has applied its own
        intervalMs: this.current.boundEndpoints.pollIntervalMs,
        logger,
        signal: this.stopped.signal,
        list: () => this.listBoundEndpoints(),
        beforePoll: async () => {
          await this.keepStateDir()
          await this.keepControlSocket()
          await this.renewCertificate()
          // until it passes again; and one due while the listing fails, once restored services have their addresses
          if (this.ingressCheck?.ok === false || (this.ingressCheckDue && (this.reconciler?.counts().serving ?? 0) > 0)) {
            this.ingressCheckDue = false
            void this.checkIngress()
          }
        },
        reconcile: (services) => this.reconcile(services),
        requestsSent: () => this.api?.requestsSent ?? 0,
        namePolicy: await this.namePolicy(),
      })
      // serve what was there before a restart or crash right away, API or not, dialling with the saved
      // registration until the API has confirmed it; without a usable one (none, unreadable, expired) no connection
      // could be carried: the names wait for the registration and the first poll instead of failing every client
      this.savedRegistration = await Registration.readSaved({ stateDir: config.stateDir, logger }).catch(() => undefined)
      const cached = this.savedRegistration ? await this.poller.cached() : undefined
      if (cached) {
        const report = await this.reconcile(cached)
        logger.info({ report }, `restored ${cached.length} services from the last known endpoint list`)
      }
      logger.info(
        { driver: this.scope.driverName, interface: info.name, subnet: this.scope.subnet, services: cached?.length ?? 0 },
        `ngrokd ${CORE_VERSION} up: driver ${this.scope.driverName}, interface ${info.name}, subnet ${this.scope.subnet}, ` +
          (cached ? `${cached.length} services from the last known endpoint list` : this.savedRegistration ? 'endpoints after the first poll' : 'endpoints once registered (no usable saved registration) and polled'),
      )
    } catch (e) {
      this.starting = undefined
      // the start undoes itself; a stop asked for meanwhile waits for this start to end, then undoes it
      if (!this.stopping) await this.stop()
      throw e
    }
    this.started = true
    this.running = this.run()
  }

  /** One reconcile, then the plugins' afterReconcile hooks with what is served. */
  private async reconcile(services: DesiredService[]): Promise<ReconcileReport> {
    const report = await this.reconciler!.reconcile(services, { drainMs: this.drainMs })
    // after the reconcile: the interface has its addresses (a resolver asked with AI_ADDRCONFIG may need one)
    if (this.ingressCheckDue) {
      this.ingressCheckDue = false
      void this.checkIngress()
    }
    await this.plugins?.afterReconcile(this.serving())
    this.options.afterReconcile?.(report)
    const names = this.nameResolverHealth()
    if (names.state === 'frozen' && names.restartFixes && !this.restartAsked) {
      this.restartAsked = true
      this.options.onRestartNeeded?.(`${names.error.message}; ${names.error.hint ?? ''}`)
    }
    return report
  }

  /** Hostnames served now, with their ports: what plugins see after a reconcile. */
  private serving(): ServingEntry[] {
    const byHost = new Map<string, ServingEntry>()
    for (const s of this.reconciler?.services() ?? []) {
      if (s.state !== 'serving' || !s.address) continue
      const entry = byHost.get(s.hostname) ?? { hostname: s.hostname, address: s.address, ports: [] }
      entry.ports.push({ port: s.port, proto: s.proto })
      byHost.set(s.hostname, entry)
    }
    return [...byHost.values()]
  }

  /** The registry plugins read and add to: prom-client (~85 modules, ~50 ms of a start) loads only for it. */
  private async metricsRegistry(): Promise<Registry> {
    if (!this.metrics) {
      const [{ Registry }, { registerDaemonMetrics }] = await Promise.all([import('prom-client'), import('../metrics/daemon-metrics.js')])
      this.metrics = new Registry()
      registerDaemonMetrics(this.metrics, () => this.metricsNow())
    }
    return this.metrics
  }

  private pluginSpecs(): PluginSpec[] {
    return pluginSpecsOf(this.config)
  }

  /**
   * For `ctx.interface()`: waits for the interface, then keeps its own address on it. The index is the one it has
   * now: a `repair()` that made the interface again set the new one in the driver's InterfaceInfo.
   */
  private async pluginInterface(): Promise<PluginInterfaceInfo> {
    const info = await this.interfaceReady.promise
    if (this.ownAddress === undefined) {
      this.ownAddress = info.address
      this.reconciler!.keepAddresses([info.address])
      const iface = this.scope!.scope.resolve(INTERFACE)
      await iface.addAddress({ address: info.address })
    }
    const now = this.scope?.interfaceInfo.index
    return now !== undefined && now !== info.index ? { ...info, index: now } : info
  }

  /** The forwarder from `forwarder.*`, dialling the ingress with the registration's credentials. */
  private async createForwarder(): Promise<Forwarder> {
    const { config, logger } = this
    const trust = await loadIngressTrust({ caFile: config.ingress.caFile, caMode: config.ingress.caMode })
    this.ingressTrustSummary = trust.summary
    this.ingressCa = trust.ca
    const ingress: CreateForwarderOptions['ingress'] = {
      credentials: () => {
        if (this.registration) return this.registration.credentials()
        if (this.savedRegistration) return this.savedRegistration
        throw new NgrokdError('NGROKD_ERR_CERT', 'not registered with the ngrok API yet')
      },
      endpoint: () => this.ingressEndpoint(),
      ca: trust.ca,
      caBesideNodeRoots: trust.caBesideNodeRoots,
      insecureSkipVerify: config.ingress.insecureSkipVerify,
      podIdentity: config.ingress.podIdentity,
      sessionResumption: config.ingress.sessionResumption,
      predial: config.ingress.predial,
    }
    this.ingressOptions = ingress
    // forwarder.workers 0 (or no fd hand-off on this OS): in-thread; else the worker pool
    const forwarder = await createForwarder({ logger, settings: config.forwarder, ingress })
    this.forwarderMode = forwarder.mode
    const openFiles = openFilesIssue(config.forwarder.maxConnections)
    if (openFiles) logger.warn(`${openFiles.message}; ${openFiles.hint}`)
    return forwarder
  }

  /** Network mode: every service also on net.network.listen, stable ports from start_port. */
  private async startNetworkMode(): Promise<void> {
    const { listen, startPort } = this.config.net.network
    if (!listen) return
    const ports = new NetworkPorts({ stateDir: this.config.stateDir, logger: this.logger })
    await ports.open({ startPort })
    this.networkPorts = ports
    const idle = this.config.forwarder.idleTimeoutMs
    this.reconciler!.setNetworkMode({ listen, ports, ...(idle > 0 ? { movedDrainMs: idle } : {}) })
    this.logger.info({ listen, startPort }, `network mode: endpoints are also served on ${listen}, ports from ${startPort}`)
  }

  private api?: NgrokApiClient

  /** Registration (waiting for a key, retrying with backoff), then the poll loop, until stop(). */
  private async run(): Promise<void> {
    const signal = this.stopped.signal
    let backoff = REGISTER_BACKOFF_START_MS
    let lastSaid: string | undefined
    let saidRetrying: string | undefined
    const key = await this.apiKeys.get(() => (this.phase = 'waiting-for-api-key'))
    if (!key) return // stopped while waiting
    // one client for the daemon's life: a key handed over later (setApiKey) replaces its key in place
    this.api = new NgrokApiClient({
      baseUrl: this.config.api.url, apiKey: key, logger: this.logger, userAgent: USER_AGENT, timeoutMs: this.config.api.timeoutMs, signal,
      // status shows what the API says now (a 429 and its wait, a timeout), not an older error, while a retry waits
      onRetry: (e, waitMs) => {
        this.noteApiError(e, waitMs)
        // the first registration waits on it: said at once (once while it repeats), not after every retry ran out
        if (this.phase === 'registering' && e.message !== saidRetrying) {
          saidRetrying = e.message
          this.logger.warn({ err: e }, `registering: ${e.message} (${e.code}); trying again in ${Math.max(1, Math.round(waitMs / 1000))} s${e.hint ? `\n  hint: ${e.hint}` : ''}`)
        }
      },
    })
    while (!signal.aborted && !this.registration) {
      this.phase = 'registering'
      const registration = this.newRegistration(this.api)
      const replacementsBefore = this.api.keyReplacements
      try {
        const info = await registration.ensure()
        this.registration = registration
        this.savedRegistration = undefined
        this.lastApiError = undefined
        this.lastStateError = undefined
        this.logger.info({ operatorId: info.operatorId, ingress: this.announcedIngressTarget().endpoint, certNotAfter: info.notAfter }, `registered as operator ${info.operatorId}`)
        this.ingressCheckDue = true // after the next reconcile, in the background: serving does not wait for it
      } catch (e) {
        if (signal.aborted) return // a stop, not a failure
        // a file it cannot write (a full or read-only disk) is this machine's failure, not the API's
        if (isLocalStateError(e)) this.lastStateError = { at: new Date().toISOString(), message: e.message, code: e.code, ...(e.hint ? { hint: e.hint } : {}) }
        else this.noteApiError(e)
        // a failure that repeats while the API is down is said once, and again when it changes
        const said = formatError(e)
        const level = said === lastSaid ? 'debug' : 'error'
        this.logger[level]({ err: e }, `registration failed: ${said}`)
        lastSaid = said
        if (isNgrokdError(e, 'NGROKD_ERR_API') && [401, 403].includes((e as { status?: number }).status ?? 0)) {
          // refused with the key before the one just handed over (set-api-key during the call): try the new one at once
          if (this.api.keyReplacements !== replacementsBefore) continue
          this.logger[level](`the API key from ${this.apiKeys.source} was refused: ${refusedKeyHint(this.apiKeys.source, this.apiKeys.setKeyCommand)} (it is tried again every ${REFUSED_KEY_RETRY_MS / 60_000} minutes)`)
          this.phase = 'waiting-for-api-key'
          const next = await this.apiKeys.forgetAndWait(REFUSED_KEY_RETRY_MS)
          if (!next) return // stopped while waiting
          this.api.useApiKey(next)
          continue
        }
        await delay(backoff / 2 + (Math.random() * backoff) / 2, undefined, { signal }).catch(() => {}) // aborted: the loop ends
        backoff = Math.min(backoff * 2, this.config.boundEndpoints.pollIntervalMs)
      }
    }
    if (signal.aborted) return
    this.phase = 'running'
    await this.poller!.start()
  }

  /**
   * A key handed over the socket (`ngrokd set-api-key`) is first shown to the API: one it refuses
   * (401/403) is not saved and the caller hears so, instead of a success while every call fails.
   * When the API cannot be asked (down, unreachable), the key is saved and the reply says it is unverified.
   */
  private async setApiKey(key: unknown): Promise<{ ok: true; saved: string; unverified?: string }> {
    const checked = checkApiKey(key)
    // one attempt, bounded: the CLI waits for this answer and must hear it
    const unverified = await askApiAboutKey(checked, this.config.api, this.logger, this.stopped.signal).catch((e: unknown) =>
      Promise.reject(isNgrokdError(e) ? new NgrokdError(e.code, `${e.message}, and the daemon keeps the one it has`, { cause: e.cause, ...(e.hint ? { hint: e.hint } : {}) }) : e),
    )
    const saved = await this.apiKeys.set(checked)
    // the running daemon's calls (polls, renewals, a registration under way) use it from now on
    this.api?.useApiKey(checked)
    return { ...saved, ...(unverified ? { unverified } : {}) }
  }

  /**
   * The bound endpoints of our operator. A 404 means the operator was deleted at ngrok (the dashboard,
   * the API): register anew at once — a new operator and certificate — instead of failing every poll
   * until a restart.
   */
  private async listBoundEndpoints(): Promise<ApiEndpoint[]> {
    const registration = this.registration!
    const operatorId = registration.info!.operatorId
    try {
      const endpoints = await this.api!.listBoundEndpoints(operatorId)
      this.lastApiError = undefined
      return endpoints
    } catch (e) {
      this.noteApiError(e)
      if (!isNgrokApiError(e, 404)) throw e
      // said once, by the registration, which finds the same when it reads the operator back
      this.logger.debug({ operatorId }, `operator ${operatorId}: its endpoints answered 404`)
      const info = await registration.ensure()
      this.logger.info({ operatorId: info.operatorId, was: operatorId }, `registered as operator ${info.operatorId}`)
      this.ingressCheckDue = true // a new registration may name another ingress
      return this.api!.listBoundEndpoints(info.operatorId)
    }
  }

  /** Keeps the API's last error for `status`; `retryInMs` when the call is tried again after that wait. */
  private noteApiError(e: unknown, retryInMs?: number): void {
    const status = (e as { status?: unknown }).status
    const retry = retryInMs === undefined ? '' : `; trying again in ${Math.max(1, Math.round(retryInMs / 1000))} s`
    const hint = isNgrokdError(e) ? e.hint : undefined
    this.lastApiError = { at: new Date().toISOString(), message: `${formatError(e).split('\n')[0]!}${retry}`, ...(typeof status === 'number' ? { status } : {}), ...(hint ? { hint } : {}) }
  }

  private newRegistration(api: NgrokApiClient): Registration {
    const { config, logger } = this
    return new Registration({
      api,
      stateDir: config.stateDir,
      logger,
      selectors: config.boundEndpoints.selectors,
      region: config.registration.region,
      deploymentName: config.registration.deploymentName,
      ...(config.registration.description ? { description: config.registration.description } : {}),
    })
  }

  /** The control socket removed under the daemon is made again before each poll (said at warn; a failure once while it repeats). */
  private async keepControlSocket(): Promise<void> {
    try {
      const repaired = await this.control?.repair()
      if (repaired) this.logger.warn(repaired)
      this.controlSocketSaid = undefined
    } catch (e) {
      const said = formatError(e)
      this.logger[this.controlSocketSaid === said ? 'debug' : 'error']({ err: e }, `the control socket ${this.config.control.socket} was removed under the daemon and cannot be made again; trying at the next poll: ${said}`)
      this.controlSocketSaid = said
    }
  }

  /**
   * The state dir must stay while the daemon runs: its lock is what refuses a second daemon on it, and it holds what the
   * next start reuses (the registration, the addresses). Checked before each poll: a lock that is gone (the folder was
   * removed, or the file) is said at error level; the folder is made again as at the start (prepareStateDir: 0700, the
   * trust check), the lock taken again, and what the state dir held saved again from memory. A live ngrokd that took the
   * lock meanwhile keeps it, and is named.
   */
  private async keepStateDir(): Promise<void> {
    const lock = this.lock
    if (!lock) return
    let state: Awaited<ReturnType<InstanceLock['stateLock']>>
    try {
      state = await lock.stateLock()
    } catch (e) {
      // out of file descriptors or an I/O error: that tells nothing of the folder or its lock; checked again at the next poll
      this.logger.debug({ err: e }, `cannot read the state lock now: ${formatError(e)}`)
      return
    }
    if (state.held) {
      this.stateLockLost = false
      this.stateDirSaid = undefined
      acceptStateDir(this.config.stateDir)
      return
    }
    const { stateDir } = this.config
    let other = state.other
    if (!other) {
      const path = join(stateDir, STATE_LOCK_FILE)
      this.logger[this.stateLockLost ? 'debug' : 'error'](
        { stateDir, lock: path },
        `state_dir ${stateDir} lost this daemon's lock ${path} while it runs: the folder (or the lock) was removed. state_dir must not be removed while ngrokd runs: its lock refuses a second daemon on it, and it holds the registration and addresses the next start reuses. Making it again and saving what this daemon holds`,
      )
      this.stateLockLost = true
      try {
        await prepareStateDir(stateDir)
        other = await lock.retakeStateLock()
      } catch (e) {
        // another user's now: nothing of this daemon's is written there until it is its own again (saveStateAgain then)
        if (isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED')) refuseStateDir(stateDir, 'it was made again by another user while ngrokd ran')
        const said = `cannot make state_dir ${stateDir} again or take its lock, trying again at the next poll: ${formatError(e)}`
        this.logger[this.stateDirSaid === said ? 'debug' : 'error']({ err: e, stateDir }, said)
        this.stateDirSaid = said
        return
      }
      if (!other) {
        acceptStateDir(stateDir)
        await this.saveStateAgain()
        return
      }
    }
    this.sayStateLockTaken(other)
  }

  /** Another live ngrokd holds this daemon's state dir's lock: both write their state there now. Said once per holder. */
  private sayStateLockTaken(other: LockHolder): void {
    const { stateDir } = this.config
    const said = `another ngrokd (pid ${other.pid}, started ${other.startedAt}, control socket ${other.socket}, interface ${other.interface}) holds the lock of state_dir ${stateDir}, which this daemon (pid ${process.pid}) lost when the folder was removed under it: both write their registration and addresses there now`
    this.logger[this.stateDirSaid === said ? 'debug' : 'error']({ stateDir, holder: other }, `${said}; stop one of them (\`ngrokd status\` with each one's config shows it), then restart the other`)
    this.stateDirSaid = said
  }

  /** Writes again what the state dir held that this daemon has in memory; each failure is said, the rest still saved. */
  private async saveStateAgain(): Promise<void> {
    const allocator = this.registered(ALLOCATOR)
    const steps: Array<[string, () => Promise<boolean>]> = [
      ['the registration (client key and certificate, operator.json, machine-id)', async () => (await this.registration?.saveAgain()) ?? false],
      ['the API key saved by set-api-key', () => this.apiKeys.saveAgain()],
      ['the addresses (allocations.json)', async () => (allocator?.save ? (await allocator.save(), true) : false)],
      ['the network ports', async () => (this.networkPorts ? (await this.networkPorts.save(), true) : false)],
      ['the endpoint list', async () => (await this.poller?.saveAgain()) ?? false],
    ]
    const saved: string[] = []
    for (const [what, save] of steps) {
      try {
        if (await save()) saved.push(what)
      } catch (e) {
        this.logger.error({ err: e }, `state_dir ${this.config.stateDir}: cannot save ${what} again: ${formatError(e)}`)
      }
    }
    this.logger.warn({ stateDir: this.config.stateDir, saved }, `state_dir ${this.config.stateDir} made again with this daemon's lock${saved.length ? `; saved again: ${saved.join('; ')}` : ''}`)
  }

  /**
   * Renews the client certificate when it nears expiry, and tries again an update of the registration ngrok has not
   * taken; a failure is logged, the pair in use stays. A new operator (the old one was gone at ngrok) is said as one.
   */
  private async renewCertificate(): Promise<void> {
    const registration = this.registration
    if (!registration) return
    const before = registration.info
    try {
      if (!(await registration.renewIfNeeded())) return
    } catch (e) {
      if (this.stopped.signal.aborted) return // a stop, not a failure
      this.logger.warn({ err: e }, `renewing the client certificate or updating the registration failed, tried again later: ${formatError(e)}`)
      return
    }
    const after = registration.info!
    if (after.operatorId !== before?.operatorId) {
      this.logger.info({ operatorId: after.operatorId, was: before?.operatorId }, `registered as operator ${after.operatorId}`)
    } else {
      this.logger.info({ notAfter: after.notAfter }, 'new client certificate in use; new connections use it')
    }
    if (after.operatorId !== before?.operatorId || after.ingressEndpoint !== before?.ingressEndpoint) this.ingressCheckDue = true // another ingress, or another operator's
  }

  /** One poll now (joins one in flight); undefined before registration. */
  pollOnce(): Promise<PollStatus | undefined> {
    return this.registration && this.poller ? this.poller.pollOnce() : Promise.resolve(undefined)
  }

  /** Drains and removes listeners, names and addresses, then closes everything. Every call gets the one stop's promise. */
  stop(): Promise<void> {
    this.stopping ??= this.stopOnce()
    return this.stopping
  }

  private async stopOnce(): Promise<void> {
    if (this.phase === 'stopped' || this.phase === 'stopping') return // a stop() from inside this one's first step
    // a start that failed is undone quietly: the caller reports why it failed, last (a stop asked for during the
    // start is news: that start is still under way here)
    const startFailed = !this.started && this.starting === undefined
    this.phase = 'stopping'
    this.stopped.abort()
    await this.starting?.catch(() => {}) // ends at its next step, undoing nothing itself: the rest of stop() does
    await this.poller?.stop()
    await this.running?.catch(() => {})
    // a name still published keeps its address, and so the interface that holds it: removed, the name would lead
    // where the machine's routes send that address (off the machine); ngrokd cleanup removes the name, then it
    let keepInterface = false
    if (this.reconciler) {
      try {
        const left = (await this.reconciler.teardown({ drainMs: this.drainMs })).namesNotWithdrawn ?? []
        if (left.length > 0) {
          keepInterface = true
          this.leftBehind.push(`${left.length} published name${left.length === 1 ? '' : 's'} (${left.slice(0, 3).join(', ')}${left.length > 3 ? ', …' : ''}) with ${left.length === 1 ? 'its address' : 'their addresses'}`)
        }
      } catch (e) {
        this.logger.error({ err: e }, `cleanup failed: ${formatError(e)}`)
        this.leftBehind.push(`what the failed cleanup did not reach`)
        keepInterface = true
      }
    }
    await this.plugins?.stop()
    // what fails to close is said, and a stop that leaves the interface (a driver's close() that threw) says it left it
    await this.scope?.close({
      ...(keepInterface ? { removeInterface: false } : {}),
      onError: (what, e) => {
        const driver = what === 'interface' ? ` (driver ${this.scope?.driverName ?? this.config.net.driver})` : ''
        this.logger.error({ err: e }, `error while closing the ${what}${driver}: ${formatError(e)}`)
        if (what === 'interface' && !keepInterface && this.config.cleanup.removeInterfaceOnStop) this.leftBehind.push(`the interface ${this.config.net.interfaceName}${driver}`)
      },
    })
    await this.networkPorts?.close()
    await this.control?.close()
    await this.lock?.release()
    acceptStateDir(this.config.stateDir) // the process's rule ends with the daemon that made it
    this.phase = 'stopped'
    if (this.leftBehind.length > 0) {
      this.logger.error(`ngrokd stopped, leaving ${this.leftBehind.join(' and ')} behind (the error above says why): fix that, then run \`ngrokd cleanup\``)
    } else this.logger[startFailed ? 'debug' : 'info']('ngrokd stopped; listeners, names and addresses removed')
  }

  /** What the daemon's scope holds under `token`; undefined before it is made (or after the stop). */
  private registered<T>(token: InjectionToken<T>): T | undefined {
    return this.scope?.scope.isRegistered(token) ? this.scope.scope.resolve(token) : undefined
  }

  /** A stop under way closes the connections it is draining now, then goes on to remove names and addresses. */
  endDrains(): void {
    if (this.phase !== 'stopping') return
    this.registered(FORWARDER)?.endDrains?.()
  }

  /**
   * Takes a new configuration: the keys config-reload.ts lists as live apply at once, every other change is
   * reported as needing a restart (and the running values stay). Logged either way. A `plugins:` list that would
   * not load, or a changed `control.group`, `net.driver` or `names.resolver` the next start would stop on
   * (START_CHECKS), is refused as a file that does not load is: nothing of it is taken.
   */
  async reload(next: DaemonConfig, source?: string): Promise<ReloadResult> {
    await this.checkPlugins(next)
    const result = planReload(this.current, next)
    if (result.restartNeeded.includes('api.key') && next.api.key?.trim() && next.api.key.trim() === this.apiKeys.inUse) {
      // the key set-api-key handed over (or a start read), now written in the file too: nothing to restart for
      result.restartNeeded = result.restartNeeded.filter((k) => k !== 'api.key')
      this.current = { ...this.current, api: { ...this.current.api, key: next.api.key } }
    }
    await checkStartKeys(result.restartNeeded, next)
    if (result.restartNeeded.includes('api.key') && next.api.key?.trim()) {
      try {
        checkApiKey(next.api.key, 'api.key', this.apiKeys.setKeyCommand)
      } catch (e) {
        throw new NgrokdError('NGROKD_ERR_API_KEY_MALFORMED', `${(e as Error).message}; the daemon keeps the configuration it runs on`, { ...(isNgrokdError(e) && e.hint ? { hint: `${e.hint}; or fix api.key, then reload again` } : {}) })
      }
    }
    if (await this.caFileChanged(result.restartNeeded, next)) result.restartNeeded = [...result.restartNeeded, 'ingress.ca_file'].sort()
    this.restartPending = result.restartNeeded
    // a systemd service's unit lets it write only the paths it was installed with
    const reinstall = runsAsSystemdService() ? result.restartNeeded.filter((k) => UNIT_WRITABLE_KEYS.includes(k)) : []
    if (reinstall.length > 0) result.reinstallNeeded = reinstall
    if (result.applied.includes('log.level') && 'level' in this.logger) (this.logger as { level: string }).level = next.log.level
    if (result.applied.includes('bound_endpoints.poll_interval')) this.poller?.setIntervalMs(next.boundEndpoints.pollIntervalMs)
    this.current = { ...this.current, log: { ...this.current.log, level: next.log.level }, boundEndpoints: { ...this.current.boundEndpoints, pollIntervalMs: next.boundEndpoints.pollIntervalMs } }
    const applied = result.applied.length ? `applied ${result.applied.join(', ')}` : 'nothing to apply'
    const restart = result.restartNeeded.length ? `; needs a restart to take effect: ${result.restartNeeded.join(', ')}${reinstall.length ? ` (${reinstall.join(', ')} after \`ngrokd service install\` again: ${REINSTALL_WHY})` : ''}` : ''
    if (source !== undefined && source !== this.configSource) this.logger.info({ config: source }, `runs on ${source} now (it started on ${this.configSource ?? 'no config file'})`)
    this.configSource = source ?? this.configSource
    this.logger.info({ reload: result }, `configuration reloaded: ${applied}${restart}`)
    return result
  }

  /**
   * The same `ingress.ca_file` now holds other certificates than the forwarder trusts (it reads them once, at start):
   * the change needs a restart like a changed key. A file the next start would stop on refuses the reload.
   */
  private async caFileChanged(restartNeeded: readonly string[], next: DaemonConfig): Promise<boolean> {
    if (this.ingressCa === undefined || !next.ingress.caFile || restartNeeded.includes('ingress.ca_file') || restartNeeded.includes('ingress.ca_mode')) return false
    const now = (await startCheck('ingress.ca_file', next)) as IngressTrust
    return now.ca.join('\n') !== this.ingressCa.join('\n')
  }

  /** A reload reads the file this daemon runs on again, never another: `asked` (the caller's `--config`) must be it. */
  private refuseOtherConfig(asked: unknown): void {
    if (typeof asked !== 'string') return
    const real = (p: string) => {
      try {
        return realpathSync(p)
      } catch {
        return resolve(p)
      }
    }
    const runsOn = this.configSource
    if (runsOn !== undefined && real(asked) === real(runsOn)) return
    throw new NgrokdError('NGROKD_ERR_USAGE', `this daemon runs on ${runsOn ?? 'no config file (defaults and environment)'}, and a reload reads that again: ${asked} is not read, nothing changed`, {
      hint: `to run on ${asked}, restart the daemon with --config ${asked}; to reload, run reload with the daemon's own file (or without --config)`,
    })
  }

  /**
   * Resolves and checks the plugins `next` names as a start would (PluginHost.check: modules, core range, platform,
   * dependencies, options), registering nothing: a list the next start would stop on is the reload's error now.
   */
  private async checkPlugins(next: DaemonConfig): Promise<void> {
    const specs = pluginSpecsOf(next)
    if (specs.length === 0) return
    try {
      await PluginHost.check(specs, { configDir: next.configDir, signal: this.stopped.signal })
    } catch (e) {
      throw new NgrokdError(isNgrokdError(e) ? e.code : 'NGROKD_ERR_PLUGIN_INVALID', `plugins: would not load, so the daemon keeps the configuration it runs on: ${e instanceof Error ? e.message : String(e)}`, {
        cause: e,
        hint: `${isNgrokdError(e) && e.hint ? `${e.hint}; ` : ''}fix plugins: before the next start, which would stop on it`,
      })
    }
  }

  /** names.allow / names.deny, and never a name the machine needs: those of config and the ingress the API named. */
  private async namePolicy(): Promise<NamePolicy> {
    const machine = await machineProtectedHosts(this.config, this.logger)
    return new NamePolicy({
      allow: this.config.names.allow,
      deny: this.config.names.deny,
      protectedHosts: () => {
        const ingress = hostOf(this.registrationInfo?.ingressEndpoint)
        return ingress ? [...machine, [ingress, 'the binding ingress host (from the ngrok API)'] as const] : machine
      },
    })
  }

  // --- the ingress -------------------------------------------------------------------------

  /**
   * Where connections go: `ingress.endpoint`, else the ingress of the latest registration reply (a
   * renewal may move us: a certificate works only at the ingress that issued it), else — the API
   * named none — the documented default, announced loudly once.
   */
  private ingressEndpoint(): string {
    const { endpoint, source } = this.announcedIngressTarget()
    this.refuseOwnAddress(endpoint, source)
    return endpoint
  }

  /**
   * One TLS handshake with the ingress, as every connection makes it (no ConnRequest), after the first reconcile of each
   * registration and, while it fails, before each poll: a CA that does not verify it or an ingress out of reach is said at once, at
   * error, and shown by status until a check passes, instead of at the first user's connection. Never throws; a stop
   * aborts it; one at a time.
   */
  private async checkIngress(): Promise<void> {
    const options = this.ingressOptions
    if (!options || this.ingressChecking) return
    this.ingressChecking = true
    const dialer = new IngressDialer({ ...options, logger: silentLogger, sessionResumption: false, predial: 0, handshakeTimeoutMs: this.config.forwarder.handshakeTimeoutMs })
    const at = new Date().toISOString()
    const before = this.ingressCheck
    try {
      const probe = await dialer.probe(this.stopped.signal)
      this.ingressCheck = { at, ok: true }
      if (before?.ok === false) this.logger.info({ ingress: probe.ingress }, `the binding ingress ${probe.ingress} passes its check again (a TLS handshake)`)
      else this.logger.debug({ ingress: probe.ingress, protocol: probe.protocol, authorized: probe.authorized }, `binding ingress ${probe.ingress} answered the TLS handshake`)
    } catch (e) {
      if (this.stopped.signal.aborted) return
      const code = isNgrokdError(e) ? e.code : 'NGROKD_ERR_INGRESS_UNREACHABLE'
      const hint = isNgrokdError(e) ? e.hint : undefined
      const message = formatError(e).split('\n')[0]!
      this.ingressCheck = { at, ok: false, message, code, ...(hint ? { hint } : {}) }
      // said once while it repeats (it is checked again before each poll)
      this.logger[before?.message === message ? 'debug' : 'error']({ err: e }, `the binding ingress failed its check (a TLS handshake, as each connection makes): connections fail the same way while this lasts; checked again before each poll: ${formatError(e)}`)
    } finally {
      this.ingressChecking = false
      await dialer.close()
    }
  }

  /** {@link ingressTarget}, saying once when it is the documented default because the API named none. */
  private announcedIngressTarget(): IngressTarget {
    const target = this.ingressTarget()
    if (target.source === 'default' && !this.warnedDefaultIngress) {
      this.warnedDefaultIngress = true
      this.logger.warn(
        { operatorId: this.registrationInfo?.operatorId, ingress: target.endpoint },
        `the ngrok API named no binding ingress for operator ${this.registrationInfo?.operatorId}: dialling the documented default ${target.endpoint}; set ingress.endpoint if connections fail`,
      )
    }
    return target
  }

  /**
   * An ingress at an address of ngrokd's own subnet is one of its own listeners: each connection would be carried back
   * into the daemon, again and again (a broken or hostile API reply, a typo in ingress.endpoint). Refused per connection.
   */
  private refuseOwnAddress(endpoint: string, source: IngressTarget['source']): void {
    if (this.ownAddressChecked === endpoint) return
    const subnet = this.scope?.subnet ?? this.config.net.subnet
    let host: string
    try {
      host = splitIngressEndpoint(endpoint).host
    } catch {
      return // not host:port: the dialer says so, with its fix
    }
    if (hostInSubnet(host, subnet)) {
      throw new NgrokdError('NGROKD_ERR_INGRESS_UNREACHABLE', `binding ingress ${endpoint} is an address of ngrokd's own subnet ${subnet}: connecting to it would come back to this daemon`, {
        hint: source === 'config' ? 'set ingress.endpoint to ngrok\'s binding ingress (kubernetes-binding-ingress.ngrok.io:443), or give net.subnet a range apart from it' : `the ngrok API named it for this operator; set ingress.endpoint to ngrok's binding ingress, or give net.subnet a range apart from it`,
      })
    }
    this.ownAddressChecked = endpoint
  }

  private ingressTarget(): IngressTarget {
    const info = this.registrationInfo
    if (!this.config.ingress.endpoint && !info) throw new NgrokdError('NGROKD_ERR_CERT', 'no binding ingress endpoint known yet')
    return chooseIngressEndpoint(this.config.ingress.endpoint, info?.ingressEndpoint)
  }

  /** The confirmed registration, else (after a restart, before the API answered) the saved one. */
  private get registrationInfo(): RegistrationInfo | undefined {
    return this.registration?.info ?? this.savedRegistration
  }

  // --- status and the control API ------------------------------------------------------------

  status(): DaemonStatus {
    return describeStatus(this.statusSources())
  }

  /** What each stage reports, for the status stage. */
  private statusSources(): StatusSources {
    // the registration's own failure first, then the endpoint list's save
    const stateError = this.lastStateError ?? this.poller?.saveError
    return {
      phase: this.phase,
      startedAt: this.startedAt,
      config: { ...(this.configSource ? { file: this.configSource } : {}), restartPending: this.restartPending },
      operatorId: this.registrationInfo?.operatorId, // the saved one while the API has not answered yet: it is the one in use
      ...(this.registrationInfo || this.config.ingress.endpoint ? { ingress: this.ingressTarget() } : {}),
      insecureSkipVerify: this.config.ingress.insecureSkipVerify,
      ...(this.ingressCheck ? { ingressCheck: this.ingressCheck } : {}),
      apiKey: { source: this.apiKeys.source, ...(this.lastApiError ? { lastError: this.lastApiError } : {}) },
      ...(stateError ? { stateError } : {}),
      ...(this.registration?.updatePending ? { registrationUpdate: this.registration.updatePending } : {}),
      ingressTrust: this.ingressTrustSummary,
      driver: this.scope?.driverName,
      forwarder: this.forwarderMode,
      interface: this.scope?.interfaceInfo,
      subnet: this.scope?.subnet,
      names: this.nameResolverHealth(),
      plugins: this.plugins?.status() ?? [],
      pollIntervalMs: this.poller?.effectiveIntervalMs ?? this.config.boundEndpoints.pollIntervalMs,
      lastPoll: this.poller?.last,
      polls: this.poller?.counts ?? { ok: 0, failed: 0 },
      services: this.reconciler?.counts() ?? { total: 0, serving: 0, error: 0 },
      listeners: this.listeners(),
      unlistened: this.registered(FORWARDER)?.unlistened?.(),
      metricsUrl: this.prometheusUrl(),
    }
  }

  /** Where the prometheus plugin serves, if it is on and running (a listen that failed serves nothing: its status says why). */
  private prometheusUrl(): string | undefined {
    const spec = this.pluginSpecs().find((s) => typeof s !== 'string' && s.name === 'prometheus') as { options?: { listen?: unknown } } | undefined
    const listen = spec?.options?.listen
    const running = this.plugins?.status().find((p) => p.name === 'prometheus')?.state === 'running'
    return typeof listen === 'string' && running ? `http://${listen}/metrics` : undefined
  }

  private nameResolverHealth(): NameResolverHealth {
    return this.registered(NAME_RESOLVER)?.health?.() ?? { state: 'ok' }
  }

  private listeners(): ListenerStatus[] {
    return this.registered(FORWARDER)?.listeners() ?? []
  }

  private metricsNow(): MetricsSnapshot {
    return metricsSnapshot({
      listeners: this.listeners(),
      unlistened: this.registered(FORWARDER)?.unlistened?.(),
      services: this.reconciler?.counts() ?? { total: 0, serving: 0, error: 0 },
      polls: this.poller?.counts ?? { ok: 0, failed: 0 },
    })
  }

  private routes() {
    return controlRoutes({
      'GET /v1/status': () => this.status(),
      'GET /v1/endpoints': () => ({
        services: this.reconciler?.services() ?? [],
        skipped: this.poller?.last?.rejected ?? [],
        draining: this.registered(FORWARDER)?.unlistened?.()?.openConnections ?? 0,
      }),
      'GET /v1/metrics': () => this.metricsNow(),
      'POST /v1/api-key': (body) => this.setApiKey((body as { key?: unknown } | undefined)?.key),
      'POST /v1/poll': async () => ({ poll: await this.pollOnce() }),
      'POST /v1/reload': async (body) => {
        if (!this.options.loadConfig) throw new NgrokdError('NGROKD_ERR_CONTROL', 'this daemon has no configuration source to reload', { hint: 'restart it instead' })
        this.refuseOtherConfig((body as { config?: unknown } | undefined)?.config)
        const { config, source } = await this.options.loadConfig()
        return this.reload(config, source)
      },
      'GET /v1/plugins/checks': async () => ({ checks: (await this.plugins?.doctorChecks()) ?? [] }),
      'GET /v1/interface/checks': async () => {
        const iface = this.registered(INTERFACE)
        return { checks: await checksOf(iface, iface?.driver ?? '', iface?.driver ?? '') }
      },
      'GET /v1/names/checks': async () => {
        const names = this.registered(NAME_RESOLVER)
        return { checks: await checksOf(names, names?.resolver ?? '', `name resolver ${names?.resolver}`) }
      },
    })
  }
}

/** Runs the {@link START_CHECKS} of the `changed` keys on `next`; the first that fails refuses the reload, naming its key. */
async function checkStartKeys(changed: readonly string[], next: DaemonConfig): Promise<void> {
  for (const key of Object.keys(START_CHECKS) as (keyof typeof START_CHECKS)[]) {
    if (changed.includes(key)) await startCheck(key, next)
  }
}

/** One of the {@link START_CHECKS} on `next`, with what it resolved; its failure refuses the reload, naming its key. */
async function startCheck(key: keyof typeof START_CHECKS, next: DaemonConfig): Promise<unknown> {
  try {
    return await START_CHECKS[key](next)
  } catch (e) {
    // e's message, code and hint are folded in: its cause is the next one said
    throw new NgrokdError(isNgrokdError(e) ? e.code : 'NGROKD_ERR_CONFIG_INVALID', `${key}: the next start would stop on it, so the daemon keeps the configuration it runs on: ${e instanceof Error ? e.message : String(e)}`, {
      ...(e instanceof Error && e.cause !== undefined ? { cause: e.cause } : {}),
      hint: `${isNgrokdError(e) && e.hint ? `${e.hint}; ` : ''}fix ${key}, then reload again`,
    })
  }
}

/** A failure of this machine's state (state_dir cannot be written, or is not trusted), not of the API. */
function isLocalStateError(e: unknown): e is NgrokdError {
  return isNgrokdError(e, 'NGROKD_ERR_STATE') || isNgrokdError(e, 'NGROKD_ERR_PERMISSION') || isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED')
}

/** A promise with its resolve function (Promise.withResolvers, which Node 20 lacks). */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (e: unknown) => void } {
  let resolve!: (value: T) => void
  let reject!: (e: unknown) => void
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)))
  return { promise, resolve, reject }
}

/** The interface's index where the OS tells it without privilege (Linux: /sys/class/net/<name>/ifindex). */
async function interfaceIndex(name: string): Promise<{ index?: number }> {
  if (process.platform !== 'linux' || !/^[\w.-]{1,15}$/.test(name)) return {}
  const text = await readFile(`/sys/class/net/${name}/ifindex`, 'utf8').catch(() => '')
  const index = Number(text.trim())
  return Number.isInteger(index) && index > 0 ? { index } : {}
}

/**
 * What an open interface driver or name resolver says of what it has open (none before it is open): its own
 * diagnose(); one that throws is a failing check `<id>.diagnose` naming `who`.
 */
async function checksOf(opened: { diagnose(): Promise<Check[]> } | undefined, id: string, who: string): Promise<Check[]> {
  if (!opened) return []
  try {
    return await opened.diagnose()
  } catch (e) {
    return [{ id: `${id}.diagnose`, status: 'fail', summary: `${who}: diagnose() failed: ${formatError(e)}`, ...(isNgrokdError(e) ? { code: e.code } : {}) }]
  }
}
