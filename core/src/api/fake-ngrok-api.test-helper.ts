import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { TestCa } from '../testing/test-ca.js'
import { parseCertificate } from '../cert/parse-certificate.js'
import { DEFAULT_INGRESS_ENDPOINT } from './ingress-endpoint.js'
import type { ApiEndpoint, NgrokErrorBody, Operator, OperatorCert, OperatorCreate, OperatorUpdate } from './types.js'

/** A reply as recorded: status, headers and a JSON body (or a string sent as is). */
export interface RecordedReply {
  status: number
  headers?: Record<string, string>
  body?: unknown
}

export interface FakeRequest {
  method: string
  /** Path and query, e.g. `/kubernetes_operators?limit=100`. */
  path: string
  headers: Record<string, string>
  body?: unknown
}

export interface FakeNgrokApiOptions {
  apiKey?: string
  /** Signs the CSRs. Default: a new TestCa. */
  ca?: TestCa
  /** `binding.ingress_endpoint` of new operators. */
  ingressEndpoint?: string
  /** Validity of issued certificates. Default 365 days. */
  certLifetimeMs?: number
  /** Clock for issued certificates and timestamps. Default Date.now. */
  now?: () => number
}

interface Injection {
  method?: string
  path?: string | RegExp
  replies: RecordedReply[]
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
/** ngrok ids: a prefix and 27 base62 characters (`k8sop_2uJ8fQk3vRmX0cT7nWbL5yZpA1d`). */
function ngrokId(prefix: string): string {
  return prefix + '_' + Array.from(randomBytes(27), (b) => BASE62[b % 62]).join('')
}

const JSON_HEADERS = { 'content-type': 'application/json' }

function error(status: number, msg: string, errorCode?: string, details: Record<string, string> = {}): RecordedReply {
  const body: NgrokErrorBody = {
    ...(errorCode ? { error_code: errorCode } : {}),
    status_code: status,
    msg,
    details: { operation_id: ngrokId('op'), ...details },
  }
  return { status, headers: JSON_HEADERS, body }
}

/**
 * An in-memory ngrok API for tests: the Kubernetes-operator calls of PROTOCOL.md §2 with ngrok's
 * reply shapes (ids, pagination with `next_page_uri`, error bodies, CSR signing). Use its `fetch` as
 * `NgrokApiClient`'s `fetchImpl`, or `listen()` on 127.0.0.1. `inject()` queues recorded replies
 * (429, 5xx, …) ahead of the normal ones.
 *
 * ```ts
 * const fake = new FakeNgrokApi({ apiKey: 'k' })
 * const api = new NgrokApiClient({ apiKey: 'k', fetchImpl: fake.fetch })
 * ```
 */
export class FakeNgrokApi {
  readonly apiKey: string
  readonly ca: TestCa
  ingressEndpoint: string
  certLifetimeMs: number
  now: () => number
  /** Registered operators by id, in creation order. */
  readonly operators = new Map<string, Operator>()
  /** Bound to every operator. */
  endpoints: ApiEndpoint[] = []
  /** Every request received, in order. */
  readonly requests: FakeRequest[] = []
  private readonly injections: Injection[] = []

  constructor(options: FakeNgrokApiOptions = {}) {
    this.apiKey = options.apiKey ?? 'fake-api-key'
    this.ca = options.ca ?? TestCa.create({ commonName: 'fake ngrok binding CA' })
    this.ingressEndpoint = options.ingressEndpoint ?? DEFAULT_INGRESS_ENDPOINT
    this.certLifetimeMs = options.certLifetimeMs ?? 365 * 86_400_000
    this.now = options.now ?? Date.now
  }

  /** The next `replies.length` matching requests get these replies instead of the normal ones. */
  inject(match: { method?: string; path?: string | RegExp }, ...replies: RecordedReply[]): void {
    this.injections.push({ ...match, replies: [...replies] })
  }

  /** Requests with this method whose path starts with `prefix` (query ignored when it has none). */
  requestsTo(method: string, prefix: string): FakeRequest[] {
    return this.requests.filter((r) => r.method === method && (r.path === prefix || r.path.startsWith(prefix.includes('?') ? prefix : prefix + '?')))
  }

