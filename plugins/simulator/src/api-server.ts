import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { Socket } from 'node:net'
import { TLSSocket } from 'node:tls'
import type { Logger } from '@ngrokd/core'
import { handleAdmin, type SimulatorAdmin } from './admin-api.js'
import { BodyError, readJsonBody, sendJson, sleep } from './http-util.js'
import { ApiErrorReply } from './ngrok-errors.js'
import type { SimulatorState } from './simulator-state.js'

const PAGE_LIMIT_MAX = 100 // PROTOCOL.md §2: `limit` default and max 100

export interface ApiServerOptions {
  state: SimulatorState
  apiKey: string
  host: string
  port: number
  /** Also serve the API over HTTPS on `port` of the same host (0 = a free one), with this key pair (PEM, chain after the leaf). */
  tls?: { certPem: string; keyPem: string; port: number }
  logger: Logger
  /** Requests the account may make in any rolling minute (ngrok's: 120, PROTOCOL.md §2); 0 = no limit. */
  rateLimitPerMinute: number
}

/** ngrok's rate-limit window (PROTOCOL.md §2: "per rolling minute"). */
const RATE_WINDOW_MS = 60_000

type Handler = (ctx: { req: IncomingMessage; params: string[]; query: URLSearchParams; path: string }) => Promise<RouteResult>
interface RouteResult {
  status: number
  body?: unknown
}

/**
 * The ngrok REST API of PROTOCOL.md §2 over plain HTTP (and, with `tls`, over HTTPS on a second port), plus `/_admin/…` for tests (loopback only,
 * no auth). Every error is ngrok's error body.
 */
export class ApiServer {
  private readonly sockets = new Set<Socket>()
  private readonly routes: Array<{ method: string; pattern: RegExp; handler: Handler }> = []
  /** Serves `/_admin/…` once set. */
  admin: SimulatorAdmin | undefined
  /** When each API request of the last {@link RATE_WINDOW_MS} came, oldest first. */
  private readonly recent: number[] = []
  /** The one key the API accepts; replacing it revokes the one before. */
  apiKey: string

  private constructor(
    private readonly servers: Server[],
    private readonly options: ApiServerOptions,
    /** `http://host:port`, no trailing slash. */
    readonly url: string,
    /** `https://host:port` with `tls`, no trailing slash. */
    readonly httpsUrl: string | undefined,
  ) {
    this.apiKey = options.apiKey
    const s = options.state
    const op = '/kubernetes_operators'
    const id = '([A-Za-z0-9_]+)'
    this.route('POST', `^${op}$`, async ({ req }) => ({ status: 201, body: s.operatorObject(s.createOperator(await this.body(req)), this.originOf(req)) }))
    this.route('GET', `^${op}$`, async ({ req, query, path }) => {
      const { limit, beforeId } = pageParams(query)
      const page = s.page([...s.operators.values()], limit, beforeId)
      const origin = this.originOf(req)
      return { status: 200, body: this.listBody('operators', page.items.map((o) => s.operatorObject(o, origin)), origin + path, limit, page.nextBeforeId) }
    })
    this.route('GET', `^${op}/${id}$`, async ({ req, params }) => ({ status: 200, body: s.operatorObject(s.getOperator(params[0]!), this.originOf(req)) }))
    this.route('PATCH', `^${op}/${id}$`, async ({ req, params }) => ({
      status: 200,
      body: s.operatorObject(s.updateOperator(params[0]!, await this.body(req)), this.originOf(req)),
    }))
    this.route('DELETE', `^${op}/${id}$`, async ({ params }) => {
      s.deleteOperator(params[0]!)
      return { status: 204 }
    })
    this.route('GET', `^${op}/${id}/bound_endpoints$`, async ({ req, params, query, path }) => {
      const { limit, beforeId } = pageParams(query)
      const page = s.page(s.boundEndpoints(s.getOperator(params[0]!)), limit, beforeId)
      const origin = this.originOf(req)
      return { status: 200, body: this.listBody('endpoints', page.items.map((e) => s.endpointObject(e, origin)), origin + path, limit, page.nextBeforeId) }
    })
    this.route('GET', `^/endpoints/${id}$`, async ({ req, params }) => {
      const ep = s.endpoints.get(params[0]!)
      if (!ep) throw new ApiErrorReply('notFound', `Endpoint '${params[0]}' not found.`)
      return { status: 200, body: s.endpointObject(ep, this.originOf(req)) }
    })
  }

