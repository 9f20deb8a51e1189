import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { createServer as createHttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { NgrokApiClient, parseRetryAfter } from './ngrok-api-client.js'
import { isNgrokApiError, type NgrokApiError } from './ngrok-api-error.js'
import { PROXY_REFUSED } from './node-http-fetch.js'
import { isNgrokdError } from '../errors/index.js'
import type { ApiEndpoint } from './types.js'
import { recordingLogger } from '../testing/recording-logger.js'

/** A reply as the sample files hold it: status, headers and a JSON body (or a string sent as is). */
interface RecordedReply {
  status: number
  headers?: Record<string, string>
  body?: unknown
}

interface Fixture extends RecordedReply {
  request: { method: string; path: string }
}

function fixture(name: string): Fixture {
  return JSON.parse(readFileSync(new URL(`./test-fixtures/${name}.json`, import.meta.url), 'utf8')) as Fixture
}

const API_KEY = '2uJAnotarealkey_3fQk8vRmX0cT7nWbL5yZpA1dE' // the credential quoted in error-invalid-key.json
const OP_ID = 'k8sop_2uJ8fQk3vRmX0cT7nWbL5yZpA1d'

type Step = RecordedReply | Error | 'hang'

interface Call {
  method: string
  url: URL
  headers: Headers
  body?: string
}

/** A fetch that plays `steps` in order (the last one repeats) and records every call. */
function scriptedFetch(steps: Step[]) {
  const calls: Call[] = []
  const fetchImpl: typeof fetch = async (input, init) => {
    const url = new URL(String(input))
    calls.push({ method: init?.method ?? 'GET', url, headers: new Headers(init?.headers), body: init?.body as string | undefined })
    const step = steps[Math.min(calls.length - 1, steps.length - 1)]!
    if (step === 'hang') {
      return new Promise<Response>((_, reject) => {
        const signal = init?.signal
        signal?.addEventListener('abort', () => reject(signal.reason), { once: true })
      })
    }
    if (step instanceof Error) throw step
    const body = step.body === undefined ? null : typeof step.body === 'string' ? step.body : JSON.stringify(step.body)
    return new Response(step.status === 204 ? null : body, { status: step.status, headers: step.headers ?? {} })
  }
  return { fetchImpl, calls }
}

function client(steps: Step[], extra: Partial<ConstructorParameters<typeof NgrokApiClient>[0]> = {}) {
  const { fetchImpl, calls } = scriptedFetch(steps)
  const sleeps: number[] = []
  const logger = recordingLogger()
  const lines = logger.records
  const api = new NgrokApiClient({
    apiKey: API_KEY,
    logger,
    fetchImpl,
    sleep: async (ms) => {
      sleeps.push(ms)
    },
    random: () => 0.5,
    ...extra,
  })
  return { api, calls, sleeps, lines }
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p
  } catch (e) {
    return e as Error
  }
  assert.fail('expected a rejection')
}

function connectionRefused(): Error {
  return new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }) })
}

