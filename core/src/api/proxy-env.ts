import { BlockList, isIP } from 'node:net'

/**
 * The proxy the environment names for `url`, by the rules of Go's `http.ProxyFromEnvironment`
 * (golang.org/x/net/http/httpproxy), which ngrok's own clients follow:
 * - `HTTPS_PROXY` (else `https_proxy`) for an https URL, `HTTP_PROXY` (else `http_proxy`) for an http one; `ALL_PROXY`
 *   is not read. A value without a scheme is `http://` (`proxy:3128`).
 * - `localhost` and loopback addresses are never proxied.
 * - `NO_PROXY` (else `no_proxy`): comma-separated; `*` is every host; an IP address or a CIDR matches addresses; a
 *   domain matches itself and every name under it (`ngrok.com` covers `api.ngrok.com`), `.ngrok.com` and `*.ngrok.com`
 *   only names under it; any of them may end in `:port` (`[::1]:443` for IPv6), then only that port.
 * Undefined: go direct.
 */
export function proxyFromEnvironment(url: URL, env: NodeJS.ProcessEnv = process.env): URL | undefined {
  const https = url.protocol === 'https:'
  const value = https ? (env.HTTPS_PROXY ?? env.https_proxy) : (env.HTTP_PROXY ?? env.http_proxy)
  if (!value?.trim()) return undefined
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase()
  const port = url.port || (https ? '443' : '80')
  if (host === 'localhost' || isLoopback(host)) return undefined
  if (excluded(host, port, env.NO_PROXY ?? env.no_proxy ?? '')) return undefined
  const proxy = value.trim()
  return new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(proxy) ? proxy : `http://${proxy}`)
}

function isLoopback(host: string): boolean {
  const family = isIP(host)
  if (family === 4) return host.startsWith('127.')
  return family === 6 && LOOPBACK_V6.check(host, 'ipv6')
}

const LOOPBACK_V6 = new BlockList()
LOOPBACK_V6.addAddress('::1', 'ipv6')

/** Whether NO_PROXY's `list` sends `host`:`port` direct (Go's httpproxy rules, above). */
function excluded(host: string, port: string, list: string): boolean {
  const family = isIP(host)
  for (const raw of list.split(',')) {
    let entry = raw.trim().toLowerCase()
    if (!entry) continue
    if (entry === '*') return true
    if (entry.includes('/')) {
      // a CIDR: addresses only, no port
      const [network, bits] = entry.split('/') as [string, string]
      const entryFamily = isIP(network)
      if (family !== 0 && entryFamily === family && /^\d+$/.test(bits)) {
        const block = new BlockList()
        const type = family === 4 ? 'ipv4' : 'ipv6'
        try {
          block.addSubnet(network, Number(bits), type)
        } catch {
          continue // a prefix out of range is no entry
        }
        if (block.check(host, type)) return true
      }
      continue
    }
    let entryPort = ''
    const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry)
    if (bracketed) [entry, entryPort] = [bracketed[1]!, bracketed[2] ?? '']
    else if (isIP(entry) === 0) {
      const withPort = /^(.*):(\d+)$/.exec(entry)
      if (withPort) [entry, entryPort] = [withPort[1]!, withPort[2]!]
    }
    if (entryPort && entryPort !== port) continue
    if (isIP(entry) !== 0) {
      if (family !== 0 && ipEqual(entry, host)) return true
      continue
    }
    if (entry.startsWith('*.')) entry = entry.slice(1)
    // `.ngrok.com`: names under it; `ngrok.com`: itself too
    if (entry.startsWith('.') ? host.endsWith(entry) : host === entry || host.endsWith(`.${entry}`)) return true
  }
  return false
}

function ipEqual(a: string, b: string): boolean {
  const family = isIP(a)
  if (family !== isIP(b)) return false
  const list = new BlockList()
  list.addAddress(a, family === 4 ? 'ipv4' : 'ipv6')
  return list.check(b, family === 4 ? 'ipv4' : 'ipv6')
}
