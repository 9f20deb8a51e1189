import { NgrokdError, type EndpointProto } from '@ngrokd/core'

export interface EndpointAddress {
  /** Canonical URL: default ports left out, except for tcp which always names its port. */
  url: string
  proto: EndpointProto
  host: string
  port: number
  hostport: string
}

const DEFAULT_PORT: Record<EndpointProto, number | undefined> = { http: 80, https: 443, tls: 443, tcp: undefined }

// PROTOCOL.md §1: kubernetes-bound http/tcp hostnames are exactly `name.namespace`.
const K8S_LABEL = '[a-z][a-z0-9-]{0,62}'
const K8S_HOST = new RegExp(`^${K8S_LABEL}\\.${K8S_LABEL}$`)
// Older https/tls endpoints: any DNS name (RFC 1123 labels), no wildcard.
const DNS_LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?'
const DNS_HOST = new RegExp(`^${DNS_LABEL}(?:\\.${DNS_LABEL})+$`)

function invalid(url: string, why: string): NgrokdError {
  return new NgrokdError('NGROKD_ERR_ENDPOINT_INVALID', `simulator: endpoint url ${JSON.stringify(url)} ${why}`, {
    hint: 'use http://name.namespace[:port] or tcp://name.namespace:port (or pass skipValidation to serve it anyway)',
  })
}

/**
 * Parses an endpoint URL the way ngrok validates it when the endpoint is created. Deliberately not
 * core's `parseEndpointUrl`: that one is the client's rule (what ngrokd will publish), this one is
 * the cloud's (what can exist); tests need the two to be independent.
 * With `strict: false` nothing is validated beyond `scheme://host[:port]`, so tests can serve the
 * malformed endpoints a client must reject (a hostname with a newline, three labels, …).
 */
export function parseEndpointUrl(input: string, options: { strict?: boolean } = {}): EndpointAddress {
  const m = /^([a-z]+):\/\/(.*)$/s.exec(input)
  if (!m) throw invalid(input, 'is not scheme://host[:port]')
  const scheme = m[1]!
  if (!(scheme in DEFAULT_PORT)) throw invalid(input, `has scheme ${scheme}: only http, tcp (and legacy https, tls) exist`)
  const proto = scheme as EndpointProto
  let rest = m[2]!
  let port: number | undefined
  const pm = /:(\d{1,5})$/.exec(rest)
  if (pm) {
    port = Number(pm[1])
    rest = rest.slice(0, pm.index)
  }

  if (options.strict === false) {
    const p = port ?? DEFAULT_PORT[proto] ?? 0
    return { url: input, proto, host: rest, port: p, hostport: `${rest}:${p}` }
  }

  const host = rest.toLowerCase()
  if (proto === 'http' || proto === 'tcp') {
    if (!K8S_HOST.test(host)) throw invalid(input, 'must have a hostname of exactly two labels, name.namespace')
  } else if (!DNS_HOST.test(host)) {
    throw invalid(input, 'has an invalid hostname')
  }
  if (port === undefined) {
    port = DEFAULT_PORT[proto]
    if (port === undefined) throw invalid(input, 'must name a port: tcp endpoints have no default')
  }
  if (port < 1 || port > 65535) throw invalid(input, 'has a port outside 1-65535')
  const showPort = proto === 'tcp' || port !== DEFAULT_PORT[proto]
  return { url: `${proto}://${host}${showPort ? `:${port}` : ''}`, proto, host, port, hostport: `${host}:${port}` }
}
