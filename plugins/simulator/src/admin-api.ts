import type { IncomingMessage, ServerResponse } from 'node:http'
import { formatError, isNgrokdError, type OperatorCreate } from '@ngrokd/core'
import { BodyError, isLoopback, readJsonBody, sendJson } from './http-util.js'
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

/** What the admin interface can do; `CloudSimulator` implements it. */
export interface SimulatorAdmin {
  readonly apiUrl: string
  readonly apiKey: string
  readonly ingressEndpoint: string
  readonly ingressPort: number
  readonly caCertPem: string
  addEndpoint(input: AddEndpointInput): EndpointObject
  removeEndpoint(id: string): boolean
  listEndpoints(): EndpointObject[]
  listOperators(): OperatorObject[]
  addOperator(input: OperatorCreate): OperatorObject
  removeOperator(id: string): boolean
  injectApiFault(fault: ApiFault): void
  injectIngressFault(fault: IngressFault): void
  resetFaults(): void
  stats(): SimulatorStats
  resetStats(): void
  apiRequests(): ApiRequestRecord[]
  connRequests(): ConnRequestRecord[]
  setCertValidity(ms: number): void
  setBindingsEnabled(enabled: boolean): void
  setIngressEndpoint(endpoint: string): void
  setClockOffset(ms: number): void
  setApiKey(key: string): void
}

/**
 * The admin interface over HTTP under `adminUrl`, for tests in another process (answers loopback clients
 * only). Every route, body and answer is documented in the package README's "Admin API" section, which
 * ships with the package: keep the two in step. Errors are `{ "error": message, "code"?: NGROKD_ERR_… }`
 * with status 400, 403, 404 or 500.
 */
export async function handleAdmin(req: IncomingMessage, res: ServerResponse, url: URL, admin: SimulatorAdmin): Promise<void> {
  if (!isLoopback(req.socket.remoteAddress)) {
    req.resume()
    sendJson(res, 403, { error: 'the simulator admin interface answers loopback clients only' })
    return
  }
  const path = url.pathname.replace(/\/+$/, '')
  const method = req.method ?? 'GET'
  const done = (status: number, body?: unknown) => {
    if (body === undefined) {
      res.writeHead(status)
      res.end()
    } else sendJson(res, status, body)
  }
  try {
    let m: RegExpExecArray | null
    if (path === '/_admin' && method === 'GET') {
      return done(200, {
        apiUrl: admin.apiUrl,
        apiKey: admin.apiKey,
        ingressEndpoint: admin.ingressEndpoint,
        ingressPort: admin.ingressPort,
      })
    }
    if (path === '/_admin/ca.pem' && method === 'GET') {
      res.writeHead(200, { 'Content-Type': 'application/x-pem-file' })
      res.end(admin.caCertPem)
      return
    }
    if (path === '/_admin/endpoints' && method === 'GET') return done(200, { endpoints: admin.listEndpoints() })
    if (path === '/_admin/endpoints' && method === 'POST') return done(201, admin.addEndpoint((await readJsonBody(req)) as AddEndpointInput))
    if ((m = /^\/_admin\/endpoints\/([^/]+)$/.exec(path)) && method === 'DELETE') {
      return admin.removeEndpoint(decodeURIComponent(m[1]!)) ? done(204) : done(404, { error: `no endpoint ${m[1]}` })
    }
    if (path === '/_admin/operators' && method === 'GET') return done(200, { operators: admin.listOperators() })
    if (path === '/_admin/operators' && method === 'POST') return done(201, admin.addOperator((await readJsonBody(req)) as OperatorCreate))
    if ((m = /^\/_admin\/operators\/([^/]+)$/.exec(path)) && method === 'DELETE') {
      return admin.removeOperator(decodeURIComponent(m[1]!)) ? done(204) : done(404, { error: `no operator ${m[1]}` })
    }
    if (path === '/_admin/faults/api' && method === 'POST') {
      admin.injectApiFault((await readJsonBody(req)) as ApiFault)
      return done(204)
    }
    if (path === '/_admin/faults/ingress' && method === 'POST') {
      admin.injectIngressFault((await readJsonBody(req)) as IngressFault)
      return done(204)
    }
    if (path === '/_admin/faults' && method === 'DELETE') {
      admin.resetFaults()
      return done(204)
    }
    if (path === '/_admin/stats' && method === 'GET') return done(200, admin.stats())
    if (path === '/_admin/stats' && method === 'DELETE') {
      admin.resetStats()
      return done(204)
    }
    if (path === '/_admin/requests' && method === 'GET') return done(200, { requests: admin.apiRequests() })
    if (path === '/_admin/conn-requests' && method === 'GET') return done(200, { connRequests: admin.connRequests() })
    if (path === '/_admin/settings' && method === 'PATCH') {
      const body = (await readJsonBody(req)) as { certValidityMs?: unknown; bindingsEnabled?: unknown; ingressEndpoint?: unknown; clockOffsetMs?: unknown; apiKey?: unknown }
      if (body.certValidityMs !== undefined) admin.setCertValidity(Number(body.certValidityMs))
      if (body.bindingsEnabled !== undefined) admin.setBindingsEnabled(body.bindingsEnabled === true)
      if (body.ingressEndpoint !== undefined) admin.setIngressEndpoint(body.ingressEndpoint as string)
      if (body.clockOffsetMs !== undefined) admin.setClockOffset(body.clockOffsetMs as number)
      if (body.apiKey !== undefined) admin.setApiKey(body.apiKey as string)
      return done(204)
    }
    req.resume()
    return done(404, { error: `no admin route ${method} ${path}` })
  } catch (e) {
    req.resume()
    if (e instanceof BodyError) return done(400, { error: e.message })
    if (isNgrokdError(e)) return done(400, { error: formatError(e), code: e.code })
    return done(500, { error: e instanceof Error ? e.message : String(e) })
  }
}
