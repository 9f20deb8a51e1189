import { ipFamily } from '../util/ip-family.js'
import { networkInterfaces } from 'node:os'
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
  'net.start_port': 'net.network.start_port',
}

/**
 * The seed's `net.listen_interface`: `virtual` (its default: only the per-endpoint addresses), an IP
 * address, or an interface name. It maps onto `net.network.listen` (see {@link migrateLegacyConfig}).
 */
export const LEGACY_LISTEN_INTERFACE = 'net.listen_interface'
/** The seed's default `net.start_port`, kept for a seed file that turns network mode on without one. */
export const SEED_START_PORT = 9080

const OWN_CERT = 'ngrokd makes its own key and certificate in state_dir and has the ngrok API sign them'

/** Seed keys with no counterpart, and why. */
export const LEGACY_IGNORED_KEYS: Readonly<Record<string, string>> = {
  'server.client_cert': OWN_CERT,
  'server.client_key': OWN_CERT,
  'net.overrides': 'per-hostname listen addresses are not supported',
}

/** What `os.networkInterfaces()` returns; injectable for tests. */
export type InterfaceTable = NodeJS.Dict<Array<{ address: string; family: string | number; internal: boolean }>>

export interface LegacyMigrationOptions {
  /** Where interface names in `net.listen_interface` are looked up. Default `os.networkInterfaces`. */
  interfaces?: () => InterfaceTable
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
export function migrateLegacyConfig(content: Record<string, unknown>, file?: string, options: LegacyMigrationOptions = {}): LegacyMigration {
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
  migrateListenInterface(raw, { where, fileField, notices, issues, renamed, interfaces: options.interfaces ?? networkInterfaces })
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

/**
 * `net.listen_interface` → `net.network.listen`, with one notice. An address maps as it is; `virtual`
 * means network mode off; an interface NAME is resolved here, when the configuration is loaded (at
 * daemon start), to its first IPv4 address (loopback ones only for `lo`/`lo0`, as the seed did): the
 * configuration then holds an address like every other network-mode setting, and a name without an
 * IPv4 address is a configuration issue that stops the start with the interfaces it could have been.
 * An address that changes later (DHCP) needs a restart; `0.0.0.0` avoids that.
 */
function migrateListenInterface(
  raw: Record<string, unknown>,
  ctx: { where: string; fileField: { file?: string }; notices: string[]; issues: ConfigIssue[]; renamed: Map<string, string>; interfaces: () => InterfaceTable },
): void {
  const from = LEGACY_LISTEN_INTERFACE
  const to = 'net.network.listen'
  if (!has(raw, from)) return
  const value = take(raw, from)
  if (has(raw, to)) {
    ctx.issues.push({ key: from, message: `is set together with its new name ${to}; remove ${from}`, ...ctx.fileField })
    return
  }
  if (typeof value !== 'string' || value.trim() === '') {
    ctx.issues.push({ key: from, message: `must be "virtual", an IP address or an interface name; set ${to} to an address instead`, ...ctx.fileField })
    return
  }
  const spec = value.trim()
  if (spec === 'virtual') {
    ctx.notices.push(`${ctx.where}${from} "virtual" is the default (network mode off); remove it`)
    return
  }
  let address = spec
  let how = ''
  if (ipFamily(spec) === 0) {
    const table = ctx.interfaces()
    const found = (table[spec] ?? []).find((a) => (a.family === 'IPv4' || a.family === 4) && (!a.internal || spec === 'lo' || spec === 'lo0'))
    if (!found) {
      const known = Object.entries(table)
        .flatMap(([name, addrs]) => (addrs ?? []).filter((a) => a.family === 'IPv4' || a.family === 4).map((a) => `${name} ${a.address}`))
        .join(', ')
      ctx.issues.push({
        key: from,
        message: `names no interface with an IPv4 address (${known ? `this machine has: ${known}` : 'this machine has none'}); set ${to} to an address of this machine, or 0.0.0.0`,
        ...ctx.fileField,
      })
      return
    }
    address = found.address
    how = `; interface ${spec} resolved to ${address} now (a later change needs a restart)`
  }
  put(raw, to, address)
  ctx.renamed.set(to, from)
  // the seed counted network ports from 9080 unless told otherwise: keep its ports
  if (!has(raw, 'net.network.start_port')) {
    put(raw, 'net.network.start_port', SEED_START_PORT)
    how += `; ports count from the seed's default ${SEED_START_PORT}`
  }
  ctx.notices.push(`${ctx.where}deprecated key ${from} → ${to}${how}; set ${to}: ${address}`)
}
