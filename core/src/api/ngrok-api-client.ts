import { setTimeout as delay } from 'node:timers/promises'
import { CORE_VERSION } from '../version.js'
import { NgrokdError } from '../errors/index.js'
import { silentLogger, type Logger } from '../contracts/logger.js'
import { NgrokApiError } from './ngrok-api-error.js'
import { KEEPALIVE_CLOSED, PROXY_REFUSED, REPLY_TOO_LARGE, nodeHttpFetch, type ApiFetch, type ApiResponse } from './node-http-fetch.js'
import type { ApiEndpoint, ListPage, NgrokErrorBody, Operator, OperatorCreate, OperatorUpdate } from './types.js'

export const DEFAULT_API_BASE_URL = 'https://api.ngrok.com'

/** Page size for list calls: ngrok's default and maximum (PROTOCOL.md §2). */
const PAGE_LIMIT = 100
/** Stop following `next_page_uri` after this many pages: 100 000 items is far past any real account. */
const MAX_PAGES = 1000
/**
 * Most items and most reply characters one listing keeps (every page of one poll): what a server that ignores
 * `limit` or pads its items may make the daemon hold. 100 000 endpoints of ngrok's (~0.7 KiB each) fit in both.
 */
const MAX_LIST_ITEMS = PAGE_LIMIT * MAX_PAGES
const MAX_LIST_CHARS = 128 * 2 ** 20
/** Longest wait ngrokd takes from a `Retry-After` header before trying again: ngrok's window is a minute; a far longer one is read as a mistake, not obeyed for hours. */
const MAX_RETRY_AFTER_MS = 600_000
/** A retry wait this long is said at warn (a user would wonder why nothing happens); shorter ones at debug. */
const LONG_WAIT_MS = 10_000
/** Characters of a non-JSON error body quoted in the error message. */
const BODY_EXCERPT = 200

/** Connection errors that happen before a byte of the request is sent: safe to retry even a POST. */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
  KEEPALIVE_CLOSED,
  PROXY_REFUSED,
])

export interface NgrokApiClientOptions {
  /** Default `https://api.ngrok.com`. A path prefix is kept (`http://127.0.0.1:4040/api`). */
  baseUrl?: string
  apiKey: string
  logger?: Logger
  /** Default `ngrokd/<version of @ngrokd/core>`. */
  userAgent?: string
  /** Per attempt, including reading the body. Default 10 s. */
  timeoutMs?: number
  /** Further attempts after the first. Default 5. */
  maxRetries?: number
  /** First backoff step; attempt n waits a random time in [0, min(maxDelayMs, baseDelayMs·2ⁿ)). Default 500 ms. */
  baseDelayMs?: number
  /** Default 30 s. */
  maxDelayMs?: number
  /** How one request is made; default {@link nodeHttpFetch}. The global `fetch` fits too. */
  fetchImpl?: ApiFetch
  /** Waits between attempts; injectable so tests need no real time. Must reject when `signal` aborts. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>
  /** In [0, 1); default Math.random. Drives the backoff jitter. */
  random?: () => number
  /**
   * Aborts every request of this client, the one in flight and its retries included (the daemon's
   * stop): a stop never waits for a hung API. Combined with each request's own `signal`.
   */
  signal?: AbortSignal
  /**
   * Told of each failure that will be retried, and the wait before it (a `Retry-After` may be minutes): for `status`. An
   * error reply is an {@link NgrokApiError}; no reply (a timeout, a refused or reset connection) `NGROKD_ERR_API_UNREACHABLE`.
   */
  onRetry?: (error: NgrokdError, waitMs: number) => void
}

export interface RequestOptions {
  signal?: AbortSignal
}

export interface ListOptions<T> extends RequestOptions {
  /** Called with each page's items as it arrives (progress, streaming). */
  onPage?: (items: T[], pageIndex: number) => void
}

interface SendOptions extends RequestOptions {
  body?: unknown
}

interface Reply {
  status: number
  json: unknown
  /** Characters of the body. */
  chars: number
}

