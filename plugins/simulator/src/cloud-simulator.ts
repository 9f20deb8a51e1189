import { randomBytes } from 'node:crypto'
import { isIP } from 'node:net'
import { NgrokdError, silentLogger, type Logger, type OperatorCreate } from '@ngrokd/core'
import type { SimulatorAdmin } from './admin-api.js'
import { ApiServer } from './api-server.js'
import { Backends } from './backends.js'
import { SimulatorCa, type IssuedKeyPair } from './ca.js'
import { IngressServer } from './ingress-server.js'
import { ApiErrorReply } from './ngrok-errors.js'
import { SimulatorState } from './simulator-state.js'
import type {
  AddEndpointInput,
  ApiFault,
  ApiRequestRecord,
  ConnRequestRecord,
  EndpointObject,
  IngressFault,
  OperatorObject,
  SimulatorStats,
} from './types.js'

const YEAR_MS = 365 * 24 * 3600_000

export interface CloudSimulatorOptions {
  /**
   * Address for the API and the ingress. Default: API on 127.0.0.1, ingress on 127.0.0.1 and ::1
   * (same port, as `localhost` may resolve to either).
   */
  host?: string
  /** 0 or absent = a free port. */
  apiPort?: number
  /** 0 or absent = a free port. */
  ingressPort?: number
  /** The key clients must send as `Authorization: Bearer <key>`. Default: random. */
  apiKey?: string
  /** Validity of client certificates issued from CSRs. Default 1 year. */
  certValidityMs?: number
  /**
   * What `binding.ingress_endpoint` reports. Default `localhost:<ingressPort>` (or `<host>:<port>`).
   * Give a value without a port (e.g. `localhost`) to test a client's `:443` default.
   */
  advertisedIngressEndpoint?: string
  /**
   * Also serve the REST API over HTTPS on `port` (0 or absent = a free port) of the API's address, with a
   * certificate from the simulator's CA (its intermediate, `caCertPem`) for the DNS `names` and that address:
   * e.g. `{ names: ['api.ngrok.com'], port: 443 }` for a client that always calls https://api.ngrok.com
   * (the host name mapped to the address by a hosts file). Default: plain HTTP only.
   */
  apiTls?: { names: string[]; port?: number }
  /** Start with the cloud's clock this far ahead of the machine's (see `setClockOffset`). Default 0. */
  clockOffsetMs?: number
  /**
   * API requests the account may make in any rolling minute, as ngrok allows (PROTOCOL.md §2); past it the API
   * answers 429 ERR_NGROK_226 with a Retry-After until the oldest request leaves the minute. 0 = no limit.
   * Default 120, ngrok's.
   */
  rateLimitPerMinute?: number
  logger?: Logger
}

/** ngrok's limit on one account's API requests in any rolling minute (PROTOCOL.md §2). */
export const NGROK_RATE_LIMIT_PER_MINUTE = 120

/**
 * The ngrok cloud as PROTOCOL.md describes it, on loopback: the REST API (operators, bound
 * endpoints), a CA that signs operators' CSRs, the mTLS binding ingress, and echo/bulk backends
 * behind every endpoint. Drive it from tests through the methods below or, from another process,
 * through `adminUrl` (the README's "Admin API").
 *
 * ```ts
 * const sim = await CloudSimulator.start()
 * sim.addEndpoint({ url: 'http://api.prod' })
 * // point the daemon at sim.apiUrl with sim.apiKey, trusting sim.caCertPem for the ingress
 * await sim.stop()
 * ```
 */
export class CloudSimulator implements SimulatorAdmin {
  private stopped = false

  private constructor(
    private readonly state: SimulatorState,
    private readonly api: ApiServer,
    private readonly ingress: IngressServer,
    private readonly backends: Backends,
  ) {}

