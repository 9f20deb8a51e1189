import { CsrError, NgrokdError } from '@ngrokd/core'
import type { SimulatorCa } from './ca.js'
import { parseEndpointUrl, type EndpointAddress } from './endpoint-url.js'
import { FaultBook } from './fault-book.js'
import { IdGenerator } from './ids.js'
import { ApiErrorReply } from './ngrok-errors.js'
import { SelectorError, compileSelectors, type Selector } from './selectors.js'
import {
  BACKEND_KINDS,
  type AddEndpointInput,
  type ApiRequestRecord,
  type ConnRequestRecord,
  type BackendKind,
  type EndpointObject,
  type OperatorObject,
  type SimulatorStats,
} from './types.js'

/** ngrok's API renders times as RFC 3339 in whole seconds. */
export const rfc3339 = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z')
const ZERO_TIME = '0001-01-01T00:00:00Z' // what ngrok shows for an operator without a certificate

const DESCRIPTION_MAX = 255 // ngrok's documented limit for description fields
const METADATA_MAX = 4096 // ngrok's documented limit for metadata fields
const FEATURES = ['bindings', 'ingress', 'gateway']
const REQUEST_LOG_MAX = 1000

export interface SimEndpoint extends EndpointAddress {
  id: string
  type: string
  poolingEnabled: boolean
  createdAt: Date
  updatedAt: Date
  metadata: string
  description: string
  backend: BackendKind
  notices: string[]
}

export interface SimOperator {
  id: string
  createdAt: Date
  updatedAt: Date
  description: string
  metadata: string
  principalId: string
  enabledFeatures: string[]
  region: string
  deployment: OperatorObject['deployment']
  endpointSelectors: string[] | null
  selector: Selector
  cert?: { pem: string; notBefore: Date; notAfter: Date; serial: string }
}

export interface Page<T> {
  items: T[]
  nextBeforeId: string | null
}

/** Everything the simulated cloud knows: operators, endpoints, faults, counters. */
export class SimulatorState {
  readonly ids = new IdGenerator()
  readonly faults = new FaultBook()
  readonly operators = new Map<string, SimOperator>()
  readonly endpoints = new Map<string, SimEndpoint>()
  /** Endpoints by canonical url and by `host:port` (lower-case), so adding and routing stay O(1) with 10k endpoints. */
  private readonly byUrl = new Map<string, SimEndpoint[]>()
  private readonly byHostPort = new Map<string, SimEndpoint[]>()
  /** Certificate serial → operator id, for every certificate ever issued (renewal keeps old ones valid until expiry). */
  private readonly serials = new Map<string, string>()
  private readonly roundRobin = new Map<string, number>()
  private readonly principalId: string
  certValidityMs: number
  /** How far the simulated cloud's clock runs ahead of the machine's (negative: behind). */
  clockOffsetMs = 0
  bindingsEnabled = true
  stats: SimulatorStats = emptyStats()
  requestLog: ApiRequestRecord[] = []
  connRequestLog: ConnRequestRecord[] = []

  constructor(
    readonly ca: SimulatorCa,
    /** Base for `uri` and `next_page_uri`, e.g. `http://127.0.0.1:4040`. Set once the API listens. */
    public apiUrl: string,
    /** What `binding.ingress_endpoint` reports. */
    public ingressEndpoint: string,
    certValidityMs: number,
  ) {
    this.certValidityMs = certValidityMs
    this.principalId = this.ids.next('usr')
  }

  /** The simulated cloud's time: what certificates are issued at and objects are stamped with. */
  now(): Date {
    return new Date(Date.now() + this.clockOffsetMs)
  }

  // ---- endpoints -------------------------------------------------------------------------

  addEndpoint(input: AddEndpointInput): SimEndpoint {
    if (typeof input?.url !== 'string') throw badEndpoint('addEndpoint needs a url string')
    const addr = parseEndpointUrl(input.url, { strict: !input.skipValidation })
    const backend = input.backend ?? (addr.proto === 'http' ? 'http-echo' : addr.proto === 'https' ? 'https-echo' : 'tcp-echo')
    if (!BACKEND_KINDS.includes(backend)) throw badEndpoint(`unknown backend ${JSON.stringify(backend)}`)
    const pooling = input.poolingEnabled ?? false
    const sameUrl = this.byUrl.get(addr.url) ?? []
    if (sameUrl.length > 0 && (!pooling || sameUrl.some((e) => !e.poolingEnabled))) {
      throw badEndpoint(`${addr.url} is already online; endpoints share a url only with poolingEnabled on all of them`)
    }
    if (input.metadata !== undefined && typeof input.metadata !== 'string') throw badEndpoint('metadata must be a string')
    if (input.description !== undefined && typeof input.description !== 'string') throw badEndpoint('description must be a string')
    if (input.type !== undefined && typeof input.type !== 'string') throw badEndpoint('type must be a string')
    if (input.notices !== undefined && (!Array.isArray(input.notices) || input.notices.some((n) => typeof n !== 'string'))) {
      throw badEndpoint('notices must be an array of strings')
    }
    const now = this.now()
    const ep: SimEndpoint = {
      ...addr,
      id: this.ids.next('ep'),
      type: input.type ?? 'agent',
      poolingEnabled: pooling,
      createdAt: now,
      updatedAt: now,
      metadata: input.metadata ?? '',
      description: input.description ?? '',
      backend,
      notices: input.notices ?? [],
    }
    this.endpoints.set(ep.id, ep)
    push(this.byUrl, ep.url, ep)
    push(this.byHostPort, hostPortKey(ep.host, ep.port), ep)
    return ep
  }