function abortedError(signal: AbortSignal, what: string): NgrokdError {
  return new NgrokdError('NGROKD_ERR_ABORTED', `ngrok api: ${what} aborted`, { cause: signal.reason })
}

/** Every `code` on an error, its causes and (AggregateError) its members. */
function errorCodes(e: unknown, depth = 0): string[] {
  if (typeof e !== 'object' || e === null || depth > 5) return []
  const out: string[] = []
  const code = (e as { code?: unknown }).code
  if (typeof code === 'string') out.push(code)
  const errors = (e as { errors?: unknown }).errors
  if (Array.isArray(errors)) for (const m of errors) out.push(...errorCodes(m, depth + 1))
  out.push(...errorCodes((e as { cause?: unknown }).cause, depth + 1))
  return out
}

/** `Retry-After`: delta-seconds or an HTTP date (RFC 9110 §10.2.3). Undefined when absent or unparsable. */
export function parseRetryAfter(value: string | null, nowMs: number = Date.now()): number | undefined {
  if (value === null) return undefined
  const v = value.trim()
  if (/^\d+$/.test(v)) return Number(v) * 1000
  const date = Date.parse(v)
  if (Number.isNaN(date)) return undefined
  return Math.max(0, date - nowMs)
}

/**
 * The only module that knows the ngrok REST API (PROTOCOL.md §2). Every call sends
 * `Authorization: Bearer`, `Ngrok-Version: 2` and a `User-Agent`; bodies are JSON.
 *
 * - Each attempt has its own timeout; a caller's `signal` aborts at once, with no retry.
 * - 429, 5xx, timeouts and network errors are retried with exponential backoff and full jitter,
 *   honouring `Retry-After` as a floor (capped at {@link MAX_RETRY_AFTER_MS}). A POST is retried only on 429 or when the connection
 *   failed before anything was sent, so a registration is never created twice.
 * - Error replies become {@link NgrokApiError}; a network failure after the last retry becomes
 *   `NGROKD_ERR_API_UNREACHABLE`. The API key never appears in a log line or an error.
 *
 * ```ts
 * const api = new NgrokApiClient({ apiKey: process.env.NGROK_API_KEY!, logger })
 * const endpoints = await api.listBoundEndpoints('k8sop_2abc')
 * ```
 */
function checkedKey(key: string | undefined): string {
  if (!key || !key.trim()) {
    throw new NgrokdError('NGROKD_ERR_API_KEY_MISSING', 'ngrok api: no api key configured', {
      hint: 'set the ngrok API key (an API key, not an agent authtoken) from https://dashboard.ngrok.com/api-keys',
    })
  }
  return key.trim()
}

export class NgrokApiClient {
  readonly baseUrl: URL
  private apiKey: string
  /** Keys used before {@link useApiKey}: a reply to a request still under way may quote one. */
  private readonly formerKeys: string[] = []
  private readonly logger: Logger
  private readonly userAgent: string
  private readonly timeoutMs: number
  private readonly maxRetries: number
  private readonly baseDelayMs: number
  private readonly maxDelayMs: number
  private readonly fetchImpl: ApiFetch
  /** HTTP requests sent so far, each retry counted: what this client spent of the account's API budget. */
  requestsSent = 0
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>
  private readonly signal?: AbortSignal
  private readonly random: () => number
  private readonly onRetry: NgrokApiClientOptions['onRetry']

