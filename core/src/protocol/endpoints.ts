/**
 * Endpoint URLs and hostnames from the ngrok API (PROTOCOL.md §1), validated before anything
 * reaches the OS: hostnames are written into the hosts file, where a newline, a space or a `#`
 * would be an injection. Pure code.
 */
import { NgrokdError } from '../errors/ngrokd-error.js'
import type { NgrokdErrorCode } from '../errors/codes.js'
import { flatJoin } from '../util/flat-string.js'

export type EndpointScheme = 'http' | 'https' | 'tcp' | 'tls'

export interface ParsedEndpointUrl {
  scheme: EndpointScheme
  /** Lower-case, validated with {@link validateHostname}. */
  hostname: string
  port: number
}

/** The subset of the API's endpoint object that grouping reads. */
export interface ApiEndpointLike {
  id: string
  url?: string
  /** Deprecated twin of `url`; used only when `url` is absent. */
  public_url?: string
  proto?: string
  /** `host:port`; with `proto`, the last resort when neither URL field is set. */
  hostport?: string
  bindings?: string[]
}

/** One local service: every endpoint sharing a normalised URL (pooling). */
export interface DesiredService {
  /** Normalised URL, default port omitted: `http://api.prod`, `tcp://db.prod:5432`. */
  key: string
  /** The URL as the API gave it (of the endpoint with the smallest id). */
  url: string
  hostname: string
  port: number
  proto: EndpointScheme
  /** Sorted, unique. */
  endpointIds: string[]
}

export interface RejectedEndpoint {
  id: string
  url: string
  reason: string
  /** The error code it is logged with, when the reason has one (`NGROKD_ERR_NAME_UNSAFE`). */
  code?: NgrokdErrorCode
}

export interface GroupedEndpoints {
  /** Sorted by hostname, then port, then proto. */
  services: DesiredService[]
  /** Sorted by id. */
  rejected: RejectedEndpoint[]
}

/** RFC 1035 §2.3.4: 255 octets on the wire = 253 characters of dotted text. */
const MAX_HOSTNAME = 253
/** RFC 1035 §2.3.4. */
const MAX_LABEL = 63
/** ngrok's kubernetes-bound rule: `name.namespace`, each label `[a-z][a-z0-9-]{0,62}` (PROTOCOL.md §1). */
const BINDING_LABEL = /^[a-z][a-z0-9-]{0,62}$/
/** Older public-looking hostnames (`my-api.ngrok.app`): RFC 1123 labels. */
const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/
/** A label WHATWG URL would read as a number (decimal, octal or hex), making the host an IPv4 address. */
const NUMERIC_LABEL = /^(?:0x[0-9a-f]*|\d+)$/

const DEFAULT_PORTS: Record<EndpointScheme, number | undefined> = { http: 80, https: 443, tcp: undefined, tls: 443 }

/**
 * Returns why `h` is not a hostname ngrokd will publish, or `undefined` when it is fine.
 *
 * Accepted: `name.namespace` (two labels, each `[a-z][a-z0-9-]{0,62}`) and public-looking names
 * (two or more RFC 1123 labels of `[a-z0-9-]`, 1–63 long, no leading or trailing `-`), at most 253
 * characters, lower-case. A single label (`localhost`) is refused: publishing it would shadow
 * names of the machine itself; `singleLabel` admits one (a domain under which names are served, `prod`).
 * Callers lower-case API text first; upper case here is refused.
 */
export function validateHostname(h: string, { singleLabel = false }: { singleLabel?: boolean } = {}): string | undefined {
  if (typeof h !== 'string') return 'not a string'
  if (h.length === 0) return 'empty'
  if (h.length > MAX_HOSTNAME) return `longer than ${MAX_HOSTNAME} characters`
  if (/[\s\u0000-\u001f\u007f\u0085\u2028\u2029]/u.test(h)) return 'contains whitespace or a control character'
  for (const [ch, what] of [['#', 'a "#"'], [':', 'a ":" (a port belongs in the url, not the hostname)'], ['/', 'a "/"'], ['*', 'a wildcard']] as const) {
    if (h.includes(ch)) return `contains ${what}`
  }
  if (/[A-Z]/.test(h)) return 'not lower-case'
  if (/[^a-z0-9.-]/.test(h)) return 'contains a character other than a-z, 0-9, "-" and "."'
  const labels = h.split('.')
  if (labels.some((l) => l.length === 0)) return 'has an empty label'
  if (labels.length < 2 && !singleLabel) return 'has a single label (expected name.namespace)'
  if (NUMERIC_LABEL.test(labels[labels.length - 1]!)) return 'is an ip address or ends in a number'
  const long = labels.find((l) => l.length > MAX_LABEL)
  if (long !== undefined) return `has a label longer than ${MAX_LABEL} characters`
  if (labels.length === 2 && labels.every((l) => BINDING_LABEL.test(l))) return undefined
  const bad = labels.find((l) => !DNS_LABEL.test(l))
  if (bad !== undefined) return `label "${bad}" starts or ends with "-"`
  return undefined
}