describe('NgrokApiClient: requests', () => {
  it('sends the bearer key, Ngrok-Version 2, a User-Agent, and Content-Type only with a body', async () => {
    const { api, calls } = client([fixture('operator-create'), fixture('operator-get')])
    const op = await api.createOperator({ description: 'd', binding: { csr: 'x' } })
    assert.equal(op.id, OP_ID)
    await api.getOperator(OP_ID)
    const [post, get] = calls
    assert.equal(post!.method, 'POST')
    assert.equal(post!.url.href, 'https://api.ngrok.com/kubernetes_operators')
    assert.equal(post!.headers.get('authorization'), `Bearer ${API_KEY}`)
    assert.equal(post!.headers.get('ngrok-version'), '2')
    assert.match(post!.headers.get('user-agent') ?? '', /^ngrokd\/\d+\.\d+\.\d+/)
    assert.equal(post!.headers.get('content-type'), 'application/json')
    assert.deepEqual(JSON.parse(post!.body!), { description: 'd', binding: { csr: 'x' } })
    assert.equal(get!.url.pathname, `/kubernetes_operators/${OP_ID}`)
    assert.equal(get!.headers.get('content-type'), null)
    assert.equal(get!.body, undefined)
  })

  it('keeps a path prefix of the base url and escapes ids', async () => {
    const { api, calls } = client([fixture('operator-get')], { baseUrl: 'http://127.0.0.1:8080/ngrok' })
    await api.getOperator('k8sop_a/b')
    assert.equal(calls[0]!.url.href, 'http://127.0.0.1:8080/ngrok/kubernetes_operators/k8sop_a%2Fb')
  })

  it('refuses to start without an api key', () => {
    assert.throws(() => new NgrokApiClient({ apiKey: ' ' }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_API_KEY_MISSING'))
  })

  it('authenticates with a key handed over later from the next attempt on, retries included, and redacts both keys', async () => {
    const NEW_KEY = 'rotatedKEY1234567890abc'
    const refused = fixture('error-invalid-key')
    const { api, calls } = client([{ status: 503, body: 'busy' }, fixture('operator-get'), { ...refused, body: { ...(refused.body as object), msg: `keys ${API_KEY} and ${NEW_KEY}` } }])
    const pending = api.getOperator(OP_ID) // the first attempt gets a 503 and is retried
    api.useApiKey(NEW_KEY)
    await pending
    assert.deepEqual(calls.map((c) => c.headers.get('authorization')), [`Bearer ${API_KEY}`, `Bearer ${NEW_KEY}`])
    const e = await rejection(api.getOperator(OP_ID))
    assert.ok(!e.message.includes(API_KEY) && !e.message.includes(NEW_KEY), e.message)
    assert.match(e.message, /keys \[redacted\] and \[redacted\]/)
    assert.throws(() => api.useApiKey(' '), (err: unknown) => isNgrokdError(err, 'NGROKD_ERR_API_KEY_MISSING'))
  })

  it('resolves deleteOperator true on 204 and false when it is already gone', async () => {
    const { api } = client([{ status: 204 }, fixture('error-not-found')])
    assert.equal(await api.deleteOperator(OP_ID), true)
    assert.equal(await api.deleteOperator(OP_ID), false)
  })
})

// Against the cloud simulator over a real socket: test/src/core-on-simulator/ngrok-api-client.test.ts.
describe('NgrokApiClient: pagination', () => {
  it('follows next_page_uri over three sample pages', async () => {
    const pages = [fixture('bound-endpoints-page-1'), fixture('bound-endpoints-page-2'), fixture('bound-endpoints-page-3')]
    const { api, calls } = client(pages)
    const seen: number[] = []
    const endpoints = await api.listBoundEndpoints(OP_ID, { onPage: (items, i) => seen.push(i * 100 + items.length) })
    assert.deepEqual(
      calls.map((c) => c.url.pathname + c.url.search),
      pages.map((p) => p.request.path),
    )
    const expected = pages.flatMap((p) => (p.body as { endpoints: ApiEndpoint[] }).endpoints.map((e) => e.id))
    assert.equal(endpoints.length, 7)
    assert.deepEqual(
      endpoints.map((e) => e.id),
      expected,
    )
    assert.deepEqual(seen, [3, 103, 201])
    assert.equal(endpoints[2]!.url, 'tcp://db.prod:5432')
  })

  it('stops on an empty page even if next_page_uri is set', async () => {
    const page1 = fixture('bound-endpoints-page-1')
    const empty: RecordedReply = {
      status: 200,
      body: { endpoints: [], uri: 'x', next_page_uri: 'https://api.ngrok.com/kubernetes_operators/x/bound_endpoints?before_id=ep_z&limit=100' },
    }
    const { api, calls } = client([page1, empty, page1])
    const endpoints = await api.listBoundEndpoints(OP_ID)
    assert.equal(calls.length, 2)
    assert.equal(endpoints.length, 3)
  })

  it('treats a missing items key as an empty page', async () => {
    const { api } = client([{ status: 200, body: { uri: 'https://api.ngrok.com/kubernetes_operators', next_page_uri: null } }])
    assert.deepEqual(await api.listOperators(), [])
  })

  it("refuses a 200 that is no list page ([], {}, a proxy's error JSON): read as an empty list it would withdraw every endpoint", async () => {
    for (const body of [[], {}, { error: 'maintenance' }]) {
      const { api } = client([{ status: 200, body }])
      const e = await rejection(api.listBoundEndpoints(OP_ID))
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_API'), `${JSON.stringify(body)}: ${e.message}`)
      assert.match(e.message, /malformed reply: a list reply (is not an object|has neither "endpoints" nor "uri")/)
    }
    const { api } = client([{ status: 200, body: { endpoints: [], uri: 'https://api.ngrok.com/kubernetes_operators/x/bound_endpoints', next_page_uri: null } }])
    assert.deepEqual(await api.listBoundEndpoints(OP_ID), [], 'an empty page of ngrok is an empty list')
  })

  it('stops when next_page_uri loops', async () => {
    const page = fixture('bound-endpoints-page-1')
    const body = structuredClone(page.body) as { next_page_uri: string }
    body.next_page_uri = `https://api.ngrok.com${page.request.path}`
    const { api, calls } = client([{ ...page, body }])
    const e = await rejection(api.listBoundEndpoints(OP_ID))
    assert.ok(isNgrokdError(e, 'NGROKD_ERR_API'))
    assert.match(e.message, /loops/)
    assert.equal(calls.length, 1)
  })

  it('stops when a page brings only items of earlier pages (a cursor that does not advance, its URI changing)', async () => {
    const page = fixture('bound-endpoints-page-1')
    const again = (n: number): RecordedReply => {
      const body = structuredClone(page.body) as { next_page_uri: string }
      body.next_page_uri = `https://api.ngrok.com${page.request.path}&n=${n}`
      return { ...page, body }
    }
    const { api, calls } = client([again(1), again(2), again(3), again(4)])
    const e = await rejection(api.listBoundEndpoints(OP_ID))
    assert.ok(isNgrokdError(e, 'NGROKD_ERR_API'))
    assert.match(e.message, /pagination loops \(page 2 holds only items of earlier pages\)/)
    assert.equal(calls.length, 2)
  })

  it('asks the configured API for a next page on another origin (ngrok names its own host; api.url may be a proxy): the key never goes there', async () => {
    const [page1, page2, page3] = [fixture('bound-endpoints-page-1'), fixture('bound-endpoints-page-2'), fixture('bound-endpoints-page-3')]
    const body = structuredClone(page1.body) as { next_page_uri: string }
    body.next_page_uri = `https://evil.example${page2.request.path}`
    const { api, calls } = client([{ ...page1, body }, page2, page3], { baseUrl: 'http://127.0.0.1:8080/ngrok/' })
    const endpoints = await api.listBoundEndpoints(OP_ID)
    assert.equal(endpoints.length, 7)
    assert.ok(calls.every((c) => c.url.origin === 'http://127.0.0.1:8080'), calls.map((c) => c.url.href).join(' '))
    assert.equal(calls[1]!.url.pathname + calls[1]!.url.search, `/ngrok${page2.request.path}`, 'under the configured base path')
  })

  it('refuses a listing past 100,000 items (a server that ignores limit=100) without reading more pages', async () => {
    const items = Array.from({ length: 60_000 }, (_, i) => ({ id: `ep_${i}`, url: `http://s${i}.prod` }))
    const next = 'https://api.ngrok.com/kubernetes_operators/x/bound_endpoints?before_id=ep_z&limit=100'
    const { api, calls } = client([
      { status: 200, body: { endpoints: items, next_page_uri: next } },
      { status: 200, body: { endpoints: items, next_page_uri: `${next}2` } },
      { status: 200, body: { endpoints: items, next_page_uri: `${next}3` } },
    ])
    const e = await rejection(api.listBoundEndpoints(OP_ID))
    assert.ok(isNgrokdError(e, 'NGROKD_ERR_API'))
    assert.match(e.message, /more than 100000 items by page 2 \(60000 items on it, limit=100 asked\)/)
    assert.match(String(e.hint), /api\.url/)
    assert.equal(calls.length, 2)
  })

  it('refuses a listing past 128 MiB of replies (padded items) without reading more pages', async () => {
    const pad = 'x'.repeat(150 * 1024)
    const items = (page: number) => Array.from({ length: 100 }, (_, i) => ({ id: `ep_${page}_${i}`, url: `http://s${i}.prod`, description: pad }))
    const steps: RecordedReply[] = Array.from({ length: 12 }, (_, i) => ({
      status: 200,
      body: { endpoints: items(i), next_page_uri: `https://api.ngrok.com/kubernetes_operators/x/bound_endpoints?before_id=ep_${i}&limit=100` },
    }))
    const { api, calls } = client(steps)
    const e = await rejection(api.listBoundEndpoints(OP_ID))
    assert.ok(isNgrokdError(e, 'NGROKD_ERR_API'))
    assert.match(e.message, /more than 128 MiB by page 9 /)
    assert.equal(calls.length, 9)
  })
})

describe('NgrokApiClient: retries', () => {
  it('waits Retry-After seconds on 429 then succeeds', async () => {
    const { api, calls, sleeps } = client([fixture('error-rate-limit'), fixture('bound-endpoints-page-3')])
    const endpoints = await api.listBoundEndpoints(OP_ID)
    assert.equal(endpoints.length, 1)
    assert.equal(calls.length, 2)
    assert.deepEqual(sleeps, [7000])
  })

  it('honours a Retry-After of minutes, and caps a huge one', async () => {
    const limited = fixture('error-rate-limit')
    const { api, sleeps } = client([
      { ...limited, headers: { ...limited.headers, 'retry-after': '120' } },
      { ...limited, headers: { ...limited.headers, 'retry-after': '86400' } },
      fixture('bound-endpoints-page-3'),
    ])
    await api.listBoundEndpoints(OP_ID)
    assert.deepEqual(sleeps, [120_000, 600_000])
  })

  it('tells onRetry of each error reply it will retry, with the wait (status shows a rate limit while it waits)', async () => {
    const told: Array<[number, number]> = []
    const { api } = client([fixture('error-rate-limit'), fixture('bound-endpoints-page-3')], { onRetry: (e, ms) => told.push([(e as NgrokApiError).status, ms]) })
    await api.listBoundEndpoints(OP_ID)
    assert.deepEqual(told, [[429, 7000]])
  })

  it('a proxy that would not tunnel is NGROKD_ERR_API_UNREACHABLE with the proxy\'s words, never an API answer about the key', async () => {
    const refused = () => Object.assign(new Error('the proxy would not connect to api.ngrok.com: it answered HTTP 403 Forbidden (check HTTPS_PROXY, its credentials, and NO_PROXY)'), { code: PROXY_REFUSED })
    const { api } = client([refused(), refused(), refused(), refused(), refused(), refused()])
    const e = await rejection(api.listOperators())
    assert.ok(isNgrokdError(e, 'NGROKD_ERR_API_UNREACHABLE'), String(e))
    assert.match(e.message, /^ngrok api: GET \/kubernetes_operators\S*: the proxy would not connect to api\.ngrok\.com: it answered HTTP 403 Forbidden/)
  })

  it('tells onRetry of a request that got no reply (refused, timed out) too, as NGROKD_ERR_API_UNREACHABLE with its hint: status shows it while the retries run', async () => {
    const told: Array<[string, string, number]> = []
    const { api } = client([connectionRefused(), fixture('bound-endpoints-page-3')], { onRetry: (e, ms) => told.push([e.code, e.message, ms]) })
    await api.listBoundEndpoints(OP_ID)
    assert.equal(told.length, 1)
    assert.equal(told[0]![0], 'NGROKD_ERR_API_UNREACHABLE')
    assert.match(told[0]![1], new RegExp(`^ngrok api: GET /kubernetes_operators/${OP_ID}/bound_endpoints.*: ECONNREFUSED$`))
  })

  it('takes Retry-After as a floor: a Retry-After of 0 waits the backoff, no burst', async () => {
    const limited = fixture('error-rate-limit')
    const now = { ...limited, headers: { ...limited.headers, 'retry-after': '0' } }
    const { api, sleeps } = client([now, now, now, fixture('bound-endpoints-page-3')])
    await api.listBoundEndpoints(OP_ID)
    assert.equal(sleeps.length, 3)
    assert.ok(sleeps.every((ms) => ms > 0), `${sleeps}`)
    assert.ok(sleeps[2]! > sleeps[0]!, `exponential: ${sleeps}`)
  })

  it('parses Retry-After as seconds or as an HTTP date', () => {
    const now = Date.parse('Fri, 14 Mar 2025 09:26:50 GMT')
    assert.equal(parseRetryAfter('3', now), 3000)
    assert.equal(parseRetryAfter('Fri, 14 Mar 2025 09:26:53 GMT', now), 3000)
    assert.equal(parseRetryAfter('Fri, 14 Mar 2025 09:26:40 GMT', now), 0)
    assert.equal(parseRetryAfter('soon', now), undefined)
    assert.equal(parseRetryAfter(null, now), undefined)
  })

  it('backs off exponentially with full jitter on 500, then succeeds', async () => {
    const { api, calls, sleeps } = client([fixture('error-server'), fixture('error-server'), fixture('error-server'), fixture('bound-endpoints-page-3')])
    await api.listBoundEndpoints(OP_ID)
    assert.equal(calls.length, 4)
    // random() = 0.5 of min(30 s, 500 ms · 2^attempt)
    assert.deepEqual(sleeps, [250, 500, 1000])
  })

  it('gives up after maxRetries and reports the last error', async () => {
    const { api, calls } = client([fixture('error-server')], { maxRetries: 2 })
    const e = (await rejection(api.listBoundEndpoints(OP_ID))) as NgrokApiError
    assert.ok(isNgrokApiError(e, 500))
    assert.equal(e.ngrokCode, 'ERR_NGROK_500')
    assert.equal(calls.length, 3)
  })

  it('never retries a POST on 5xx (it may have been applied) but does on 429', async () => {
    const a = client([fixture('error-server'), fixture('operator-create')])
    const e = await rejection(a.api.createOperator({}))
    assert.ok(isNgrokApiError(e, 500))
    assert.equal(a.calls.length, 1)

    const b = client([fixture('error-rate-limit'), fixture('operator-create')])
    assert.equal((await b.api.createOperator({})).id, OP_ID)
    assert.equal(b.calls.length, 2)
  })

  it('retries a POST whose connection was refused, and not one that timed out', async () => {
    const a = client([connectionRefused(), fixture('operator-create')])
    assert.equal((await a.api.createOperator({})).id, OP_ID)
    assert.equal(a.calls.length, 2)

    const b = client(['hang', fixture('operator-create')], { timeoutMs: 20 })
    const e = await rejection(b.api.createOperator({}))
    assert.ok(isNgrokdError(e, 'NGROKD_ERR_API_UNREACHABLE'))
    assert.match(e.message, /timed out.*may have been applied/)
    assert.equal(b.calls.length, 1)
  })

  it('times out each attempt, retries a GET, then reports NGROKD_ERR_API_UNREACHABLE', async () => {
    const { api, calls, sleeps } = client(['hang'], { timeoutMs: 20, maxRetries: 2 })
    const e = await rejection(api.getOperator(OP_ID))
    assert.ok(isNgrokdError(e, 'NGROKD_ERR_API_UNREACHABLE'))
    assert.match(e.message, /timed out after 20 ms/)
    assert.equal(calls.length, 3)
    assert.equal(sleeps.length, 2)
  })

  it("stops at once when the caller's signal aborts", async () => {
    const controller = new AbortController()
    const { fetchImpl, calls } = scriptedFetch(['hang'])
    const api = new NgrokApiClient({ apiKey: API_KEY, fetchImpl, sleep: async () => {} })
    const pending = api.getOperator(OP_ID, { signal: controller.signal })
    controller.abort()
    const e = await rejection(pending)
    assert.ok(isNgrokdError(e, 'NGROKD_ERR_ABORTED'))
    assert.equal(calls.length, 1)
  })

  it('reports a refused loopback port as NGROKD_ERR_API_UNREACHABLE after retrying', async () => {
    const probe = createServer()
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
    const { port } = probe.address() as AddressInfo
    await new Promise<void>((resolve) => probe.close(() => resolve()))
    const sleeps: number[] = []
    const api = new NgrokApiClient({
      apiKey: API_KEY,
      baseUrl: `http://127.0.0.1:${port}`,
      maxRetries: 2,
      sleep: async (ms) => {
        sleeps.push(ms)
      },
    })
    const e = await rejection(api.createOperator({}))
    assert.ok(isNgrokdError(e, 'NGROKD_ERR_API_UNREACHABLE'))
    assert.match(e.message, /ECONNREFUSED/)
    assert.equal(sleeps.length, 2, 'a POST that never connected is retried')
  })

  it('reports a reply over 16 MiB as what it is, once: no retry reads it again', async () => {
    const server = createHttpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      const chunk = 'x'.repeat(2 ** 20)
      res.write('{"endpoints":[],"pad":"')
      for (let i = 0; i < 17; i++) res.write(chunk)
      res.end('"}')
    })
    let requests = 0
    server.on('request', () => requests++)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const { port } = server.address() as AddressInfo
      const api = new NgrokApiClient({ apiKey: API_KEY, baseUrl: `http://127.0.0.1:${port}`, sleep: async () => {} })
      const e = await rejection(api.listBoundEndpoints(OP_ID))
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_API'), String(e))
      assert.match(e.message, /larger than 16 MiB/)
      assert.doesNotMatch(String(e.hint), /reachable/)
      assert.equal(requests, 1)
    } finally {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  })
})