  constructor(options: NgrokApiClientOptions) {
    const base = new URL(options.baseUrl ?? DEFAULT_API_BASE_URL)
    if (base.protocol !== 'https:' && base.protocol !== 'http:') {
      throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `ngrok api: base url ${base.href} is not http(s)`)
    }
    if (!base.pathname.endsWith('/')) base.pathname += '/'
    this.baseUrl = base
    this.apiKey = checkedKey(options.apiKey)
    this.logger = (options.logger ?? silentLogger).child({ component: 'ngrok-api' })
    this.userAgent = options.userAgent ?? `ngrokd/${CORE_VERSION}`
    this.timeoutMs = options.timeoutMs ?? 10_000
    this.maxRetries = options.maxRetries ?? 5
    this.baseDelayMs = options.baseDelayMs ?? 500
    this.maxDelayMs = options.maxDelayMs ?? 30_000
    this.fetchImpl = options.fetchImpl ?? nodeHttpFetch
    this.sleep = options.sleep ?? ((ms, signal) => delay(ms, undefined, signal ? { signal } : undefined))
    this.random = options.random ?? Math.random
    this.onRetry = options.onRetry
    this.signal = options.signal
  }

  /** `POST /kubernetes_operators` → 201: register. The reply carries the issued certificate. */
  async createOperator(body: OperatorCreate, options: RequestOptions = {}): Promise<Operator> {
    return asOperator(await this.call('POST', 'kubernetes_operators', { ...options, body }))
  }

  /** `GET /kubernetes_operators/{id}`: throws an {@link NgrokApiError} with `status` 404 when it is gone. */
  async getOperator(id: string, options: RequestOptions = {}): Promise<Operator> {
    return asOperator(await this.call('GET', `kubernetes_operators/${encodeURIComponent(id)}`, options))
  }

  /** `PATCH /kubernetes_operators/{id}`: every field optional; a new `binding.csr` renews the certificate. */
  async updateOperator(id: string, body: OperatorUpdate, options: RequestOptions = {}): Promise<Operator> {
    return asOperator(await this.call('PATCH', `kubernetes_operators/${encodeURIComponent(id)}`, { ...options, body }))
  }

  /**
   * `DELETE /kubernetes_operators/{id}` → 204. Resolves `true` when deleted, `false` when it was
   * already gone (404), so a retried or repeated delete is not an error.
   */
  async deleteOperator(id: string, options: RequestOptions = {}): Promise<boolean> {
    try {
      await this.call('DELETE', `kubernetes_operators/${encodeURIComponent(id)}`, options)
      return true
    } catch (e) {
      if (e instanceof NgrokApiError && e.status === 404) return false
      throw e
    }
  }

  /** `GET /kubernetes_operators`, every page. */
  async listOperators(options: ListOptions<Operator> = {}): Promise<Operator[]> {
    return this.listAll('kubernetes_operators', 'operators', options, asOperator)
  }

  /**
   * `GET /kubernetes_operators/{id}/bound_endpoints`, every page (the Go peer stops after the first 100).
   * Items come as the API sent them, unchecked: one malformed endpoint (no `id`, not an object) must
   * not cost the others, so `groupEndpoints` skips and reports it.
   */
  async listBoundEndpoints(operatorId: string, options: ListOptions<ApiEndpoint> = {}): Promise<ApiEndpoint[]> {
    return this.listAll(`kubernetes_operators/${encodeURIComponent(operatorId)}/bound_endpoints`, 'endpoints', options, (x) => x as ApiEndpoint)
  }

  /**
   * Follows `next_page_uri` until it is null or a page is empty (one on another origin: {@link nextPage}); stops
   * on a loop: a page URI asked before, or a page whose every item was on an earlier page (a cursor that does
   * not advance, whatever else its URI changes).
   */
  private async listAll<T>(path: string, key: string, options: ListOptions<T>, check: (x: unknown) => T): Promise<T[]> {
    let url: URL | undefined = new URL(path, this.baseUrl)
    url.searchParams.set('limit', String(PAGE_LIMIT))
    const seen = new Set<string>()
    const ids = new Set<unknown>()
    const all: T[] = []
    let chars = 0
    for (let page = 0; url; page++) {
      if (seen.has(url.href) || page >= MAX_PAGES) {
        throw new NgrokdError('NGROKD_ERR_API', `ngrok api: GET ${this.display(url)}: pagination loops (page ${page + 1})`)
      }
      seen.add(url.href)
      const reply = await this.send('GET', url, { signal: options.signal })
      const body = reply.json as ListPage | null
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw this.malformed('GET', url, 'a list reply is not an object')
      // ngrok's list types mark every field `omitempty` (ngrok-api-go datatypes.go): a page without items is an empty
      // list. But ngrok names the list's own `uri` on every page; a reply with neither is no list page (a proxy's or
      // a maintenance page's JSON), and read as "nothing is bound" it would withdraw every endpoint.
      if (!(key in body) && !('uri' in body) && !('next_page_uri' in body)) {
        throw this.malformed('GET', url, `a list reply has neither "${key}" nor "uri" (its keys: ${Object.keys(body).slice(0, 5).join(', ') || 'none'})`)
      }
      const raw = body[key] ?? []
      if (!Array.isArray(raw)) throw this.malformed('GET', url, `"${key}" is not an array`)
      chars += reply.chars
      if (all.length + raw.length > MAX_LIST_ITEMS || chars > MAX_LIST_CHARS) {
        const what = all.length + raw.length > MAX_LIST_ITEMS ? `more than ${MAX_LIST_ITEMS} items` : `more than ${MAX_LIST_CHARS / 2 ** 20} MiB`
        throw new NgrokdError('NGROKD_ERR_API', `ngrok api: GET ${this.display(url)}: the listing holds ${what} by page ${page + 1} (${raw.length} items on it, limit=${PAGE_LIMIT} asked)`, {
          hint: `ngrokd reads at most ${MAX_LIST_ITEMS} items and ${MAX_LIST_CHARS / 2 ** 20} MiB in one listing; check that ${this.baseUrl.origin} is ngrok's API (api.url)`,
        })
      }
      const items = raw.map(check)
      let fresh = 0
      for (const item of items) {
        all.push(item) // not push(...items): a huge page would overflow the call stack
        const id = (item as { id?: unknown } | null)?.id
        if (typeof id !== 'string' || !ids.has(id)) fresh++
        ids.add(id)
      }
      if (items.length > 0 && fresh === 0) {
        throw new NgrokdError('NGROKD_ERR_API', `ngrok api: GET ${this.display(url)}: pagination loops (page ${page + 1} holds only items of earlier pages)`)
      }
      options.onPage?.(items, page)
      const next = body.next_page_uri
      if (items.length === 0 || next === null || next === undefined || next === '') break
      if (typeof next !== 'string') throw this.malformed('GET', url, 'next_page_uri is not a string')
      url = this.nextPage(next)
    }
    return all
  }

  /**
   * Where a `next_page_uri` leads. ngrok writes it absolute, on its own host (`https://api.ngrok.com/...`), which
   * ngrok-api-go follows as given. Where `api.url` is another origin (a proxy, a loopback forwarder), its path and
   * query are asked of the configured API instead: the API key never travels to an origin that was not configured.
   */
  private nextPage(next: string): URL {
    const url = new URL(next, this.baseUrl)
    if (url.origin === this.baseUrl.origin) return url
    return new URL(`${url.pathname.replace(/^\/+/, '')}${url.search}`, this.baseUrl)
  }

  private async call(method: string, path: string, options: SendOptions): Promise<unknown> {
    return (await this.send(method, new URL(path, this.baseUrl), options)).json
  }

  /** One request with timeouts and retries. Resolves with the parsed 2xx body (undefined for an empty one). */
  private async send(method: string, url: URL, options: SendOptions): Promise<Reply> {
    const signal = options.signal && this.signal ? AbortSignal.any([options.signal, this.signal]) : (options.signal ?? this.signal)
    const idempotent = method !== 'POST'
    const shown = this.display(url)
    const headers: Record<string, string> = {
      'ngrok-version': '2',
      accept: 'application/json',
      'user-agent': this.userAgent,
    }
    let body: string | undefined
    if (options.body !== undefined) {
      headers['content-type'] = 'application/json'
      body = JSON.stringify(options.body)
    }

    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted) throw abortedError(signal, `${method} ${shown}`)
      // like AbortSignal.timeout(), but a referenced timer that is cleared: a hung request keeps
      // the process alive until it times out, and no timer outlives its attempt
      const timeout = new AbortController()
      const timer = setTimeout(() => timeout.abort(new DOMException(`timed out after ${this.timeoutMs} ms`, 'TimeoutError')), this.timeoutMs)
      const combined = signal ? AbortSignal.any([signal, timeout.signal]) : timeout.signal
      let response: ApiResponse
      let text: string
      let sent = false
      const started = performance.now()
      try {
        // the key of this attempt: one handed over meanwhile (useApiKey) counts for the retries
        this.requestsSent++
        response = await this.fetchImpl(url, { method, headers: { ...headers, authorization: `Bearer ${this.apiKey}` }, body, signal: combined, redirect: 'manual' })
        sent = true
        text = await response.text()
      } catch (cause) {
        if (signal?.aborted) throw abortedError(signal, `${method} ${shown}`)
        const timedOut = timeout.signal.aborted
        const codes = errorCodes(cause)
        if (codes.includes(REPLY_TOO_LARGE)) {
          // the API answered: asking again would read the same again
          throw new NgrokdError('NGROKD_ERR_API', `ngrok api: ${method} ${shown}: ${(cause as Error).message}`, {
            cause,
            hint: `check that ${this.baseUrl.origin} is ngrok's API (api.url)`,
          })
        }
        const notSent = !sent && !timedOut && codes.length > 0 && codes.every((c) => NOT_SENT_CODES.has(c))
        const reason = timedOut ? `timed out after ${this.timeoutMs} ms` : codes[0] === PROXY_REFUSED ? (cause as Error).message : (codes[0] ?? (cause instanceof Error ? cause.message : String(cause)))
        const retryable = idempotent || notSent
        const maybeApplied = !idempotent && !notSent ? ' (it may have been applied)' : ''
        const error = new NgrokdError('NGROKD_ERR_API_UNREACHABLE', `ngrok api: ${method} ${shown}: ${reason}${maybeApplied}`, {
          cause,
          hint: `check that ${this.baseUrl.origin} is reachable from this machine (DNS, firewall); behind a proxy, name it in HTTPS_PROXY`,
        })
        if (retryable && attempt < this.maxRetries) {
          const wait = this.backoff(attempt)
          // the caller says the failure that outlasts the retries, once: each retry is a detail
          this.logger.debug({ method, path: shown, attempt: attempt + 1, reason, retryInMs: Math.round(wait) }, 'ngrok api request failed, retrying')
          this.onRetry?.(error, wait)
          await this.pause(wait, signal, `${method} ${shown}`)
          continue
        }
        throw error
      } finally {
        clearTimeout(timer)
      }
      const ms = Math.round(performance.now() - started)
      this.logger.debug({ method, path: shown, status: response.status, attempt: attempt + 1, ms }, 'ngrok api')

      if (response.status >= 200 && response.status < 300) {
        if (text.trim() === '') return { status: response.status, json: undefined, chars: text.length }
        try {
          return { status: response.status, json: JSON.parse(text), chars: text.length }
        } catch (cause) {
          throw new NgrokdError('NGROKD_ERR_API', `ngrok api: ${method} ${shown}: reply ${response.status} is not JSON`, { cause })
        }
      }

      const error = this.toApiError(method, shown, response, text)
      const retryable = response.status === 429 || (idempotent && response.status >= 500)
      if (retryable && attempt < this.maxRetries) {
        // `Retry-After` is a floor, never a reason to retry sooner than the backoff would (`Retry-After: 0` is no burst)
        const backoff = this.backoff(attempt)
        const wait = error.retryAfterMs !== undefined ? Math.max(Math.min(error.retryAfterMs, MAX_RETRY_AFTER_MS), backoff) : backoff
        // a wait long enough to notice is said; a short one is a detail
        this.logger[wait >= LONG_WAIT_MS ? 'warn' : 'debug'](
          { method, path: shown, status: response.status, ngrokCode: error.ngrokCode, attempt: attempt + 1, retryInMs: Math.round(wait) },
          wait >= LONG_WAIT_MS
            ? `ngrok api busy (HTTP ${response.status}${error.ngrokCode ? ` ${error.ngrokCode}` : ''}: ${error.ngrokMessage}): waiting ${Math.round(wait / 1000)} s before trying again${error.docsUrl ? `; see ${error.docsUrl}` : ''}`
            : 'ngrok api busy, retrying',
        )
        this.onRetry?.(error, wait)
        await this.pause(wait, signal, `${method} ${shown}`)
        continue
      }
      throw error
    }
  }

  /** Full jitter: a random wait in [0, min(max, base·2^attempt)). */
  private backoff(attempt: number): number {
    const ceiling = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** attempt)
    return this.random() * ceiling
  }

  private async pause(ms: number, signal: AbortSignal | undefined, what: string): Promise<void> {
    try {
      await this.sleep(ms, signal)
    } catch (e) {
      if (signal?.aborted) throw abortedError(signal, what)
      throw e
    }
  }

  private toApiError(method: string, path: string, response: ApiResponse, text: string): NgrokApiError {
    let parsed: NgrokErrorBody | undefined
    try {
      const j = JSON.parse(text) as unknown
      if (typeof j === 'object' && j !== null && !Array.isArray(j)) parsed = j as NgrokErrorBody
    } catch {
      // not ngrok's JSON (a proxy's HTML page, an empty body): quoted below
    }
    const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'))
    let message: string
    if (parsed && typeof parsed.msg === 'string' && parsed.msg.trim()) {
      message = parsed.msg.trim()
    } else {
      const excerpt = text.replace(/\s+/g, ' ').trim().slice(0, BODY_EXCERPT)
      const statusText = response.statusText || 'error'
      message = excerpt ? `${statusText}: ${excerpt}` : statusText
    }
    const ngrokCode = typeof parsed?.error_code === 'string' && parsed.error_code ? parsed.error_code : undefined
    // a body that is not ngrok's JSON (a proxy's page) still has the header ngrok-api-go reads then (client.go, buildUnmarshalError)
    const operationId = typeof parsed?.details?.operation_id === 'string' ? parsed.details.operation_id : response.headers.get('ngrok-operation-id') || undefined
    return new NgrokApiError({
      method,
      path,
      status: response.status,
      ngrokCode,
      ngrokMessage: this.redact(message),
      operationId,
      retryAfterMs,
    })
  }

  private malformed(method: string, url: URL, what: string): NgrokdError {
    return new NgrokdError('NGROKD_ERR_API', `ngrok api: ${method} ${this.display(url)}: malformed reply: ${what}`)
  }

  /**
   * Every request from now on (retries of one under way included) authenticates with `key`: a key
   * handed to the running daemon replaces one that was revoked or belongs to another account.
   */
  useApiKey(key: string): void {
    const next = checkedKey(key)
    if (next === this.apiKey) return
    this.formerKeys.push(this.apiKey)
    this.apiKey = next
  }

  /** How many times {@link useApiKey} replaced the key: a caller tells a refusal of the key it meant from one of the key before. */
  get keyReplacements(): number {
    return this.formerKeys.length
  }

  /** ngrok quotes a rejected key back in `msg`: never let it reach a log or an error. */
  private redact(text: string): string {
    for (const key of [this.apiKey, ...this.formerKeys]) if (key.length >= 4) text = text.split(key).join('[redacted]')
    return text
  }

  /** Path and query relative to the API root, for logs and errors. */
  private display(url: URL): string {
    return url.pathname + url.search
  }
}

function asOperator(x: unknown): Operator {
  if (typeof x !== 'object' || x === null || typeof (x as { id?: unknown }).id !== 'string') {
    throw new NgrokdError('NGROKD_ERR_API', 'ngrok api: malformed reply: an operator has no id')
  }
  return x as Operator
}