/** Throws `NGROKD_ERR_HOSTNAME_INVALID` unless `h` passes {@link validateHostname}. */
export function assertValidHostname(h: string, what = 'hostname'): string {
  const reason = validateHostname(h)
  if (reason !== undefined) {
    throw new NgrokdError('NGROKD_ERR_HOSTNAME_INVALID', `${what} ${JSON.stringify(h)} ${reason}`, {
      hint: 'rename the endpoint in ngrok to name.namespace form, e.g. http://api.prod',
    })
  }
  return h
}

const RAW_URL = /^([a-z][a-z0-9+.-]*):\/\/([^/?#\\]*)(.*)$/is

type ParseResult = ParsedEndpointUrl | { code: 'NGROKD_ERR_ENDPOINT_INVALID' | 'NGROKD_ERR_HOSTNAME_INVALID'; reason: string }

/**
 * Parses an endpoint URL: `http` (port 80 by default), `https` (443), `tcp` (port required) or
 * `tls` (443). The hostname is checked on the raw text, because WHATWG URL decodes, lower-cases
 * and IDNA-maps it; WHATWG URL must then agree on the result. Nothing but an optional `/` may
 * follow the authority.
 *
 * Throws `NGROKD_ERR_ENDPOINT_INVALID`, or `NGROKD_ERR_HOSTNAME_INVALID` for a bad hostname.
 *
 * ```ts
 * parseEndpointUrl('tcp://db.prod:5432') // { scheme: 'tcp', hostname: 'db.prod', port: 5432 }
 * ```
 */
export function parseEndpointUrl(url: string): ParsedEndpointUrl {
  const r = tryParseEndpointUrl(url)
  if ('reason' in r) {
    throw new NgrokdError(r.code, `endpoint url ${JSON.stringify(String(url))}: ${r.reason}`, {
      hint:
        r.code === 'NGROKD_ERR_HOSTNAME_INVALID'
          ? 'rename the endpoint in ngrok to name.namespace form, e.g. http://api.prod'
          : 'endpoint urls look like http://name.namespace or tcp://name.namespace:5432',
    })
  }
  return r
}

function tryParseEndpointUrl(url: string): ParseResult {
  const invalid = (reason: string): ParseResult => ({ code: 'NGROKD_ERR_ENDPOINT_INVALID', reason })
  if (typeof url !== 'string' || url.length === 0) return invalid('empty')
  if (/[\s\u0000-\u001f\u007f\u0085\u2028\u2029]/u.test(url)) return invalid('contains whitespace or a control character')
  const m = RAW_URL.exec(url)
  if (!m) return invalid('not of the form scheme://host[:port]')
  const scheme = m[1]!.toLowerCase()
  if (!Object.hasOwn(DEFAULT_PORTS, scheme)) return invalid(`scheme ${JSON.stringify(scheme)} is not http, https, tcp or tls`)
  const authority = m[2]!
  const rest = m[3]!
  if (rest !== '' && rest !== '/') return invalid('has a path, query or fragment')
  if (authority.includes('@')) return invalid('has user information')
  if (authority.startsWith('[')) return invalid('names an ipv6 address, not a hostname')
  // before lower-casing: toLowerCase() maps some non-ASCII letters to ASCII ones (KELVIN SIGN U+212A to "k")
  if (/[^\x21-\x7e]/.test(authority)) return { code: 'NGROKD_ERR_HOSTNAME_INVALID', reason: `hostname ${JSON.stringify(authority)} is not ASCII` }
  const colon = authority.indexOf(':')
  const rawHost = (colon === -1 ? authority : authority.slice(0, colon)).toLowerCase()
  const rawPort = colon === -1 ? undefined : authority.slice(colon + 1)

  const reason = validateHostname(rawHost)
  if (reason !== undefined) return { code: 'NGROKD_ERR_HOSTNAME_INVALID', reason: `hostname ${JSON.stringify(rawHost)} ${reason}` }

  const s = scheme as EndpointScheme
  let port: number
  if (rawPort === undefined) {
    const d = DEFAULT_PORTS[s]
    if (d === undefined) return invalid(`${s} urls must give a port`)
    port = d
  } else {
    if (!/^\d{1,5}$/.test(rawPort)) return invalid(`port ${JSON.stringify(rawPort)} is not a number`)
    port = Number(rawPort)
    if (port < 1 || port > 65535) return invalid(`port ${port} is outside 1-65535`)
  }

  // WHATWG URL must read the same host; anything it would rewrite was already refused above,
  // so a disagreement here is a parser difference, refused rather than guessed at.
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return invalid('not a valid url')
  }
  if (parsed.hostname.toLowerCase() !== rawHost) return invalid(`url parsing reads the host as ${JSON.stringify(parsed.hostname)}`)
  return { scheme: s, hostname: rawHost, port }
}

/** The normalised URL of a parsed endpoint: lower-case, default port omitted. */
export function formatEndpointUrl(e: ParsedEndpointUrl): string {
  return DEFAULT_PORTS[e.scheme] === e.port ? flatJoin(e.scheme, '://', e.hostname) : flatJoin(e.scheme, '://', e.hostname, ':', e.port)
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * Turns the API's bound endpoints into local services.
 *
 * - An item that is not an object or has no string `id` is malformed: it is rejected, the rest go on.
 * - The URL is `url`, else `public_url`, else `<proto>://<hostport>`; one without a scheme takes `proto`'s, else
 *   https's, as ngrok's operator reads it (`service3.namespace3` is `https://service3.namespace3`).
 * - An endpoint whose `bindings` is present and lacks `kubernetes` is not ours: it is rejected; so is one whose URL's
 *   scheme is not its `proto`, as ngrok's operator skips it.
 * - Endpoints with the same normalised URL (pooling) become one service listing every id.
 * - Two services cannot share a hostname and port (one local listener, and the ConnRequest
 *   carries only host and port): the one whose key sorts last is rejected.
 * - Output order does not depend on input order.
 *
 * ```ts
 * const { services, rejected } = groupEndpoints(await api.listBoundEndpoints())
 * ```
 */
export function groupEndpoints(endpoints: readonly unknown[]): GroupedEndpoints {
  const rejected: RejectedEndpoint[] = []
  const byKey = new Map<string, { parsed: ParsedEndpointUrl; entries: Array<{ id: string; url: string }> }>()

  for (const [index, item] of endpoints.entries()) {
    const where = `item ${index + 1} of ${endpoints.length}`
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      rejected.push({ id: '', url: '', reason: `is malformed: ${where} is ${item === null ? 'null' : Array.isArray(item) ? 'a list' : `a ${typeof item}`}, not an endpoint object` })
      continue
    }
    const ep = item as ApiEndpointLike
    const url = endpointUrlOf(ep)
    if (typeof ep.id !== 'string' || ep.id === '') {
      rejected.push({ id: '', url: url ?? '', reason: `is malformed: ${where} has no id` })
      continue
    }
    if (ep.id.length > MAX_ID_CHARS) {
      rejected.push({ id: ep.id, url: url ?? '', reason: `is malformed: ${where} has an id of ${ep.id.length} characters` })
      continue
    }
    const id = ep.id
    if (url !== undefined && url.length > MAX_URL_CHARS) {
      rejected.push({ id, url, reason: `is malformed: its url has ${url.length} characters (a hostname has at most 253)` })
      continue
    }
    if (url === undefined) {
      rejected.push({ id, url: '', reason: 'has no url' })
      continue
    }
    if (ep.bindings !== undefined && ep.bindings !== null) {
      if (!Array.isArray(ep.bindings)) {
        rejected.push({ id, url, reason: 'bindings is not a list' })
        continue
      }
      if (!ep.bindings.includes('kubernetes')) {
        rejected.push({ id, url, reason: `not bound to kubernetes (bindings: ${ep.bindings.map(String).join(', ') || 'none'})` })
        continue
      }
    }
    const mismatch = schemeMismatch(ep, url)
    if (mismatch) {
      rejected.push({ id, url, reason: mismatch })
      continue
    }
    const parsed = tryParseEndpointUrl(url)
    if ('reason' in parsed) {
      rejected.push({ id, url, reason: parsed.reason })
      continue
    }
    const key = formatEndpointUrl(parsed)
    const group = byKey.get(key)
    if (group) group.entries.push({ id, url })
    else byKey.set(key, { parsed, entries: [{ id, url }] })
  }

  let services: DesiredService[] = [...byKey.entries()].map(([key, { parsed, entries }]) => {
    entries.sort((a, b) => compare(a.id, b.id))
    return {
      key,
      url: entries[0]!.url,
      hostname: parsed.hostname,
      port: parsed.port,
      proto: parsed.scheme,
      endpointIds: [...new Set(entries.map((e) => e.id))],
    }
  })
  services.sort((a, b) => compare(a.hostname, b.hostname) || a.port - b.port || compare(a.proto, b.proto))

  const taken = new Map<string, string>()
  services = services.filter((s) => {
    const hp = `${s.hostname}:${s.port}`
    const owner = taken.get(hp)
    if (owner === undefined) {
      taken.set(hp, s.key)
      return true
    }
    for (const id of s.endpointIds) rejected.push({ id, url: s.key, reason: `${hp} is already served by ${owner}` })
    return false
  })

  rejected.sort((a, b) => compare(a.id, b.id))
  return { services, rejected: rejected.map(({ id, url, reason, ...rest }) => ({ ...rest, id: clip(id), url: clip(url), reason: clip(reason) })) }
}

/** An id of ngrok's is ~30 characters (`ep_` and 27): a far longer one is malformed. */
const MAX_ID_CHARS = 256
/** A scheme, a hostname of at most 253 characters (RFC 1035 §2.3.4) and a port fit well within this. */
const MAX_URL_CHARS = 1024
/** How much of an id, url or reason a skipped endpoint carries into the log, status and the control API. */
const SHOWN_CHARS = 300

/** `text` cut to {@link SHOWN_CHARS}, saying how long it was: what the API sent never grows a log line without bound. */
function clip(text: string): string {
  return text.length <= SHOWN_CHARS ? text : `${text.slice(0, SHOWN_CHARS)}… (${text.length} characters)`
}

/** The scheme of a URL without one and without `proto`: ngrok's operator's `defaultScheme` (bindingendpoint_aggregator.go). */
const DEFAULT_SCHEME = 'https'

function endpointUrlOf(ep: ApiEndpointLike): string | undefined {
  const proto = typeof ep?.proto === 'string' && ep.proto !== '' ? ep.proto : undefined
  const text = typeof ep?.url === 'string' && ep.url !== '' ? ep.url : typeof ep?.public_url === 'string' && ep.public_url !== '' ? ep.public_url : undefined
  // a URL without a scheme (`service3.namespace3`) takes `proto`'s, else https, as ngrok's operator reads it (parseHostport)
  if (text !== undefined) return text.includes('://') ? text : `${proto ?? DEFAULT_SCHEME}://${text}`
  if (proto && typeof ep.hostport === 'string' && ep.hostport !== '') return `${proto}://${ep.hostport}`
  return undefined
}

/**
 * Why an endpoint whose URL's scheme is not its `proto` is skipped, as ngrok's operator skips it (`parseHostport`:
 * "mismatched scheme"; Go's URL parser lower-cases the scheme, `proto` is compared as sent); else undefined.
 */
function schemeMismatch(ep: ApiEndpointLike, url: string): string | undefined {
  if (typeof ep.proto !== 'string' || ep.proto === '') return undefined
  const scheme = url.slice(0, Math.max(0, url.indexOf('://'))).toLowerCase()
  return scheme === ep.proto ? undefined : `its url's scheme ${JSON.stringify(scheme)} is not its proto ${JSON.stringify(ep.proto)} (ngrok's operator skips such an endpoint)`
}

/** The distinct hostnames of `services`, sorted: one hosts entry and one address per hostname. */
export function hostsOf(services: readonly Pick<DesiredService, 'hostname'>[]): string[] {
  return [...new Set(services.map((s) => s.hostname))].sort(compare)
}