  removeEndpoint(id: string): boolean {
    const ep = this.endpoints.get(id)
    if (!ep) return false
    this.endpoints.delete(id)
    pull(this.byUrl, ep.url, ep)
    pull(this.byHostPort, hostPortKey(ep.host, ep.port), ep)
    return true
  }

  /** `origin`: the API origin the request came in on (HTTP or HTTPS), for `uri`. */
  endpointObject(ep: SimEndpoint, origin = this.apiUrl): EndpointObject {
    return {
      id: ep.id,
      uri: `${origin}/endpoints/${ep.id}`,
      url: ep.url,
      public_url: ep.url,
      proto: ep.proto,
      scheme: ep.proto,
      hostport: ep.hostport,
      host: ep.host,
      port: ep.port,
      type: ep.type,
      bindings: ['kubernetes'],
      pooling_enabled: ep.poolingEnabled,
      created_at: rfc3339(ep.createdAt),
      updated_at: rfc3339(ep.updatedAt),
      metadata: ep.metadata,
      description: ep.description,
      name: '',
      region: '',
      traffic_policy: '',
      principal: { id: this.principalId, uri: '' },
    }
  }

  /** The endpoint an operator reaches for host:port (bound by its selectors); pooled endpoints take turns. */
  routeEndpoint(op: SimOperator, host: string, port: number): SimEndpoint | undefined {
    const key = hostPortKey(host, port)
    const matches = (this.byHostPort.get(key) ?? []).filter((e) => this.binds(op, e))
    if (matches.length <= 1) return matches[0]
    const n = this.roundRobin.get(key) ?? 0
    this.roundRobin.set(key, n + 1)
    return matches[n % matches.length]
  }

  // ---- operators -------------------------------------------------------------------------

  createOperator(body: unknown): SimOperator {
    const b = requireObject(body)
    const features = optionalFeatures(b.enabled_features) ?? []
    const binding = optionalBinding(b.binding)
    const now = this.now()
    const op: SimOperator = {
      id: this.ids.next('k8sop'),
      createdAt: now,
      updatedAt: now,
      description: optionalString(b.description, 'description', DESCRIPTION_MAX) ?? '',
      metadata: optionalString(b.metadata, 'metadata', METADATA_MAX) ?? '',
      principalId: this.principalId,
      enabledFeatures: features,
      region: optionalString(b.region, 'region', 64) ?? 'global',
      deployment: optionalDeployment(b.deployment),
      endpointSelectors: null,
      selector: () => false,
    }
    this.checkBindingsAllowed(features)
    this.applyBinding(op, binding, features.includes('bindings'))
    this.operators.set(op.id, op)
    return op
  }

  updateOperator(id: string, body: unknown): SimOperator {
    const op = this.getOperator(id)
    const b = requireObject(body)
    // Validate everything before changing anything.
    const description = optionalString(b.description, 'description', DESCRIPTION_MAX)
    const metadata = optionalString(b.metadata, 'metadata', METADATA_MAX)
    const region = optionalString(b.region, 'region', 64)
    const features = optionalFeatures(b.enabled_features)
    const binding = optionalBinding(b.binding)
    const deployment = b.deployment === undefined ? undefined : optionalDeploymentUpdate(b.deployment)
    if (features) this.checkBindingsAllowed(features)
    const staged: SimOperator = { ...op }
    if (description !== undefined) staged.description = description
    if (metadata !== undefined) staged.metadata = metadata
    if (region !== undefined) staged.region = region
    if (features) staged.enabledFeatures = features
    // an update names name and version only (KubernetesOperatorDeploymentUpdate, ngrok-api-go): the rest stays
    if (deployment) staged.deployment = { ...op.deployment, ...deployment }
    this.applyBinding(staged, binding, false)
    staged.updatedAt = this.now()
    this.operators.set(id, staged)
    return staged
  }

  getOperator(id: string): SimOperator {
    const op = this.operators.get(id)
    if (!op) throw new ApiErrorReply('notFound', `Kubernetes operator '${id}' not found.`)
    return op
  }

