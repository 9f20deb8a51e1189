import { ipFamily } from '../util/ip-family.js'
import { NgrokdError } from '../errors/index.js'

/** Where the binding ingress is when the API names none (PROTOCOL.md §4). */
export const DEFAULT_INGRESS_ENDPOINT = 'kubernetes-binding-ingress.ngrok.io:443'
const DEFAULT_INGRESS_PORT = 443

function invalid(value: string): NgrokdError {
  return new NgrokdError('NGROKD_ERR_API', `ngrok api: binding.ingress_endpoint ${JSON.stringify(value)} is not host:port`)
}

/**
 * `binding.ingress_endpoint` as `host:port` (IPv6 as `[addr]:port`): appends `:443` when the API
 * gives no port, and the default ingress when it gives nothing.
 */
export function normalizeIngressEndpoint(value: string | null | undefined): string {
  const { host, port } = splitIngressEndpoint(value)
  return ipFamily(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`
}

/** `host` (brackets removed, for SNI and `tls.connect`) and `port` of an ingress endpoint. */
export function splitIngressEndpoint(value: string | null | undefined): { host: string; port: number } {
  let v = (value ?? '').trim()
  if (v === '') v = DEFAULT_INGRESS_ENDPOINT
  if (v.includes('://')) {
    // scheme://host[:port][/] only, its port as written (WHATWG URL would drop a scheme's default one: http://h:80 → h)
    const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#@]+)\/?$/.exec(v)
    if (!m) throw invalid(v)
    v = m[1]!
  }
  let host: string
  let portText: string | undefined
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(v)
  if (bracketed) {
    host = bracketed[1]!
    portText = bracketed[2]
    if (ipFamily(host) !== 6) throw invalid(v)
  } else if (ipFamily(v) === 6) {
    host = v // a bare IPv6 address: no port can be told apart
  } else {
    const m = /^([^:]+)(?::(\d+))?$/.exec(v)
    if (!m) throw invalid(v)
    host = m[1]!
    portText = m[2]
  }
  if (ipFamily(host) === 0 && !/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/.test(host)) {
    throw invalid(v)
  }
  const port = portText === undefined ? DEFAULT_INGRESS_PORT : Number(portText)
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalid(v)
  return { host, port }
}

/** Where connections go, and why there: `ingress.endpoint` (config), the registration (api), or the documented default. */
export interface IngressTarget {
  endpoint: string
  source: 'config' | 'api' | 'default'
}

/**
 * The one rule for which ingress endpoint applies: `ingress.endpoint` from the config, else the one
 * the API named at registration, else the documented default. Both are normalised here.
 */
export function chooseIngressEndpoint(configured: string | undefined, fromRegistration: string | null | undefined): IngressTarget {
  if (configured) return { endpoint: normalizeIngressEndpoint(configured), source: 'config' }
  if (fromRegistration) return { endpoint: normalizeIngressEndpoint(fromRegistration), source: 'api' }
  return { endpoint: DEFAULT_INGRESS_ENDPOINT, source: 'default' }
}
