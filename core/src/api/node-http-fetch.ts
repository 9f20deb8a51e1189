import { requireCommonJs } from '../util/commonjs.js'
import type { Agent } from 'node:http'
import { proxyFromEnvironment } from './proxy-env.js'

const http = requireCommonJs('node:http') as typeof import('node:http') // see requireCommonJs
const https = requireCommonJs('node:https') as typeof import('node:https')

/** What {@link NgrokApiClient} sends: a subset of fetch's `RequestInit`, so that `fetch` itself fits too. */
export interface ApiRequestInit {
  method: string
  headers: Record<string, string>
  body?: string
  signal: AbortSignal
  /** Redirects are answers, not followed (fetch's `redirect: 'manual'`); node:http never follows them. */
  redirect: 'manual'
}

/** What {@link NgrokApiClient} reads of an answer: a subset of fetch's `Response`. */
export interface ApiResponse {
  status: number
  statusText: string
  headers: { get(name: string): string | null }
  text(): Promise<string>
}

/** How {@link NgrokApiClient} makes one HTTP request; `fetch` is one, {@link nodeHttpFetch} the default. */
export type ApiFetch = (url: URL, init: ApiRequestInit) => Promise<ApiResponse>

/**
 * The code of a request written on a kept-alive connection that the server closed meanwhile (Node's
 * `req.reusedSocket` with ECONNRESET): the server never read it, so even a POST may be sent again.
 */
export const KEEPALIVE_CLOSED = 'NGROKD_KEEPALIVE_CLOSED'

/**
 * Most characters of one reply body read: a page of the API (100 objects) is a few hundred KiB, and a
 * hostile or broken server must not grow the daemon without bound (a string past V8's limit kills it).
 */
export const MAX_REPLY_CHARS = 16 * 2 ** 20

/** The code of the error a reply over {@link MAX_REPLY_CHARS} ends with: the server answered, and asking again gets the same. */
export const REPLY_TOO_LARGE = 'NGROKD_REPLY_TOO_LARGE'

/**
 * One HTTP request with node:http / node:https, fetch-shaped: resolves when the status line and headers
 * are in, `text()` reads the body; `signal` aborts either. Connections are kept alive by Node's global
 * agents (Node ≥ 19), so the pages of one poll share one TLS connection.
 *
 * Why not the global `fetch`: its first call loads undici and compiles its HTTP parser to WebAssembly,
 * measured at 66–86 ms and 69–97 ms of CPU, a transient 38 MiB more RSS and 10–18 MiB more for good
 * (one request to a loopback server, Node 20); node:http's first request took 13–19 ms and neither.
 */
export const nodeHttpFetch: ApiFetch = async (url, init) => {
  const agent = await proxyAgentFor(url)
  return request(url, init, agent)
}

const request = (url: URL, { method, headers, body, signal }: ApiRequestInit, agent: Agent | undefined): Promise<ApiResponse> =>
  new Promise((resolve, reject) => {
    // a proxy that will not tunnel answers the CONNECT itself, and the agent hands that answer on as the API's: the
    // request never reached the API, and its status says nothing of the API key
    let refusedByProxy: { statusCode?: number; statusText?: string } | undefined
    const request = (url.protocol === 'https:' ? https : http).request(url, { method, headers, signal, ...(agent ? { agent } : {}) }, (res) => {
      if (refusedByProxy) {
        res.destroy()
        const { statusCode, statusText } = refusedByProxy
        return reject(Object.assign(new Error(`the proxy would not connect to ${url.host}: it answered HTTP ${statusCode ?? '?'}${statusText ? ` ${statusText}` : ''} (check HTTPS_PROXY, its credentials, and NO_PROXY)`), { code: PROXY_REFUSED }))
      }
      res.setEncoding('utf8')
      let text = ''
      res.on('data', (chunk: string) => {
        text += chunk
        if (text.length > MAX_REPLY_CHARS) {
          res.destroy(Object.assign(new Error(`the reply is larger than ${MAX_REPLY_CHARS / 2 ** 20} MiB, far more than any page of the API`), { code: REPLY_TOO_LARGE }))
        }
      })
      const body = new Promise<string>((done, fail) => {
        res.once('end', () => done(text))
        res.on('error', fail)
        // the connection broke before the body was complete (no 'end'): an error, never a short body
        res.once('close', () => (res.complete ? undefined : fail(signal.aborted ? signal.reason : new Error('connection closed before the body was complete'))))
      })
      body.catch(() => undefined) // read by text(); never an unhandled rejection when nobody reads it
      resolve({
        status: res.statusCode ?? 0,
        statusText: res.statusMessage ?? '',
        headers: { get: (name) => joinHeader(res.headers[name.toLowerCase()]) },
        text: () => body,
      })
    })
    request.once('proxyConnect', (connect: { statusCode?: number; statusText?: string }) => {
      if (connect.statusCode !== 200) refusedByProxy = connect
    })
    request.on('error', (err: NodeJS.ErrnoException) => {
      if (request.reusedSocket && err.code === 'ECONNRESET') {
        reject(Object.assign(new Error(`the kept-alive connection was closed by the server before the request (${err.message})`), { code: KEEPALIVE_CLOSED }))
      } else reject(err)
    })
    request.end(body)
  })

function joinHeader(value: string | string[] | undefined): string | null {
  if (value === undefined) return null
  return Array.isArray(value) ? value.join(', ') : value
}

/** One keep-alive agent per proxy URL, made at its first use. */
const proxyAgents = new Map<string, Promise<Agent>>()

/** The code of a request the proxy would not tunnel (a CONNECT answered other than 200), or whose proxy URL it cannot use: the API never saw it. */
export const PROXY_REFUSED = 'NGROKD_PROXY_REFUSED'

/**
 * The agent that reaches `url` through the proxy the environment names for it ({@link proxyFromEnvironment}: Go's rules,
 * as ngrok's own clients read them), or undefined to go direct. The request is tunnelled with CONNECT
 * (https-proxy-agent, loaded only then), so the proxy sees only the host and port, never the API key. A proxy of another
 * scheme than http or https (socks5) is refused, naming it.
 */
export async function proxyAgentFor(url: URL): Promise<Agent | undefined> {
  const proxy = proxyFromEnvironment(url)
  if (!proxy) return undefined
  if (proxy.protocol !== 'http:' && proxy.protocol !== 'https:') {
    throw Object.assign(new Error(`the proxy ${proxy.protocol}//${proxy.host} the environment names for ${url.host} is not an HTTP(S) proxy: ngrokd tunnels through http:// and https:// proxies only`), { code: PROXY_REFUSED })
  }
  let agent = proxyAgents.get(proxy.href)
  if (!agent) {
    agent = import('https-proxy-agent').then(({ HttpsProxyAgent }) => new HttpsProxyAgent(proxy, { keepAlive: true }))
    proxyAgents.set(proxy.href, agent)
  }
  return agent
}