  deleteOperator(id: string): void {
    this.getOperator(id)
    this.operators.delete(id)
  }

  /** The operator a client certificate was issued to, if that operator still exists. */
  operatorForSerial(serial: string): SimOperator | undefined {
    const id = this.serials.get(serial.toUpperCase())
    return id === undefined ? undefined : this.operators.get(id)
  }

  /** The operator id a certificate was issued to, even if the operator is gone. */
  operatorIdForSerial(serial: string): string | undefined {
    return this.serials.get(serial.toUpperCase())
  }

  boundEndpoints(op: SimOperator): SimEndpoint[] {
    return [...this.endpoints.values()].filter((e) => this.binds(op, e))
  }

  private binds(op: SimOperator, e: SimEndpoint): boolean {
    if (!op.enabledFeatures.includes('bindings')) return false
    return op.selector({
      id: e.id,
      url: e.url,
      host: e.host,
      port: e.port,
      proto: e.proto,
      hostport: e.hostport,
      type: e.type,
      metadata: e.metadata,
      description: e.description,
    })
  }

  /** `origin`: the API origin the request came in on (HTTP or HTTPS), for `uri`. */
  operatorObject(op: SimOperator, origin = this.apiUrl): OperatorObject {
    const bindings = op.enabledFeatures.includes('bindings')
    return {
      id: op.id,
      uri: `${origin}/kubernetes_operators/${op.id}`,
      created_at: rfc3339(op.createdAt),
      updated_at: rfc3339(op.updatedAt),
      description: op.description,
      metadata: op.metadata,
      principal: { id: op.principalId, uri: '' },
      enabled_features: op.enabledFeatures,
      region: op.region,
      deployment: op.deployment,
      // "information about the Bindings feature of this Kubernetes Operator, if enabled" (omitempty, ngrok-api-go)
      ...(bindings
        ? {
            binding: {
              endpoint_selectors: op.endpointSelectors,
              cert: op.cert
                ? { cert: op.cert.pem, not_before: rfc3339(op.cert.notBefore), not_after: rfc3339(op.cert.notAfter) }
                : { cert: '', not_before: ZERO_TIME, not_after: ZERO_TIME },
              ingress_endpoint: this.ingressEndpoint,
            },
          }
        : {}),
    }
  }

  private checkBindingsAllowed(features: string[]): void {
    if (features.includes('bindings') && !this.bindingsEnabled) {
      throw new ApiErrorReply('operatorInvalid', 'Your account is not enabled for the bindings feature of Kubernetes operators.')
    }
  }

  private applyBinding(op: SimOperator, binding: BindingInput | undefined, defaultSelectors: boolean): void {
    const selectors = binding?.endpoint_selectors ?? (defaultSelectors && !op.endpointSelectors ? ['true'] : undefined)
    if (selectors) {
      try {
        op.selector = compileSelectors(selectors)
      } catch (e) {
        if (e instanceof SelectorError) throw new ApiErrorReply('operatorInvalid', `Invalid endpoint selector: ${e.message}`)
        throw e
      }
      op.endpointSelectors = selectors
    }
    if (binding?.csr !== undefined) {
      try {
        const cert = this.ca.signCsr(binding.csr, { commonName: op.id, validityMs: this.certValidityMs, issuedAt: this.now() })
        op.cert = { pem: cert.certPem, notBefore: cert.notBefore, notAfter: cert.notAfter, serial: cert.serial }
      } catch (e) {
        if (e instanceof CsrError) throw new ApiErrorReply('operatorInvalid', `Invalid binding.csr: ${e.message}.`)
        throw e
      }
      this.serials.set(op.cert.serial, op.id)
    }
  }

  // ---- paging ----------------------------------------------------------------------------

  /** ngrok lists newest first; `before_id` continues after the last id of the previous page. */
  page<T extends { id: string }>(items: T[], limit: number, beforeId: string | undefined): Page<T> {
    const sorted = items
      .filter((i) => beforeId === undefined || i.id < beforeId)
      .sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
    const pageItems = sorted.slice(0, limit)
    return { items: pageItems, nextBeforeId: sorted.length > limit ? pageItems[pageItems.length - 1]!.id : null }
  }

  // ---- counters --------------------------------------------------------------------------

  recordRequest(rec: ApiRequestRecord): void {
    const s = this.stats.api
    s.total++
    s.byPath[rec.path] = (s.byPath[rec.path] ?? 0) + 1
    s.byStatus[String(rec.status)] = (s.byStatus[String(rec.status)] ?? 0) + 1
    this.requestLog.push(rec)
    if (this.requestLog.length > REQUEST_LOG_MAX) this.requestLog.splice(0, this.requestLog.length - REQUEST_LOG_MAX)
  }