describe('NgrokApiClient: errors', () => {
  it("turns ngrok's error body into NgrokApiError", async () => {
    const { api } = client([fixture('error-bindings-not-enabled')])
    const e = (await rejection(api.createOperator({}))) as NgrokApiError
    assert.ok(isNgrokdError(e, 'NGROKD_ERR_API'))
    assert.ok(isNgrokApiError(e, 400))
    assert.equal(e.name, 'NgrokApiError')
    assert.equal(e.ngrokCode, 'ERR_NGROK_19002')
    assert.equal(e.ngrokMessage, 'Kubernetes operator validation failed: the bindings feature is not enabled for this account.')
    assert.equal(e.operationId, 'op_2uJ9bCd3eFg5hIj7kLm9nOp1qR')
    assert.equal(e.docsUrl, 'https://ngrok.com/docs/errors/err_ngrok_19002')
    assert.match(e.message, /POST \/kubernetes_operators: Kubernetes operator validation failed.*\(ERR_NGROK_19002, HTTP 400\)/)
    assert.match(e.hint ?? '', /bindings.*err_ngrok_19002/)
  })

  it('gives the rate-limit error its docs page when retries run out', async () => {
    const { api } = client([fixture('error-rate-limit')], { maxRetries: 0 })
    const e = (await rejection(api.listBoundEndpoints(OP_ID))) as NgrokApiError
    assert.equal(e.status, 429)
    assert.equal(e.ngrokCode, 'ERR_NGROK_226')
    assert.equal(e.docsUrl, 'https://ngrok.com/docs/errors/err_ngrok_226')
    assert.equal(e.retryAfterMs, 7000)
  })

  it('hints at the API key on 403 and redacts the key ngrok quotes back', async () => {
    const { api, lines } = client([fixture('error-invalid-key')])
    const e = (await rejection(api.listOperators())) as NgrokApiError
    assert.equal(e.status, 403)
    assert.equal(e.ngrokCode, 'ERR_NGROK_202')
    assert.match(e.hint ?? '', /API key/)
    assert.ok(!e.message.includes(API_KEY), 'key in message')
    assert.ok(!e.ngrokMessage.includes(API_KEY), 'key in ngrokMessage')
    assert.match(e.ngrokMessage, /Your credential: '\[redacted\]'/)
    assert.ok(!JSON.stringify(lines).includes(API_KEY), 'key in a log line')
  })

  it('handles a 404 without error_code', async () => {
    const { api } = client([fixture('error-not-found')])
    const e = (await rejection(api.getOperator(OP_ID))) as NgrokApiError
    assert.ok(isNgrokApiError(e, 404))
    assert.equal(e.ngrokCode, undefined)
    assert.equal(e.docsUrl, undefined)
    assert.equal(e.ngrokMessage, 'Not Found')
    assert.equal(e.operationId, 'op_2uJ9kLm2nOp4qRs6tUv8wXy0zA')
  })

  it('still gives a useful error for a non-JSON body', async () => {
    const { api, calls } = client([fixture('error-bad-gateway')], { maxRetries: 1 })
    const e = (await rejection(api.listBoundEndpoints(OP_ID))) as NgrokApiError
    assert.equal(calls.length, 2, '502 is retried')
    assert.equal(e.status, 502)
    assert.equal(e.ngrokCode, undefined)
    assert.match(e.message, /502 Bad Gateway/)
    assert.ok(e.message.length < 400)
  })

  it('takes the operation id from the ngrok-operation-id header when the body is not ngrok\'s JSON (as ngrok-api-go does)', async () => {
    const { api } = client([{ status: 502, headers: { 'content-type': 'text/html', 'ngrok-operation-id': 'op_fromheader' }, body: '<html>Bad Gateway</html>' }], { maxRetries: 0 })
    const e = (await rejection(api.listBoundEndpoints(OP_ID))) as NgrokApiError
    assert.equal(e.operationId, 'op_fromheader')
  })

  it('rejects a 2xx reply that is not JSON', async () => {
    const { api } = client([{ status: 200, headers: { 'content-type': 'text/html' }, body: '<html>login</html>' }])
    const e = await rejection(api.getOperator(OP_ID))
    assert.ok(isNgrokdError(e, 'NGROKD_ERR_API'))
    assert.match(e.message, /not JSON/)
  })

  it('never logs the API key, across retries and failures', async () => {
    const { api, lines } = client([fixture('error-server'), connectionRefused(), 'hang'], { timeoutMs: 10, maxRetries: 3 })
    await rejection(api.getOperator(OP_ID))
    assert.ok(lines.length >= 3)
    assert.ok(!JSON.stringify(lines).includes(API_KEY))
  })
})
