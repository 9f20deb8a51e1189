import assert from 'node:assert/strict'
import { X509Certificate, generateKeyPairSync } from 'node:crypto'
import { request as httpsRequest } from 'node:https'
import { after, before, describe, it } from 'node:test'
import type { TLSSocket } from 'node:tls'
import { isNgrokdError, makeCsr } from '@ngrokd/core'
import { CloudSimulator } from './cloud-simulator.js'
import type { ErrorReplyBody } from './ngrok-errors.js'
import type { EndpointObject, OperatorObject } from './types.js'

interface Reply<T = unknown> {
  status: number
  headers: Headers
  body: T
}

async function call<T = unknown>(
  sim: CloudSimulator,
  method: string,
  path: string,
  o: { body?: unknown; headers?: Record<string, string>; auth?: boolean } = {},
): Promise<Reply<T>> {
  const headers: Record<string, string> = { 'Ngrok-Version': '2', 'User-Agent': 'ngrokd-test/0' }
  if (o.auth !== false) headers.Authorization = `Bearer ${sim.apiKey}`
  if (o.body !== undefined) headers['Content-Type'] = 'application/json'
  Object.assign(headers, o.headers)
  for (const [k, v] of Object.entries(headers)) if (v === '') delete headers[k]
  const url = path.startsWith('http') ? path : `${sim.apiUrl}${path}`
  const res = await fetch(url, { method, headers, ...(o.body === undefined ? {} : { body: JSON.stringify(o.body) }) })
  const text = await res.text()
  return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : undefined) as T }
}

function assertNgrokError(r: Reply, status: number, code: number): void {
  assert.equal(r.status, status)
  const b = r.body as ErrorReplyBody
  assert.equal(b.error_code, `ERR_NGROK_${code}`)
  assert.equal(b.status_code, status)
  assert.equal(typeof b.msg, 'string')
  assert.ok(b.msg.length > 0)
  assert.match(b.details.operation_id, /^op_[0-9A-Za-z]{27}$/)
}

const newKey = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey

function registerBody(extra: Record<string, unknown> = {}) {
  return {
    description: 'ngrokd test',
    metadata: '{"machine_id":"m-1"}',
    enabled_features: ['bindings'],
    region: 'global',
    binding: { endpoint_selectors: ['true'], csr: makeCsr(newKey()) },
    ...extra,
  }
}