  static async start(options: ApiServerOptions): Promise<ApiServer> {
    const { tls } = options
    const servers: Server[] = [createServer()]
    if (tls) servers.push(createHttpsServer({ cert: tls.certPem, key: tls.keyPem }))
    const urls: string[] = []
    try {
      for (const [i, server] of servers.entries()) urls.push(await listenUrl(server, options.host, i === 0 ? options.port : tls!.port, i === 0 ? 'http' : 'https'))
    } catch (e) {
      for (const server of servers) server.close()
      throw e
    }
    const api = new ApiServer(servers, options, urls[0]!, urls[1])
    for (const server of servers) {
      // a TLS server hands its raw sockets to 'connection' as well: one set closes them all
      server.on('connection', (sock: Socket) => {
        api.sockets.add(sock)
        sock.on('close', () => api.sockets.delete(sock))
      })
      server.on('request', (req: IncomingMessage, res: ServerResponse) => void api.handle(req, res))
    }
    return api
  }

  get port(): number {
    return Number(new URL(this.url).port)
  }

  /** Closes the listener and destroys every open connection. */
  async close(): Promise<void> {
    const closed = Promise.all(this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))))
    for (const s of this.sockets) s.destroy()
    this.sockets.clear()
    await closed
  }

  /** JSON bodies read, for the request log. */
  private readonly bodies = new WeakMap<IncomingMessage, unknown>()

  private route(method: string, pattern: string, handler: Handler): void {
    this.routes.push({ method, pattern: new RegExp(pattern), handler })
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://simulator.invalid')
    const path = url.pathname
    if (path === '/_admin' || path.startsWith('/_admin/')) {
      if (this.admin) await handleAdmin(req, res, url, this.admin)
      else sendJson(res, 503, { error: 'the simulator is still starting' })
      return
    }
    const { state, logger } = this.options
    const receivedAt = Date.now()
    state.stats.api.inFlight++
    res.on('close', () => state.stats.api.inFlight--)
    res.on('finish', () => {
      const body = this.bodies.get(req)
      state.recordRequest({ receivedAt, method: req.method ?? '', path, query: url.search, status: res.statusCode, headers: { ...req.headers }, ...(body === undefined ? {} : { body }) })
    })
    try {
      const { latencyMs, failure } = state.faults.takeApi(req.method ?? 'GET', path)
      if (latencyMs > 0) await sleep(latencyMs)
      if (failure?.kind === 'rate-limit') {
        const retry = String(failure.retryAfterSeconds ?? 1)
        throw new ApiErrorReply('rateLimited', 'You have exceeded your rate limit for API requests. Retry later.', { 'Retry-After': retry })
      }
      if (failure?.kind === 'server-error') {
        throw new ApiErrorReply({ code: 500, status: failure.status ?? 500 }, 'An internal server error occurred.')
      }
      this.authenticate(req)
      this.takeRateSlot()
      const candidates = this.routes.map((r) => ({ r, m: r.pattern.exec(path) })).filter((x) => x.m)
      if (candidates.length === 0) throw new ApiErrorReply('notFound', `The path '${path}' was not found.`)
      const hit = candidates.find((x) => x.r.method === req.method)
      if (!hit) {
        throw new ApiErrorReply('methodNotAllowed', `The method ${req.method} is not allowed on '${path}'.`, {
          Allow: candidates.map((x) => x.r.method).join(', '),
        })
      }
      const result = await hit.r.handler({ req, params: hit.m!.slice(1), query: url.searchParams, path })
      if (result.status === 204) {
        res.writeHead(204)
        res.end()
      } else {
        sendJson(res, result.status, result.body)
      }
    } catch (e) {
      const err =
        e instanceof ApiErrorReply
          ? e
          : e instanceof BodyError
            ? new ApiErrorReply('badRequest', `${e.message}.`)
            : new ApiErrorReply('internal', 'An internal server error occurred.')
      if (!(e instanceof ApiErrorReply) && !(e instanceof BodyError)) logger.error({ err: e, path }, 'simulator: api handler failed')
      if (!res.headersSent) sendJson(res, err.status, err.body(), err.headers)
      else res.destroy()
      // Unread request bodies would otherwise stall a keep-alive connection.
      req.resume()
    }
  }

  /** Counts one request of the account; past the limit, 429 ERR_NGROK_226 with Retry-After until the oldest leaves the window. */
  private takeRateSlot(): void {
    const limit = this.options.rateLimitPerMinute
    if (!(limit > 0)) return
    const now = Date.now()
    while (this.recent.length > 0 && this.recent[0]! <= now - RATE_WINDOW_MS) this.recent.shift()
    if (this.recent.length >= limit) {
      const retryAfter = Math.max(1, Math.ceil((this.recent[0]! + RATE_WINDOW_MS - now) / 1000))
      throw new ApiErrorReply('rateLimited', 'You have exceeded your rate limit for API requests. Retry later.', { 'Retry-After': String(retryAfter) })
    }
    this.recent.push(now)
  }

  private authenticate(req: IncomingMessage): void {
    const auth = req.headers.authorization
    if (auth === undefined || auth === '') {
      throw new ApiErrorReply('authMissing', 'The ngrok API requires that you set the Authorization header for authentication.')
    }
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth)
    if (!m) {
      throw new ApiErrorReply('authMalformed', 'The ngrok API requires Bearer authentication via the Authorization header. It could not parse the header in this request.')
    }
    if (m[1] !== this.apiKey) {
      throw new ApiErrorReply('authInvalid', 'The API authentication you specified is properly formed, but it is invalid.')
    }
    const version = req.headers['ngrok-version']
    if (version === undefined || version === '') {
      throw new ApiErrorReply('versionMissing', 'Your request has not specified an API version. Include the version you wish to use in the Ngrok-Version header. Supported versions: 2.')
    }
    if (version !== '2') {
      throw new ApiErrorReply('versionInvalid', `The provided API version '${String(version)}' is invalid or unsupported. Supported versions: 2.`)
    }
  }

  private async body(req: IncomingMessage): Promise<unknown> {
    const type = req.headers['content-type'] ?? ''
    if (!/^application\/json\b/i.test(type)) {
      req.resume()
      throw new ApiErrorReply('badRequest', `The Content-Type header must be application/json, got '${type}'.`)
    }
    const body = await readJsonBody(req)
    this.bodies.set(req, body)
    return body
  }

  /** A list page at `uri` (absolute): `next_page_uri` on the same origin, which clients follow as it is (PROTOCOL.md §2). */
  private listBody(key: string, items: unknown[], uri: string, limit: number, nextBeforeId: string | null): Record<string, unknown> {
    const next = nextBeforeId === null ? null : `${uri}?${new URLSearchParams({ before_id: nextBeforeId, limit: String(limit) })}`
    return { [key]: items, uri, next_page_uri: next }
  }

  /** The origin the request came in on: the HTTPS listener's for a TLS connection, else the HTTP one's. */
  private originOf(req: IncomingMessage): string {
    return req.socket instanceof TLSSocket && this.httpsUrl ? this.httpsUrl : this.url
  }
}

function pageParams(query: URLSearchParams): { limit: number; beforeId: string | undefined } {
  const raw = query.get('limit')
  let limit = PAGE_LIMIT_MAX
  if (raw !== null) {
    if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new ApiErrorReply('badRequest', `The 'limit' parameter must be a positive integer, got '${raw}'.`)
    limit = Number(raw)
    if (limit > PAGE_LIMIT_MAX) throw new ApiErrorReply('badRequest', `The 'limit' parameter must be at most ${PAGE_LIMIT_MAX}, got ${limit}.`)
  }
  const before = query.get('before_id')
  return { limit, beforeId: before === null || before === '' ? undefined : before }
}

/** Listens on host:port and resolves with the server's `scheme://host:port`. */
async function listenUrl(server: Server, host: string, port: number, scheme: 'http' | 'https'): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host, port }, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const addr = server.address()
  if (addr === null || typeof addr === 'string') throw new Error('api server has no TCP address')
  const shown = addr.family === 'IPv6' || addr.address.includes(':') ? `[${addr.address}]` : addr.address
  return `${scheme}://${shown}:${addr.port}`
}