  /** A `fetch` that answers from memory. */
  readonly fetch: typeof fetch = async (input, init) => {
    const request = input instanceof Request ? input : undefined
    const url = new URL(request ? request.url : String(input))
    const signal = init?.signal ?? request?.signal
    signal?.throwIfAborted()
    const method = (init?.method ?? request?.method ?? 'GET').toUpperCase()
    const headers: Record<string, string> = {}
    new Headers(init?.headers ?? request?.headers).forEach((v, k) => (headers[k] = v))
    const bodyText = typeof init?.body === 'string' ? init.body : request ? await request.text() : ''
    const reply = this.handle(method, url, headers, bodyText)
    const text = reply.body === undefined ? null : typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body)
    return new Response(reply.status === 204 ? null : text, { status: reply.status, headers: reply.headers ?? {} })
  }

  /** Serves the same API over HTTP on 127.0.0.1. */
  async listen(): Promise<{ url: string; close(): Promise<void> }> {
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const headers: Record<string, string> = {}
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v
        const url = new URL(req.url ?? '/', `http://${req.headers.host ?? '127.0.0.1'}`)
        const reply = this.handle(req.method ?? 'GET', url, headers, Buffer.concat(chunks).toString('utf8'))
        res.writeHead(reply.status, reply.headers ?? {})
        res.end(reply.body === undefined || reply.status === 204 ? undefined : typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body))
      })
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => resolve())
    })
    const { port } = server.address() as AddressInfo
    return {
      url: `http://127.0.0.1:${port}`,
      close: () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections()
          server.close(() => resolve())
        }),
    }
  }

  /** Answers one request. */
  handle(method: string, url: URL, headers: Record<string, string>, bodyText: string): RecordedReply {
    const path = url.pathname + url.search
    let body: unknown
    try {
      body = bodyText ? JSON.parse(bodyText) : undefined
    } catch {
      body = bodyText
    }
    this.requests.push({ method, path, headers, ...(body === undefined ? {} : { body }) })

    const injected = this.takeInjection(method, path)
    if (injected) return injected

    const auth = headers['authorization']
    if (!auth) return error(403, 'The ngrok API requires that you set the Authorization header for authentication.', 'ERR_NGROK_200')
    if (auth !== `Bearer ${this.apiKey}`) {
      const credential = auth.replace(/^Bearer\s+/i, '')
      return error(403, `The API authentication you specified does not look like a valid credential. Your credential: '${credential}'.`, 'ERR_NGROK_202')
    }
    if (headers['ngrok-version'] !== '2') return error(400, 'Your request has not specified an API version.', 'ERR_NGROK_218')

    const origin = url.origin
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent)
    if (parts[0] !== 'kubernetes_operators' || parts.length > 3) return this.notFound(url.pathname)
    const id = parts[1]
    if (parts.length === 1 && method === 'GET') return this.list(url, 'operators', [...this.operators.values()])
    if (parts.length === 1 && method === 'POST') return this.create(body as OperatorCreate, origin)
    const op = id ? this.operators.get(id) : undefined
    if (!op) return error(404, 'Not Found', undefined, {})
    if (parts.length === 3) {
      if (parts[2] !== 'bound_endpoints' || method !== 'GET') return this.notFound(url.pathname)
      return this.list(url, 'endpoints', this.endpoints)
    }
    if (method === 'GET') return { status: 200, headers: JSON_HEADERS, body: op }
    if (method === 'PATCH') return this.update(op, body as OperatorUpdate)
    if (method === 'DELETE') {
      this.operators.delete(op.id)
      return { status: 204 }
    }
    return this.notFound(url.pathname)
  }

  private takeInjection(method: string, path: string): RecordedReply | undefined {
    for (const inj of this.injections) {
      if (inj.replies.length === 0) continue
      if (inj.method && inj.method !== method) continue
      if (inj.path !== undefined && !(typeof inj.path === 'string' ? path.startsWith(inj.path) : inj.path.test(path))) continue
      return inj.replies.shift()
    }
    return undefined
  }

  private notFound(path: string): RecordedReply {
    return { status: 404, headers: JSON_HEADERS, body: { status_code: 404, msg: 'Not Found', details: { path } } }
  }

  private list(url: URL, key: string, all: Array<{ id: string }>): RecordedReply {
    const limitText = url.searchParams.get('limit')
    const limit = limitText === null ? 100 : Number(limitText)
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
      return error(400, `The page size limit must be a number between 1 and 100 but ${limitText} was provided.`, 'ERR_NGROK_244')
    }
    const before = url.searchParams.get('before_id')
    const start = before ? all.findIndex((x) => x.id === before) + 1 : 0
    const items = all.slice(start, start + limit)
    const more = start + limit < all.length && items.length > 0
    const next = more ? new URL(url.pathname, url.origin) : undefined
    if (next) {
      next.searchParams.set('before_id', items[items.length - 1]!.id)
      next.searchParams.set('limit', String(limit))
    }
    return {
      status: 200,
      headers: JSON_HEADERS,
      body: { [key]: items, uri: url.origin + url.pathname, next_page_uri: next ? next.href : null },
    }
  }

  private issue(csr: string, operatorId: string): OperatorCert {
    const notBefore = new Date(this.now() - 60_000)
    const notAfter = new Date(notBefore.getTime() + this.certLifetimeMs)
    const cert = this.ca.signCsr(csr, { notBefore, notAfter, subject: { commonName: operatorId } })
    const info = parseCertificate(cert)
    return { cert, not_before: info.notBefore.toISOString(), not_after: info.notAfter.toISOString() }
  }

  private create(body: OperatorCreate | undefined, origin: string): RecordedReply {
    if (typeof body !== 'object' || body === null) return error(400, 'The request body could not be parsed.', 'ERR_NGROK_213')
    const features = body.enabled_features ?? []
    if (body.binding && !features.includes('bindings')) {
      return error(400, 'Kubernetes operator validation failed: binding is set but the bindings feature is not enabled.', 'ERR_NGROK_19002')
    }
    const id = ngrokId('k8sop')
    const stamp = new Date(this.now()).toISOString().replace(/\.\d{3}Z$/, 'Z')
    const op: Operator = {
      id,
      uri: `${origin}/kubernetes_operators/${id}`,
      created_at: stamp,
      updated_at: stamp,
      description: body.description ?? '',
      metadata: body.metadata ?? '',
      principal: { id: 'bot_2uJ7zW1nR4hQ8vK2mXcT9pLsY6e', uri: `${origin}/bot_users/bot_2uJ7zW1nR4hQ8vK2mXcT9pLsY6e` },
      enabled_features: features,
      region: body.region ?? 'global',
      deployment: body.deployment ?? {},
    }
    if (body.binding) {
      let cert: OperatorCert
      try {
        cert = body.binding.csr ? this.issue(body.binding.csr, id) : {}
      } catch {
        return error(400, 'Kubernetes operator validation failed: the binding csr is invalid.', 'ERR_NGROK_19002')
      }
      op.binding = { endpoint_selectors: body.binding.endpoint_selectors ?? ['true'], cert, ingress_endpoint: this.ingressEndpoint }
    }
    this.operators.set(id, op)
    return { status: 201, headers: JSON_HEADERS, body: op }
  }

  private update(op: Operator, body: OperatorUpdate | undefined): RecordedReply {
    if (typeof body !== 'object' || body === null) return error(400, 'The request body could not be parsed.', 'ERR_NGROK_213')
    const next: Operator = structuredClone(op)
    if (body.description !== undefined) next.description = body.description
    if (body.metadata !== undefined) next.metadata = body.metadata
    if (body.enabled_features !== undefined) next.enabled_features = body.enabled_features
    if (body.region !== undefined) next.region = body.region
    if (body.deployment !== undefined) next.deployment = { ...next.deployment, ...body.deployment }
    if (body.binding) {
      if (!next.enabled_features?.includes('bindings')) {
        return error(400, 'Kubernetes operator validation failed: the bindings feature is not enabled.', 'ERR_NGROK_19002')
      }
      const binding = next.binding ?? { endpoint_selectors: ['true'], cert: {}, ingress_endpoint: this.ingressEndpoint }
      if (body.binding.endpoint_selectors) binding.endpoint_selectors = body.binding.endpoint_selectors
      if (body.binding.csr) {
        try {
          binding.cert = this.issue(body.binding.csr, op.id)
        } catch {
          return error(400, 'Kubernetes operator validation failed: the binding csr is invalid.', 'ERR_NGROK_19002')
        }
      }
      binding.ingress_endpoint = this.ingressEndpoint // the reply names the ingress to use from now on
      next.binding = binding
    }
    next.updated_at = new Date(this.now()).toISOString().replace(/\.\d{3}Z$/, 'Z')
    this.operators.set(op.id, next)
    return { status: 200, headers: JSON_HEADERS, body: next }
  }
}
