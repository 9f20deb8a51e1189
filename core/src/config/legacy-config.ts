import type { ConfigIssue } from './config-invalid-error.js'
import { isPlainObject } from './validate-layer.js'

/**
 * Keys of the seed daemon's /etc/ngrokd/config.yml that moved. Its other keys (api.url, api.key,
 * bound_endpoints.*, net.interface_name, net.subnet) kept their names; poll_interval was a number of
 * seconds, which is still a valid duration.
 */
export const LEGACY_RENAMED_KEYS: Readonly<Record<string, string>> = {
  ingressEndpoint: 'ingress.endpoint',
  'server.socket_path': 'control.socket',
  'server.log_level': 'log.level',
}

const OWN_CERT = 'ngrokd makes its own key and certificate in state_dir and has the ngrok API sign them'

/** Seed keys with no counterpart, and why. */
export const LEGACY_IGNORED_KEYS: Readonly<Record<string, string>> = {
  'server.client_cert': OWN_CERT,
  'server.client_key': OWN_CERT,
  'net.listen_interface': 'ngrokd always listens on the addresses it gives each endpoint on net.interface_name',
  'net.start_port': "ngrokd listens on each endpoint's own port",
  'net.overrides': 'per-hostname listen addresses are not supported',
}

export interface LegacyMigration {
  /** The content with legacy keys moved to their new names and ignored ones removed. */
  raw: Record<string, unknown>
  /** One per legacy key found: `FILE: deprecated key server.log_level → log.level; rename it`. */
  notices: string[]
  issues: ConfigIssue[]
  /** New path → the legacy name it was written as, so issues name what the user wrote. */
  renamed: Map<string, string>
}

function take(raw: Record<string, unknown>, path: string): unknown {
  const segments = path.split('.')
  let node: unknown = raw
  for (const s of segments.slice(0, -1)) {
    if (!isPlainObject(node)) return undefined
    node = node[s]
  }
  if (!isPlainObject(node) || !Object.hasOwn(node, segments.at(-1)!)) return undefined
  const value = node[segments.at(-1)!]
  delete node[segments.at(-1)!]
  return value
}

function has(raw: Record<string, unknown>, path: string): boolean {
  let node: unknown = raw
  for (const s of path.split('.')) {
    if (!isPlainObject(node) || !Object.hasOwn(node, s)) return false
    node = node[s]
  }
  return true
}

function put(raw: Record<string, unknown>, path: string, value: unknown): void {
  const segments = path.split('.')
  let node = raw
  for (const s of segments.slice(0, -1)) {
    if (!isPlainObject(node[s])) node[s] = {}
    node = node[s] as Record<string, unknown>
  }
  node[segments.at(-1)!] = value
}

/**
 * Rewrites a seed-daemon file (or a new file that still uses a few old keys) into the current layout.
 * Setting an old key and its new name together is an issue: which one was meant is not knowable.
 */
export function migrateLegacyConfig(content: Record<string, unknown>, file?: string): LegacyMigration {
  const raw = structuredClone(content)
  const notices: string[] = []
  const issues: ConfigIssue[] = []
  const renamed = new Map<string, string>()
  const where = file ? `${file}: ` : ''
  const fileField = file ? { file } : {}

  for (const [from, to] of Object.entries(LEGACY_RENAMED_KEYS)) {
    if (!has(raw, from)) continue
    const value = take(raw, from)
    if (has(raw, to)) {
      issues.push({ key: from, message: `is set together with its new name ${to}; remove ${from}`, ...fileField })
      continue
    }
    put(raw, to, value)
    renamed.set(to, from)
    notices.push(`${where}deprecated key ${from} → ${to}; rename it`)
  }
  for (const [key, reason] of Object.entries(LEGACY_IGNORED_KEYS)) {
    if (!has(raw, key)) continue
    take(raw, key)
    notices.push(`${where}${key} is ignored: ${reason}; remove it`)
  }

  if (Object.hasOwn(raw, 'server')) {
    const server = raw.server
    const legacyNames = [...Object.keys(LEGACY_RENAMED_KEYS), ...Object.keys(LEGACY_IGNORED_KEYS)]
      .filter((k) => k.startsWith('server.'))
      .map((k) => k.slice('server.'.length))
    if (!isPlainObject(server)) {
      issues.push({ key: 'server', message: `is the seed daemon's section and must be a mapping of ${legacyNames.join(', ')}`, ...fileField })
    } else {
      for (const name of Object.keys(server)) {
        issues.push({ key: `server.${name}`, message: `unknown key; server is the seed daemon's section, its keys were ${legacyNames.join(', ')}`, ...fileField })
      }
    }
    delete raw.server
  }
  return { raw, notices, issues, renamed }
}