describe('simulator REST API', () => {
  let sim: CloudSimulator
  before(async () => {
    sim = await CloudSimulator.start()
  })
  after(async () => {
    await sim.stop()
  })

  describe('authentication and version header', () => {
    it('401 ERR_NGROK_200 without Authorization', async () => {
      assertNgrokError(await call(sim, 'GET', '/kubernetes_operators', { auth: false }), 401, 200)
    })
    it('401 ERR_NGROK_201 for a header that is not Bearer', async () => {
      assertNgrokError(await call(sim, 'GET', '/kubernetes_operators', { headers: { Authorization: `Token ${sim.apiKey}` } }), 401, 201)
    })
    it('401 ERR_NGROK_203 for a wrong key', async () => {
      assertNgrokError(await call(sim, 'GET', '/kubernetes_operators', { headers: { Authorization: 'Bearer nope' } }), 401, 203)
    })
    it('400 ERR_NGROK_218 without Ngrok-Version, 217 for another version', async () => {
      assertNgrokError(await call(sim, 'GET', '/kubernetes_operators', { headers: { 'Ngrok-Version': '' } }), 400, 218)
      assertNgrokError(await call(sim, 'GET', '/kubernetes_operators', { headers: { 'Ngrok-Version': '1' } }), 400, 217)
    })
    it('404 for an unknown path and 405 for a wrong method, as ngrok error bodies', async () => {
      assertNgrokError(await call(sim, 'GET', '/nope'), 404, 404)
      const r = await call(sim, 'PUT', '/kubernetes_operators')
      assertNgrokError(r, 405, 405)
      assert.match(r.headers.get('allow') ?? '', /GET/)
    })
  })

  describe('kubernetes operators', () => {
    it('registers with a CSR: ids, uri, certificate for the CSR key, ingress endpoint', async () => {
      const key = newKey()
      const r = await call<OperatorObject>(sim, 'POST', '/kubernetes_operators', {
        body: registerBody({ binding: { endpoint_selectors: ['true'], csr: makeCsr(key) } }),
      })
      assert.equal(r.status, 201)
      const op = r.body
      assert.match(op.id, /^k8sop_[0-9A-Za-z]{27}$/)
      assert.equal(op.uri, `${sim.apiUrl}/kubernetes_operators/${op.id}`)
      assert.equal(op.description, 'ngrokd test')
      assert.equal(op.metadata, '{"machine_id":"m-1"}')
      assert.deepEqual(op.enabled_features, ['bindings'])
      assert.equal(op.region, 'global')
      assert.deepEqual(op.binding!.endpoint_selectors, ['true'])
      assert.equal(op.binding!.ingress_endpoint, `localhost:${sim.ingressPort}`)
      assert.match(op.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)
      const cert = new X509Certificate(op.binding!.cert.cert)
      assert.ok(cert.checkPrivateKey(key))
      assert.ok(cert.verify(new X509Certificate(sim.caRootCertPem).publicKey)) // client certificates come from the root
      assert.equal(Date.parse(op.binding!.cert.not_after), Date.parse(cert.validTo))
      assert.equal(Date.parse(op.binding!.cert.not_before), Date.parse(cert.validFrom))

      const got = await call<OperatorObject>(sim, 'GET', `/kubernetes_operators/${op.id}`)
      assert.equal(got.status, 200)
      assert.deepEqual(got.body, op)
    })

    it('as ngrok-api-go has them: no binding for an operator without the bindings feature; a PATCH of deployment changes name and version only', async () => {
      const plain = (await call<OperatorObject>(sim, 'POST', '/kubernetes_operators', { body: registerBody({ enabled_features: [], binding: undefined }) })).body
      assert.deepEqual(plain.enabled_features, [])
      assert.equal('binding' in plain, false, 'binding is omitted ("if enabled", omitempty)')
      const op = (await call<OperatorObject>(sim, 'POST', '/kubernetes_operators', { body: registerBody({ deployment: { name: 'ngrokd', namespace: 'ns-1', version: '1.0.0' } }) })).body
      assert.equal(op.deployment.namespace, 'ns-1')
      const r = await call<OperatorObject>(sim, 'PATCH', `/kubernetes_operators/${op.id}`, { body: { deployment: { version: '1.0.1' } } })
      assert.deepEqual([r.body.deployment.name, r.body.deployment.namespace, r.body.deployment.version], ['ngrokd', 'ns-1', '1.0.1'])
    })

    it('PATCH with a new CSR renews the certificate; other fields stay', async () => {
      const op = (await call<OperatorObject>(sim, 'POST', '/kubernetes_operators', { body: registerBody() })).body
      const key2 = newKey()
      const r = await call<OperatorObject>(sim, 'PATCH', `/kubernetes_operators/${op.id}`, { body: { binding: { csr: makeCsr(key2) } } })
      assert.equal(r.status, 200)
      const c1 = new X509Certificate(op.binding!.cert.cert)
      const c2 = new X509Certificate(r.body.binding!.cert.cert)
      assert.notEqual(c1.serialNumber, c2.serialNumber)
      assert.ok(c2.checkPrivateKey(key2))
      assert.equal(r.body.description, op.description)
      assert.deepEqual(r.body.binding!.endpoint_selectors, ['true'])

      const r2 = await call<OperatorObject>(sim, 'PATCH', `/kubernetes_operators/${op.id}`, { body: { description: 'renamed' } })
      assert.equal(r2.body.description, 'renamed')
      assert.equal(r2.body.binding!.cert.cert, r.body.binding!.cert.cert)
    })

    it('refuses a bad or tampered CSR with 400 ERR_NGROK_19002 and creates nothing', async () => {
      const before = sim.listOperators().length
      assertNgrokError(
        await call(sim, 'POST', '/kubernetes_operators', { body: registerBody({ binding: { csr: 'not a csr' } }) }),
        400,
        19002,
      )
      const csr = makeCsr(newKey())
      const lines = csr.split('\n')
      const i = lines.length - 3 // a line inside the signature
      lines[i] = lines[i]!.slice(0, 10) + (lines[i]![10] === 'A' ? 'B' : 'A') + lines[i]!.slice(11)
      assertNgrokError(
        await call(sim, 'POST', '/kubernetes_operators', { body: registerBody({ binding: { csr: lines.join('\n') } }) }),
        400,
        19002,
      )
      assert.equal(sim.listOperators().length, before)
    })

    it('validates field types with 400s', async () => {
      assertNgrokError(await call(sim, 'POST', '/kubernetes_operators', { body: registerBody({ metadata: { a: 1 } }) }), 400, 400)
      assertNgrokError(await call(sim, 'POST', '/kubernetes_operators', { body: registerBody({ enabled_features: ['warp'] }) }), 400, 400)
      assertNgrokError(await call(sim, 'POST', '/kubernetes_operators', { body: [1] }), 400, 400)
      const raw = await fetch(`${sim.apiUrl}/kubernetes_operators`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${sim.apiKey}`, 'Ngrok-Version': '2', 'Content-Type': 'text/plain' },
        body: '{}',
      })
      assert.equal(raw.status, 400)
      assert.equal(((await raw.json()) as ErrorReplyBody).error_code, 'ERR_NGROK_400')
    })

    it('DELETE answers 204, then the id is 404 everywhere', async () => {
      const op = (await call<OperatorObject>(sim, 'POST', '/kubernetes_operators', { body: registerBody() })).body
      const d = await call(sim, 'DELETE', `/kubernetes_operators/${op.id}`)
      assert.equal(d.status, 204)
      assert.equal(d.body, undefined)
      assertNgrokError(await call(sim, 'GET', `/kubernetes_operators/${op.id}`), 404, 404)
      assertNgrokError(await call(sim, 'PATCH', `/kubernetes_operators/${op.id}`, { body: {} }), 404, 404)
      assertNgrokError(await call(sim, 'DELETE', `/kubernetes_operators/${op.id}`), 404, 404)
      assertNgrokError(await call(sim, 'GET', `/kubernetes_operators/${op.id}/bound_endpoints`), 404, 404)
      assert.ok(!sim.listOperators().some((o) => o.id === op.id))
    })

    it('lists operators under `operators`, newest first', async () => {
      const a = (await call<OperatorObject>(sim, 'POST', '/kubernetes_operators', { body: registerBody() })).body
      const b = (await call<OperatorObject>(sim, 'POST', '/kubernetes_operators', { body: registerBody() })).body
      const r = await call<{ operators: OperatorObject[]; uri: string; next_page_uri: string | null }>(sim, 'GET', '/kubernetes_operators')
      assert.equal(r.status, 200)
      const ids = r.body.operators.map((o) => o.id)
      assert.ok(ids.indexOf(b.id) < ids.indexOf(a.id) && ids.indexOf(b.id) >= 0)
      assert.equal(r.body.uri, `${sim.apiUrl}/kubernetes_operators`)
      assert.equal(r.body.next_page_uri, null)
    })

    it('refuses bindings with ERR_NGROK_19002 when the account is not enabled for them', async () => {
      sim.setBindingsEnabled(false)
      try {
        assertNgrokError(await call(sim, 'POST', '/kubernetes_operators', { body: registerBody() }), 400, 19002)
      } finally {
        sim.setBindingsEnabled(true)
      }
    })
  })

  describe('bound endpoints', () => {
    it('pages 250 endpoints as 100 + 100 + 50 with absolute next_page_uri, null on the last page', async () => {
      const s = await CloudSimulator.start()
      try {
        const added = new Set<string>()
        for (let i = 0; i < 250; i++) added.add(s.addEndpoint({ url: `http://svc${i}.prod` }).id)
        const op = (await call<OperatorObject>(s, 'POST', '/kubernetes_operators', { body: registerBody() })).body
        type Page = { endpoints: EndpointObject[]; uri: string; next_page_uri: string | null }
        let next: string | null = `/kubernetes_operators/${op.id}/bound_endpoints`
        const pages: Page[] = []
        while (next) {
          const r: Reply<Page> = await call<Page>(s, 'GET', next)
          assert.equal(r.status, 200)
          pages.push(r.body)
          next = r.body.next_page_uri
          if (next) assert.ok(next.startsWith(`${s.apiUrl}/kubernetes_operators/${op.id}/bound_endpoints?`), next)
        }
        assert.deepEqual(
          pages.map((p) => p.endpoints.length),
          [100, 100, 50],
        )
        assert.equal(pages[0]!.uri, `${s.apiUrl}/kubernetes_operators/${op.id}/bound_endpoints`)
        const ids = pages.flatMap((p) => p.endpoints.map((e) => e.id))
        assert.equal(new Set(ids).size, 250)
        assert.deepEqual(new Set(ids), added)
        assert.deepEqual(ids, [...ids].sort().reverse(), 'newest first, ids descending')

        const small = await call<Page>(s, 'GET', `/kubernetes_operators/${op.id}/bound_endpoints?limit=7`)
        assert.equal(small.body.endpoints.length, 7)
        assert.match(small.body.next_page_uri ?? '', /limit=7/)
        assertNgrokError(await call(s, 'GET', `/kubernetes_operators/${op.id}/bound_endpoints?limit=101`), 400, 400)
        assertNgrokError(await call(s, 'GET', `/kubernetes_operators/${op.id}/bound_endpoints?limit=abc`), 400, 400)
        assertNgrokError(await call(s, 'GET', `/kubernetes_operators/${op.id}/bound_endpoints?limit=0`), 400, 400)
      } finally {
        await s.stop()
      }
    })

    it('returns ngrok endpoint objects', async () => {
      const ep = sim.addEndpoint({ url: 'tcp://db.prod:5432', metadata: 'm', description: 'd' })
      const op = (await call<OperatorObject>(sim, 'POST', '/kubernetes_operators', { body: registerBody() })).body
      const r = await call<{ endpoints: EndpointObject[] }>(sim, 'GET', `/kubernetes_operators/${op.id}/bound_endpoints`)
      const got = r.body.endpoints.find((e) => e.id === ep.id)
      assert.ok(got)
      assert.match(got.id, /^ep_[0-9A-Za-z]{27}$/)
      assert.equal(got.url, 'tcp://db.prod:5432')
      assert.equal(got.public_url, 'tcp://db.prod:5432')
      assert.equal(got.proto, 'tcp')
      assert.equal(got.host, 'db.prod')
      assert.equal(got.port, 5432)
      assert.equal(got.hostport, 'db.prod:5432')
      assert.deepEqual(got.bindings, ['kubernetes'])
      assert.equal(got.pooling_enabled, false)
      assert.equal(got.metadata, 'm')
      assert.equal(got.description, 'd')
      assert.equal(got.type, 'agent')
      assert.equal(got.scheme, 'tcp')
      assert.equal(got.principal.id, op.principal.id)
      assert.deepEqual([got.name, got.region, got.traffic_policy], ['', '', ''])
      assert.match(got.updated_at, /Z$/)
      sim.removeEndpoint(ep.id)
    })

    it('applies the operator endpoint selectors', async () => {
      const s = await CloudSimulator.start()
      try {
        const prod = s.addEndpoint({ url: 'http://api.prod' })
        s.addEndpoint({ url: 'http://api.staging' })
        const body = registerBody({ binding: { endpoint_selectors: ["endpoint.host.endsWith('.prod')"], csr: makeCsr(newKey()) } })
        const op = (await call<OperatorObject>(s, 'POST', '/kubernetes_operators', { body })).body
        const r = await call<{ endpoints: EndpointObject[] }>(s, 'GET', `/kubernetes_operators/${op.id}/bound_endpoints`)
        assert.deepEqual(
          r.body.endpoints.map((e) => e.id),
          [prod.id],
        )
        const bad = registerBody({ binding: { endpoint_selectors: ['endpoint.host ~ 1'], csr: makeCsr(newKey()) } })
        assertNgrokError(await call(s, 'POST', '/kubernetes_operators', { body: bad }), 400, 19002)
      } finally {
        await s.stop()
      }
    })
  })

  describe('rate limit', () => {
    it('answers 429 ERR_NGROK_226 with a Retry-After once the account made its requests of the rolling minute; 0 is no limit', async () => {
      const s = await CloudSimulator.start({ rateLimitPerMinute: 3 })
      try {
        for (let i = 0; i < 3; i++) assert.equal((await call(s, 'GET', '/kubernetes_operators')).status, 200)
        const limited = await call(s, 'GET', '/kubernetes_operators')
        assertNgrokError(limited, 429, 226)
        const retryAfter = Number(limited.headers.get('retry-after'))
        assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`)
        assert.equal((await call(s, 'GET', '/_admin/stats')).status, 200, 'the admin API is not the account\'s')
      } finally {
        await s.stop()
      }
      const unlimited = await CloudSimulator.start({ rateLimitPerMinute: 0 })
      try {
        for (let i = 0; i < 130; i++) assert.equal((await call(unlimited, 'GET', '/kubernetes_operators')).status, 200)
      } finally {
        await unlimited.stop()
      }
      await assert.rejects(CloudSimulator.start({ rateLimitPerMinute: -1 }), /rateLimitPerMinute/)
    })

    it('is ngrok\'s 120 a minute by default', async () => {
      const s = await CloudSimulator.start()
      try {
        const statuses: number[] = []
        for (let i = 0; i < 121; i++) statuses.push((await call(s, 'GET', '/kubernetes_operators')).status)
        assert.deepEqual([statuses.filter((x) => x === 200).length, statuses.at(-1)], [120, 429])
      } finally {
        await s.stop()
      }
    })
  })

  describe('fault injection and counters', () => {
    it('answers the next N requests with 429 + Retry-After, then recovers', async () => {
      sim.injectApiFault({ kind: 'rate-limit', count: 2, retryAfterSeconds: 7 })
      for (let i = 0; i < 2; i++) {
        const r = await call(sim, 'GET', '/kubernetes_operators')
        assertNgrokError(r, 429, 226)
        assert.equal(r.headers.get('retry-after'), '7')
      }
      assert.equal((await call(sim, 'GET', '/kubernetes_operators')).status, 200)
    })

    it('limits a 5xx fault to a path prefix', async () => {
      sim.injectApiFault({ kind: 'server-error', status: 503, count: 1, pathPrefix: '/kubernetes_operators/' })
      assert.equal((await call(sim, 'GET', '/kubernetes_operators')).status, 200)
      const op = sim.listOperators()[0]!
      assertNgrokError(await call(sim, 'GET', `/kubernetes_operators/${op.id}`), 503, 500)
      assert.equal((await call(sim, 'GET', `/kubernetes_operators/${op.id}`)).status, 200)
    })

    it('delays a request by the injected latency (a later request overtakes it)', async () => {
      sim.injectApiFault({ kind: 'latency', ms: 600_000, count: 1, pathPrefix: '/kubernetes_operators' })
      let slowDone = false
      const slow = call(sim, 'GET', '/kubernetes_operators').then(
        () => (slowDone = true),
        () => (slowDone = true),
      )
      const fast = await call(sim, 'GET', '/kubernetes_operators')
      assert.equal(fast.status, 200)
      assert.equal(slowDone, false)
      sim.resetFaults()
      void slow
    })

    it('counts requests per path and keeps the headers clients sent', async () => {
      const s = await CloudSimulator.start()
      try {
        await call(s, 'GET', '/kubernetes_operators')
        await call(s, 'GET', '/kubernetes_operators?limit=5')
        await call(s, 'GET', '/kubernetes_operators', { auth: false })
        const st = s.stats()
        assert.equal(st.api.byPath['/kubernetes_operators'], 3)
        assert.equal(st.api.total, 3)
        assert.equal(st.api.byStatus['401'], 1)
        const reqs = s.apiRequests()
        assert.equal(reqs.length, 3)
        assert.equal(reqs[1]!.query, '?limit=5')
        assert.equal(reqs[0]!.headers['user-agent'], 'ngrokd-test/0')
        s.resetStats()
        assert.equal(s.stats().api.total, 0)
      } finally {
        await s.stop()
      }
    })
  })

  describe('admin over HTTP', () => {
    it('adds, lists and removes endpoints; injects faults; reports stats', async () => {
      const s = await CloudSimulator.start()
      try {
        const post = (path: string, body: unknown) =>
          fetch(`${s.adminUrl}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
        const r = await post('/endpoints', { url: 'http://web.prod', description: 'x' })
        assert.equal(r.status, 201)
        const ep = (await r.json()) as EndpointObject
        assert.equal(ep.url, 'http://web.prod')
        const list = (await (await fetch(`${s.adminUrl}/endpoints`)).json()) as { endpoints: EndpointObject[] }
        assert.deepEqual(
          list.endpoints.map((e) => e.id),
          [ep.id],
        )
        const bad = await post('/endpoints', { url: 'http://a.b.c' })
        assert.equal(bad.status, 400)
        assert.equal(((await bad.json()) as { code: string }).code, 'NGROKD_ERR_ENDPOINT_INVALID')

        assert.equal((await post('/faults/api', { kind: 'rate-limit', count: 1 })).status, 204)
        assertNgrokError(await call(s, 'GET', '/kubernetes_operators'), 429, 226)
        assert.equal((await post('/faults/api', { kind: 'server-error', count: 5 })).status, 204)
        assert.equal((await fetch(`${s.adminUrl}/faults`, { method: 'DELETE' })).status, 204)
        assert.equal((await call(s, 'GET', '/kubernetes_operators')).status, 200)

        const stats = (await (await fetch(`${s.adminUrl}/stats`)).json()) as { api: { byPath: Record<string, number> } }
        assert.equal(stats.api.byPath['/kubernetes_operators'], 2)
        assert.equal(stats.api.byPath['/_admin/stats'], undefined)

        assert.equal((await fetch(`${s.adminUrl}/endpoints/${ep.id}`, { method: 'DELETE' })).status, 204)
        assert.equal((await fetch(`${s.adminUrl}/endpoints/${ep.id}`, { method: 'DELETE' })).status, 404)
        assert.equal(s.listEndpoints().length, 0)

        const info = (await (await fetch(s.adminUrl)).json()) as { apiKey: string; ingressEndpoint: string }
        assert.equal(info.apiKey, s.apiKey)
        assert.equal(info.ingressEndpoint, s.ingressEndpoint)
        assert.equal(await (await fetch(`${s.adminUrl}/ca.pem`)).text(), s.caCertPem)

        const settings = await fetch(`${s.adminUrl}/settings`, {
          method: 'PATCH',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ certValidityMs: 5000 }),
        })
        assert.equal(settings.status, 204)
        const op = (await call<OperatorObject>(s, 'POST', '/kubernetes_operators', { body: registerBody() })).body
        const life = Date.parse(op.binding!.cert.not_after) - Date.now()
        assert.ok(life <= 5000, `validity ${life}`)
      } finally {
        await s.stop()
      }
    })
  })

  describe('changes behind a client: other operators, a moved ingress, the clock', () => {
    it('addOperator registers as another client would, without an API request; a bad body is NGROKD_ERR_CONFIG_INVALID', async () => {
      const s = await CloudSimulator.start()
      try {
        const other = s.addOperator({ metadata: '{"owned-by":"ngrok-operator"}', enabled_features: ['bindings'] })
        assert.match(other.id, /^k8sop_[0-9A-Za-z]{27}$/)
        assert.equal(s.apiRequests().length, 0)
        const list = (await call<{ operators: OperatorObject[] }>(s, 'GET', '/kubernetes_operators')).body
        assert.deepEqual(list.operators.map((o) => [o.id, o.metadata]), [[other.id, '{"owned-by":"ngrok-operator"}']])
        assert.throws(() => s.addOperator({ enabled_features: ['nope'] }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID') && /enabled_features/.test(e.message))

        const r = await fetch(`${s.adminUrl}/operators`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ description: 'by admin' }) })
        assert.equal(r.status, 201)
        assert.equal(((await r.json()) as OperatorObject).description, 'by admin')
        assert.equal(s.listOperators().length, 2)
      } finally {
        await s.stop()
      }
    })

    it('setIngressEndpoint changes what every operator reply names; empty names none', async () => {
      const s = await CloudSimulator.start()
      try {
        const op = (await call<OperatorObject>(s, 'POST', '/kubernetes_operators', { body: registerBody() })).body
        assert.equal(op.binding!.ingress_endpoint, s.ingressEndpoint)
        s.setIngressEndpoint('binding-ingress-2.example.test:8443')
        assert.equal(s.ingressEndpoint, 'binding-ingress-2.example.test:8443')
        const renewed = (await call<OperatorObject>(s, 'PATCH', `/kubernetes_operators/${op.id}`, { body: { binding: { csr: makeCsr(newKey()) } } })).body
        assert.equal(renewed.binding!.ingress_endpoint, 'binding-ingress-2.example.test:8443')
        const settings = await fetch(`${s.adminUrl}/settings`, { method: 'PATCH', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ ingressEndpoint: '' }) })
        assert.equal(settings.status, 204)
        assert.equal((await call<OperatorObject>(s, 'GET', `/kubernetes_operators/${op.id}`)).body.binding!.ingress_endpoint, '')
        assert.throws(() => s.setIngressEndpoint('a b'), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'))
      } finally {
        await s.stop()
      }
    })

    it('a clock offset moves issue times and stamps; over admin too', async () => {
      const DAY = 86_400_000
      const s = await CloudSimulator.start({ clockOffsetMs: 100 * DAY, certValidityMs: 10 * DAY })
      try {
        const before = Date.now()
        const op = (await call<OperatorObject>(s, 'POST', '/kubernetes_operators', { body: registerBody() })).body
        const issued = new X509Certificate(op.binding!.cert.cert)
        // whole seconds in the certificate; a minute of clock skew before the issue time
        const notBefore = Date.parse(issued.validFrom)
        assert.ok(notBefore >= before + 100 * DAY - 61_000 && notBefore <= Date.now() + 100 * DAY - 59_000, issued.validFrom)
        assert.equal(Date.parse(issued.validTo) - notBefore, 10 * DAY + 60_000)
        assert.ok(Date.parse(op.created_at) >= before + 100 * DAY - 1000, op.created_at)

        const settings = await fetch(`${s.adminUrl}/settings`, { method: 'PATCH', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ clockOffsetMs: 0 }) })
        assert.equal(settings.status, 204)
        const again = (await call<OperatorObject>(s, 'PATCH', `/kubernetes_operators/${op.id}`, { body: { binding: { csr: makeCsr(newKey()) } } })).body
        assert.ok(Date.parse(again.binding!.cert.not_after) <= Date.now() + 10 * DAY, again.binding!.cert.not_after)
        const bad = await fetch(`${s.adminUrl}/settings`, { method: 'PATCH', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ clockOffsetMs: 'soon' }) })
        assert.equal(bad.status, 400)
        assert.equal(((await bad.json()) as { code: string }).code, 'NGROKD_ERR_CONFIG_INVALID')
      } finally {
        await s.stop()
      }
    })

    it('a fault limited to a method leaves the others alone', async () => {
      const s = await CloudSimulator.start()
      try {
        s.injectApiFault({ kind: 'server-error', status: 503, method: 'GET', count: 1 })
        assert.equal((await call(s, 'POST', '/kubernetes_operators', { body: registerBody() })).status, 201)
        assertNgrokError(await call(s, 'GET', '/kubernetes_operators'), 503, 500)
        assert.equal((await call(s, 'GET', '/kubernetes_operators')).status, 200)
      } finally {
        await s.stop()
      }
    })
  })

  it('can advertise an ingress endpoint without a port', async () => {
    const s = await CloudSimulator.start({ advertisedIngressEndpoint: 'localhost', apiKey: 'k1' })
    try {
      assert.equal(s.apiKey, 'k1')
      const op = (await call<OperatorObject>(s, 'POST', '/kubernetes_operators', { body: registerBody() })).body
      assert.equal(op.binding!.ingress_endpoint, 'localhost')
    } finally {
      await s.stop()
    }
  })

  it('serves the API over HTTPS too for the names given in apiTls, with a certificate from its CA', async () => {
    const s = await CloudSimulator.start({ apiTls: { names: ['api.ngrok.com'] } })
    try {
      assert.match(s.apiUrl, /^http:\/\/127\.0\.0\.1:\d+$/, 'plain HTTP stays where it was')
      assert.equal((await call(s, 'GET', '/kubernetes_operators')).status, 200)
      const created = await call<OperatorObject>(s, 'POST', '/kubernetes_operators', { body: registerBody() })
      assert.equal(created.body.uri, `${s.apiUrl}/kubernetes_operators/${created.body.id}`, 'asked over HTTP, named on HTTP')
      assert.match(s.apiHttpsUrl!, /^https:\/\/127\.0\.0\.1:\d+$/)
      const get = (ca: string[] | undefined, servername: string) =>
        new Promise<{ status: number; peer: X509Certificate; body: { uri?: string; operators?: OperatorObject[] } }>((resolve, reject) => {
          const req = httpsRequest(
            `${s.apiHttpsUrl}/kubernetes_operators`,
            { servername, headers: { Authorization: `Bearer ${s.apiKey}`, 'Ngrok-Version': '2' }, ...(ca ? { ca } : {}) },
            (res) => {
              const peer = new X509Certificate((res.socket as TLSSocket).getPeerCertificate().raw)
              let text = ''
              res.setEncoding('utf8').on('data', (d: string) => (text += d))
              res.on('end', () => resolve({ status: res.statusCode ?? 0, peer, body: JSON.parse(text) as { uri?: string; operators?: OperatorObject[] } }))
            },
          )
          req.on('error', reject).end()
        })
      const ok = await get([s.caCertPem, s.caRootCertPem], 'api.ngrok.com')
      assert.equal(ok.status, 200)
      assert.equal(ok.body.uri, `${s.apiHttpsUrl}/kubernetes_operators`, 'a list names its pages on the origin it was asked on (next_page_uri too)')
      assert.deepEqual(
        ok.body.operators?.map((o) => o.uri),
        [`${s.apiHttpsUrl}/kubernetes_operators/${created.body.id}`],
        'and the objects in it',
      )
      assert.equal(ok.peer.checkHost('api.ngrok.com'), 'api.ngrok.com')
      assert.equal(ok.peer.checkIP('127.0.0.1'), '127.0.0.1', 'the listen address is in the certificate too')
      assert.ok(ok.peer.checkIssued(new X509Certificate(s.caCertPem)), 'issued by the intermediate clients are given')
      await assert.rejects(get(undefined, 'api.ngrok.com'), /certificate/, 'not trusted without the simulator CA')
      await assert.rejects(get([s.caCertPem, s.caRootCertPem], 'other.example'), /altnames|Hostname/, 'only for the names given')
    } finally {
      await s.stop()
    }
  })

  it('refuses apiTls names that are not DNS names, naming the option', async () => {
    await assert.rejects(CloudSimulator.start({ apiTls: { names: [] } }), (e: unknown) => isNgrokdError(e) && /apiTls\.names/.test(e.message))
    await assert.rejects(CloudSimulator.start({ apiTls: { names: ['a b'] } }), (e: unknown) => isNgrokdError(e) && /apiTls\.names/.test(e.message))
  })
  it('has no HTTPS API unless asked', () => {
    assert.equal(sim.apiHttpsUrl, undefined)
  })
})