  static async start(options: CloudSimulatorOptions = {}): Promise<CloudSimulator> {
    if (options.rateLimitPerMinute !== undefined && !(Number.isInteger(options.rateLimitPerMinute) && options.rateLimitPerMinute >= 0)) throw badOption('rateLimitPerMinute must be a whole number, 0 for no limit')
    const logger = (options.logger ?? silentLogger).child({ component: 'cloud-simulator' })
    const certValidityMs = options.certValidityMs ?? YEAR_MS
    if (!(certValidityMs > 0)) throw badOption('certValidityMs must be positive')
    const apiKey = options.apiKey ?? `sim_${randomBytes(18).toString('base64url')}`
    if (!/^\S+$/.test(apiKey)) throw badOption('apiKey must not be empty or contain spaces')

    const ca = SimulatorCa.create()
    const state = new SimulatorState(ca, '', '', certValidityMs)
    state.clockOffsetMs = clockOffset(options.clockOffsetMs ?? 0)
    const backends = new Backends(ca, logger)
    const host = options.host
    const ingressHosts = host === undefined ? ['127.0.0.1', '::1'] : [host]
    const certNames = ['localhost', '127.0.0.1', '::1']
    if (host !== undefined && !certNames.includes(host)) certNames.push(host)
    const ingress = await IngressServer.start({
      state,
      backends,
      ca,
      hosts: ingressHosts,
      optionalHosts: host === undefined ? ['::1'] : [],
      port: options.ingressPort ?? 0,
      certNames,
      logger,
    })
    let api: ApiServer
    try {
      const apiHost = host ?? '127.0.0.1'
      const tls = options.apiTls === undefined ? undefined : { ...ca.issueServerCert(apiTlsCertNames(options.apiTls.names, apiHost)), port: options.apiTls.port ?? 0 }
      api = await ApiServer.start({ state, apiKey, host: apiHost, port: options.apiPort ?? 0, ...(tls ? { tls } : {}), logger, rateLimitPerMinute: options.rateLimitPerMinute ?? NGROK_RATE_LIMIT_PER_MINUTE })
    } catch (e) {
      await ingress.close()
      throw e
    }
    state.apiUrl = api.url
    state.ingressEndpoint =
      options.advertisedIngressEndpoint ??
      (host === undefined ? `localhost:${ingress.port}` : `${isIP(host) === 6 ? `[${host}]` : host}:${ingress.port}`)
    const sim = new CloudSimulator(state, api, ingress, backends)
    api.admin = sim
    logger.info({ apiUrl: api.url, ingressEndpoint: state.ingressEndpoint }, 'simulator: started')
    return sim
  }

  /** The API key the API accepts. */
  get apiKey(): string {
    return this.api.apiKey
  }

  /** From now on the API accepts `key` and refuses the one before (401 ERR_NGROK_203), as when a key is revoked at ngrok. */
  setApiKey(key: string): void {
    if (typeof key !== 'string' || !/^\S+$/.test(key)) throw badOption('apiKey must be a string without spaces')
    this.api.apiKey = key
  }

  /** `http://127.0.0.1:<port>`, no trailing slash: the base for API paths. */
  get apiUrl(): string {
    return this.api.url
  }
  /** `https://127.0.0.1:<port>` with the `apiTls` option: the same API over HTTPS. */
  get apiHttpsUrl(): string | undefined {
    return this.api.httpsUrl
  }
  /** `${apiUrl}/_admin`: the admin interface over HTTP. */
  get adminUrl(): string {
    return `${this.api.url}/_admin`
  }
  /** What operators are told in `binding.ingress_endpoint`. */
  get ingressEndpoint(): string {
    return this.state.ingressEndpoint
  }
  get ingressPort(): number {
    return this.ingress.port
  }
  /** The addresses the ingress listens on (127.0.0.1 and, when the machine has it, ::1). */
  get ingressAddresses(): string[] {
    return [...this.ingress.addresses]
  }
  /**
   * PEM of the intermediate CA that signed the ingress's and the https backends' certificates: the one
   * anchor a client is given, as ngrok's clients get ngrok's intermediate (trust it with partial chains
   * allowed). The root above it, which also signs client certificates, is never handed out.
   */
  get caCertPem(): string {
    return this.state.ca.certPem
  }
  /** PEM of the root CA: signs the intermediate and client certificates. For tests that check it is not needed. */
  get caRootCertPem(): string {
    return this.state.ca.rootCertPem
  }

  // ---- admin -----------------------------------------------------------------------------

  addEndpoint(input: AddEndpointInput): EndpointObject {
    return this.state.endpointObject(this.state.addEndpoint(input))
  }

  /** Removes an endpoint and cuts its open connections. False when there is no such id. */
  removeEndpoint(id: string): boolean {
    this.backends.forget(id)
    return this.state.removeEndpoint(id)
  }

  listEndpoints(): EndpointObject[] {
    return [...this.state.endpoints.values()].map((e) => this.state.endpointObject(e))
  }

  listOperators(): OperatorObject[] {
    return [...this.state.operators.values()].map((o) => this.state.operatorObject(o))
  }

