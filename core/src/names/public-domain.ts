// Only `ngrokd doctor` asks: the daemon never loads tldts's Public Suffix List (~0.8 MB of heap).
import { parse as parseDomain } from 'tldts'

/**
 * When `hostname` is a registrable domain under a public suffix of the ICANN list (`github.com`,
 * `web.dev`), the public domain it is; undefined for names under no public suffix (`db.default`).
 */
export function publicDomainOf(hostname: string): string | undefined {
  const parsed = parseDomain(hostname)
  return parsed.isIcann && parsed.domain ? parsed.domain : undefined
}
