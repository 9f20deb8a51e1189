import { resolve } from 'node:path'
import { isIpv4, LOOPBACK_IPV4, parseSubnet, specialRangesOverlapping } from '../util/ipv4.js'
import type { SchemaNode } from './config-schema.js'
import { checkDuration, DURATION_EXPECTED } from './parse-duration.js'
import { redactSecret } from './redact-secret.js'

/** What a key accepts, in words, for "…; expected <this>" in error messages. @internal */
export function expectedFor(schema: SchemaNode): string {
  const x = schema['x-ngrokd']
  if (x?.expected) return x.expected
  switch (x?.kind) {
    case 'duration':
      return `${DURATION_EXPECTED}${x.minimum ? `, at least ${x.minimum}` : ''}`
    case 'ipv4-subnet':
      return `an IPv4 subnet in CIDR form with the host bits zero and a prefix of /${x.maxPrefix ?? 32} or shorter, such as 10.107.0.0/16, outside the special-purpose ranges`
    case 'ifname':
      return "a Linux interface name: 1 to 15 bytes without '/', ':', '%' or whitespace, such as ngrokd0"
    case 'url':
      return 'an http or https URL such as https://api.ngrok.com'
    case 'host-port':
      return 'host or host:port, such as kubernetes-binding-ingress.ngrok.io:443'
    case 'ipv4':
      return 'an IPv4 address such as 192.168.1.10 or 0.0.0.0'
    case 'path':
      return 'a file path'
    case 'secret':
      return 'a string'
  }
  if (schema.enum) return `one of ${schema.enum.join(', ')}`
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type
  switch (type) {
    case 'boolean':
      return 'true or false'
    case 'array': {
      const items = schema.items ? expectedFor(schema.items).replace(/^an? /, '') : 'values'
      return `a list of ${items.replace(/string$/, 'strings')}${schema.minItems ? ` (at least ${schema.minItems})` : ''}`
    }
    case 'object': {
      // additionalProperties: { type: string } — a mapping whose values must be strings (annotations)
      const values = typeof schema.additionalProperties === 'object' ? schema.additionalProperties.type : undefined
      return values === 'string' ? 'a mapping of names to strings' : 'a mapping of names to values'
    }
    case 'number':
    case 'integer':
      return numberExpected(schema, type)
    default:
      // a pattern of one character class (`^[a-z0-9-]+$`) says what the string may hold
      if (typeof schema.pattern === 'string' && /^\^\[[\w-]+\]\+\$$/.test(schema.pattern)) return `a string of the characters ${schema.pattern.slice(1, -2)}`
      return schema.minLength ? 'a non-empty string' : 'a string'
  }
}

/**
 * `a whole number from 0 to 256, or "auto"`: the kind, the range, and the one word a number-or-word
 * key (`type: [integer, string]` with a `^word$` pattern) also takes.
 */
function numberExpected(schema: SchemaNode, type: string): string {
  const kind = type === 'integer' ? 'a whole number' : 'a number'
  const { minimum, maximum, exclusiveMinimum } = schema
  const range =
    minimum !== undefined && maximum !== undefined
      ? ` from ${minimum} to ${maximum}`
      : minimum !== undefined
        ? ` of ${minimum} or more`
        : exclusiveMinimum !== undefined
          ? ` greater than ${exclusiveMinimum}`
          : maximum !== undefined
            ? ` of ${maximum} or less`
            : ''
  const word = Array.isArray(schema.type) && schema.type.includes('string') ? /^\^(\w+)\$$/.exec(schema.pattern ?? '')?.[1] : undefined
  return `${kind}${range}${word ? `, or "${word}"` : ''}`
}

/** A value for an error message: JSON, shortened; secrets redacted. @internal */
export function renderValue(value: unknown, schema?: SchemaNode): string {
  if (schema?.['x-ngrokd']?.kind === 'secret') return JSON.stringify(redactSecret(String(value)))
  // NaN and ±Infinity (YAML .nan, .inf) are not JSON: JSON.stringify would say null
  const text = typeof value === 'number' && !Number.isFinite(value) ? String(value) : (JSON.stringify(value) ?? String(value))
  return text.length > 80 ? `${text.slice(0, 77)}...` : text
}

const HOST = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?$/

/**
 * Checks and converts a value the schema already accepted, by its `x-ngrokd.kind`. `value: undefined`
 * in the result means "not set" (an empty API key). Relative paths resolve against `baseDir`. @internal
 */
export function normalizeValue(schema: SchemaNode, value: unknown, baseDir: string): { value: unknown } | { problem: string } {
  const x = schema['x-ngrokd']
  switch (x?.kind) {
    case 'duration': {
      const checked = checkDuration(value)
      if ('problem' in checked) return checked
      if (x.minimum) {
        const min = checkDuration(x.minimum)
        if ('ms' in min && checked.ms < min.ms) return { problem: `is shorter than ${x.minimum}` }
      }
      return { value: checked.ms }
    }
    case 'ipv4-subnet': {
      const text = String(value).trim()
      try {
        const subnet = parseSubnet(text)
        if (x.maxPrefix !== undefined && subnet.prefix > x.maxPrefix) {
          return { problem: `has a prefix longer than /${x.maxPrefix}, too small for endpoint addresses` }
        }
        // Loopback is judged with net.driver (resolveConfig): loopback-alias serves from it.
        const special = specialRangesOverlapping(subnet).filter((r) => r.cidr !== LOOPBACK_IPV4)
        if (special.length) {
          return { problem: `overlaps ${special.map((r) => `${r.cidr}, ${r.purpose}`).join('; ')}: no endpoint address may come from there` }
        }
        return { value: subnet.cidr }
      } catch {
        try {
          return { problem: `has host bits set (its network is ${parseSubnet(text, { strict: false }).cidr})` }
        } catch {
          return { problem: 'is not an IPv4 subnet' }
        }
      }
    }
    case 'ifname':
      // IFNAMSIZ is 16 bytes with the terminating NUL (<linux/if.h>); the schema counts characters.
      return Buffer.byteLength(String(value)) > 15 ? { problem: 'is longer than 15 bytes' } : { value }
    case 'url': {
      const text = String(value).trim()
      let url: URL
      try {
        url = new URL(text)
      } catch {
        return { problem: 'is not a URL' }
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') return { problem: `uses ${url.protocol.slice(0, -1)}, not http or https` }
      return { value: text.replace(/\/+$/, '') }
    }
    case 'host-port': {
      const text = String(value).trim()
      const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(text)
      if (!m || (m[2] !== undefined && !HOST.test(m[2]))) return { problem: 'is not a host or host:port' }
      if (m[3] !== undefined && (Number(m[3]) < 1 || Number(m[3]) > 65535)) return { problem: 'has a port outside 1-65535' }
      return { value: text }
    }
    case 'ipv4':
      return isIpv4(String(value).trim()) ? { value: String(value).trim() } : { problem: 'is not an IPv4 address' }
    case 'path': {
      const text = String(value)
      if (text.includes('\0')) return { problem: 'contains a NUL byte' }
      return { value: resolve(baseDir, text) }
    }
    case 'secret': {
      const text = String(value).trim()
      return { value: text === '' ? undefined : text }
    }
  }
  return { value }
}