  /**
   * Registers an operator as another client of the account would (another cluster's ngrok operator):
   * `input` is the body of `POST /kubernetes_operators`, checked the same way; no API request is logged.
   */
  addOperator(input: OperatorCreate): OperatorObject {
    try {
      return this.state.operatorObject(this.state.createOperator(input))
    } catch (e) {
      if (e instanceof ApiErrorReply) throw badOption(`addOperator: ${e.message} (${e.errorCode})`, 'give addOperator() a valid body of POST /kubernetes_operators')
      throw e
    }
  }

  /** Deletes an operator as someone in the dashboard would; its certificates stop working. */
  removeOperator(id: string): boolean {
    return this.state.operators.delete(id)
  }

  injectApiFault(fault: ApiFault): void {
    this.state.faults.addApi(fault)
  }

  injectIngressFault(fault: IngressFault): void {
    this.state.faults.addIngress(fault)
  }

  resetFaults(): void {
    this.state.faults.reset()
  }

  /** A snapshot of the counters. */
  stats(): SimulatorStats {
    return structuredClone(this.state.stats)
  }

  resetStats(): void {
    this.state.resetStats()
  }

  /** The last (at most 1000) API requests, oldest first. */
  apiRequests(): ApiRequestRecord[] {
    return structuredClone(this.state.requestLog)
  }

  /** The last (at most 1000) ConnRequests the ingress decoded, oldest first. */
  connRequests(): ConnRequestRecord[] {
    return structuredClone(this.state.connRequestLog)
  }

  /** Validity of certificates issued from now on. */
  setCertValidity(ms: number): void {
    if (!(ms > 0)) throw badOption('cert validity must be a positive number of milliseconds')
    this.state.certValidityMs = ms
  }

  /**
   * What `binding.ingress_endpoint` reports from now on, in every operator the API returns (as when
   * ngrok moves an account to another ingress). `''` names none. The ingress keeps listening where it is.
   */
  setIngressEndpoint(endpoint: string): void {
    if (typeof endpoint !== 'string' || /\s/.test(endpoint)) throw badOption(`bad ingress endpoint ${JSON.stringify(endpoint)}`, 'give setIngressEndpoint() `host:port`, `host`, or an empty string, without spaces')
    this.state.ingressEndpoint = endpoint
  }

  /**
   * Runs the cloud's clock `ms` ahead of the machine's (negative: behind): certificates are issued at that
   * time (validity runs from it) and objects are stamped with it, for testing renewal without waiting. The
   * ingress still checks client certificates against the machine's time (TLS does), so one issued far ahead
   * is not yet valid there.
   */
  setClockOffset(ms: number): void {
    this.state.clockOffsetMs = clockOffset(ms)
  }

  /** When false, registering with `enabled_features: ["bindings"]` fails with ERR_NGROK_19002. */
  setBindingsEnabled(enabled: boolean): void {
    this.state.bindingsEnabled = enabled
  }

  /** A server certificate from the simulator CA, for tests that run their own TLS services. */
  issueServerCert(names: string[]): IssuedKeyPair {
    return this.state.ca.issueServerCert(names)
  }

  /** A client certificate from the simulator CA that is bound to no operator (the ingress refuses it with ERR_NGROK_15010). */
  issueClientCert(options: { commonName?: string; validityMs?: number } = {}): IssuedKeyPair {
    return this.state.ca.issueClientCert(options)
  }

  /** Closes every server and destroys every socket. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    await Promise.all([this.ingress.close(), this.api.close()])
    this.backends.close()
  }
}

function badOption(why: string, hint = 'fix the CloudSimulator.start() options'): NgrokdError {
  return new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `simulator: ${why}`, { hint })
}

/** The HTTPS API certificate's names: the DNS names given, then the listen address. */
function apiTlsCertNames(names: string[], host: string): string[] {
  if (!Array.isArray(names) || names.length === 0 || names.some((n) => typeof n !== 'string' || !/^[A-Za-z0-9.-]+$/.test(n))) {
    throw badOption(`bad apiTls.names ${JSON.stringify(names)}`, 'give apiTls.names a non-empty list of DNS names, e.g. ["api.ngrok.com"]')
  }
  return [...names, host]
}

function clockOffset(ms: number): number {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) throw badOption(`bad clock offset ${JSON.stringify(ms)}`, 'give clockOffsetMs (start option, setClockOffset(), admin settings) a finite number of milliseconds')
  return ms
}