  recordConnRequest(rec: ConnRequestRecord): void {
    this.connRequestLog.push(rec)
    if (this.connRequestLog.length > REQUEST_LOG_MAX) this.connRequestLog.splice(0, this.connRequestLog.length - REQUEST_LOG_MAX)
  }

  recordRefusal(code: string): void {
    const s = this.stats.ingress
    s.refused++
    s.refusedByCode[code] = (s.refusedByCode[code] ?? 0) + 1
  }

  resetStats(): void {
    const active = this.stats.ingress.active
    const inFlight = this.stats.api.inFlight
    this.stats = emptyStats()
    this.stats.ingress.active = active
    this.stats.api.inFlight = inFlight
    this.requestLog = []
    this.connRequestLog = []
  }
}

const hostPortKey = (host: string, port: number): string => `${host.toLowerCase()}:${port}`

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key)
  if (list) list.push(value)
  else map.set(key, [value])
}

function pull<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = (map.get(key) ?? []).filter((v) => v !== value)
  if (list.length > 0) map.set(key, list)
  else map.delete(key)
}

function emptyStats(): SimulatorStats {
  return {
    api: { total: 0, byPath: {}, byStatus: {}, inFlight: 0 },
    ingress: { accepted: 0, refused: 0, refusedByCode: {}, active: 0 },
  }
}

function badEndpoint(why: string): NgrokdError {
  return new NgrokdError('NGROKD_ERR_ENDPOINT_INVALID', `simulator: ${why}`, { hint: 'fix the addEndpoint() input' })
}

// ---- request body validation (ngrok answers 400 for a field of the wrong type) ---------------

interface BindingInput {
  endpoint_selectors?: string[]
  csr?: string
}

const invalidField = (field: string, why: string): ApiErrorReply => new ApiErrorReply('badRequest', `The field '${field}' ${why}.`)

function requireObject(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ApiErrorReply('badRequest', 'The request body must be a JSON object.')
  }
  return body as Record<string, unknown>
}

function optionalString(v: unknown, field: string, max: number): string | undefined {
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'string') throw invalidField(field, 'must be a string')
  if (Buffer.byteLength(v) > max) throw invalidField(field, `must be at most ${max} bytes`)
  return v
}

function optionalFeatures(v: unknown): string[] | undefined {
  if (v === undefined || v === null) return undefined
  if (!Array.isArray(v) || v.some((f) => typeof f !== 'string')) throw invalidField('enabled_features', 'must be an array of strings')
  const unknown = v.find((f) => !FEATURES.includes(f))
  if (unknown !== undefined) throw invalidField('enabled_features', `has unknown feature '${unknown}' (known: ${FEATURES.join(', ')})`)
  return [...new Set(v as string[])]
}

function optionalBinding(v: unknown): BindingInput | undefined {
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'object' || Array.isArray(v)) throw invalidField('binding', 'must be an object')
  const b = v as Record<string, unknown>
  const out: BindingInput = {}
  if (b.endpoint_selectors !== undefined && b.endpoint_selectors !== null) {
    if (!Array.isArray(b.endpoint_selectors) || b.endpoint_selectors.some((s) => typeof s !== 'string')) {
      throw invalidField('binding.endpoint_selectors', 'must be an array of strings')
    }
    out.endpoint_selectors = b.endpoint_selectors as string[]
  }
  if (b.csr !== undefined && b.csr !== null) {
    if (typeof b.csr !== 'string') throw invalidField('binding.csr', 'must be a PEM string')
    out.csr = b.csr
  }
  return out
}

/** An update's `deployment`: `name` and `version`, each only when given (KubernetesOperatorDeploymentUpdate). */
function optionalDeploymentUpdate(v: unknown): Partial<Pick<OperatorObject['deployment'], 'name' | 'version'>> {
  if (v === null) return {}
  if (typeof v !== 'object' || Array.isArray(v)) throw invalidField('deployment', 'must be an object')
  const out: Partial<Pick<OperatorObject['deployment'], 'name' | 'version'>> = {}
  for (const k of ['name', 'version'] as const) {
    const s = optionalString((v as Record<string, unknown>)[k], `deployment.${k}`, 255)
    if (s !== undefined) out[k] = s
  }
  return out
}

function optionalDeployment(v: unknown): OperatorObject['deployment'] {
  const d = { name: '', namespace: '', version: '', cluster_name: '' }
  if (v === undefined || v === null) return d
  if (typeof v !== 'object' || Array.isArray(v)) throw invalidField('deployment', 'must be an object')
  for (const k of Object.keys(d) as Array<keyof typeof d>) {
    const s = optionalString((v as Record<string, unknown>)[k], `deployment.${k}`, 255)
    if (s !== undefined) d[k] = s
  }
  return d
}
