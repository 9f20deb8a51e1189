import { constants } from 'node:fs'
import { open, readdir } from 'node:fs/promises'
import { homedir, hostname as machineHostname } from 'node:os'
import { join } from 'node:path'
import { silentLogger, type Logger } from '../contracts/logger.js'
import type { DesiredService, RejectedEndpoint } from '../protocol/endpoints.js'
import { assertTrustedPath, runsAsRoot } from '../util/trusted-path.js'

/** What ngrok's own clients and the package managers reach: publishing one would redirect the machine's own traffic. */
const ALWAYS_PROTECTED = [
  'api.ngrok.com',
  'kubernetes-binding-ingress.ngrok.io',
  'registry.npmjs.org',
  'registry.yarnpkg.com',
  'pypi.org',
  'files.pythonhosted.org',
  'deb.debian.org',
  'security.debian.org',
  'archive.ubuntu.com',
  'security.ubuntu.com',
]

export interface NamePolicyOptions {
  /** `names.allow`: when not empty, only names matching one of these are published. */
  allow: readonly string[]
  /** `names.deny`: names matching one of these are never published. */
  deny: readonly string[]
  /** Hostnames never published whatever allow says, each with why (`the ngrok API host`). */
  protectedHosts: () => Iterable<readonly [hostname: string, why: string]>
}

/**
 * A suffix pattern of `names.allow` / `names.deny`: `prod` matches `prod` and every name under it
 * (`api.prod`), `*.prod` only names under it, `*` every name.
 */
export function matchesNamePattern(hostname: string, pattern: string): boolean {
  if (pattern === '*') return true
  if (pattern.startsWith('*.')) return hostname.endsWith(pattern.slice(1))
  return hostname === pattern || hostname.endsWith(`.${pattern}`)
}

/**
 * Which hostnames from the account may be published on this machine. A name the machine itself
 * needs (the API and ingress hosts, the package registries, this machine's name, `localhost`) is
 * never published; then `names.deny` refuses and a non-empty `names.allow` admits.
 *
 * ```ts
 * const policy = new NamePolicy({ allow: ['prod'], deny: [], protectedHosts: () => [] })
 * policy.judge('github.com') // 'matches no names.allow pattern (prod)'
 * ```
 */
/** Loopback names distributions' own /etc/hosts define (RHEL's `localhost.localdomain`, Debian's `ip6-localhost`). */
const LOOPBACK_ALIASES = new Set(['localhost.localdomain', 'localhost4', 'localhost4.localdomain4', 'localhost6', 'localhost6.localdomain6', 'ip6-localhost', 'ip6-loopback'])

export class NamePolicy {
  constructor(private readonly options: NamePolicyOptions) {}

  /** Why `hostname` must not be published, or undefined when it may be. */
  judge(hostname: string): string | undefined {
    const name = hostname.toLowerCase().replace(/\.$/, '')
    if (name === 'localhost' || name.endsWith('.localhost')) return 'is a loopback name (RFC 6761)'
    if (LOOPBACK_ALIASES.has(name)) return "is one of the loopback names systems' own hosts files define"

    for (const [host, why] of this.options.protectedHosts()) {
      if (host.toLowerCase() === name) return `is ${why}, which ngrokd never publishes`
    }
    const denied = this.options.deny.find((p) => matchesNamePattern(name, p))
    if (denied !== undefined) return `matches names.deny ${JSON.stringify(denied)}`
    const { allow } = this.options
    if (allow.length > 0 && !allow.some((p) => matchesNamePattern(name, p))) return `matches no names.allow pattern (${allow.join(', ')})`
    return undefined
  }

  /** Splits `services` into those that may be published and, for each refused one, its endpoints as skipped. */
  filter(services: readonly DesiredService[]): { services: DesiredService[]; rejected: RejectedEndpoint[] } {
    const kept: DesiredService[] = []
    const rejected: RejectedEndpoint[] = []
    for (const s of services) {
      const why = this.judge(s.hostname)
      if (why === undefined) kept.push(s)
      else for (const id of s.endpointIds) rejected.push({ id, url: s.url, reason: `skipped as unsafe: ${s.hostname} ${why}`, code: 'NGROKD_ERR_NAME_UNSAFE' })
    }
    return { services: kept, rejected }
  }
}

/** The host of a URL or `host:port`, lower-case, without brackets; undefined when there is none. */
export function hostOf(text: string | undefined): string | undefined {
  if (!text) return undefined
  try {
    return new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `tcp://${text}`).hostname.replace(/^\[|\]$/g, '').toLowerCase() || undefined
  } catch {
    return undefined
  }
}

/** Largest package-manager configuration file read: far above any real one. */
const MAX_PACKAGE_CONFIG_BYTES = 1024 * 1024

/**
 * The text of one package manager's configuration file (npmrc, pip.conf, apt sources), or undefined when there is
 * none or it is refused: only a regular file of at most 1 MiB is read, and as root only one that passes the
 * trusted-path rule (a user's ~/.npmrc under `sudo -E` decides nothing for root). A refused file is skipped with a
 * warning naming it and why.
 */
async function readPackageConfig(path: string, logger: Logger): Promise<string | undefined> {
  try {
    const file = runsAsRoot() ? await assertTrustedPath(path, { what: 'package manager configuration' }) : path
    // O_NONBLOCK: a FIFO opens at once (and is then refused) instead of holding the start until a writer comes
    const handle = await open(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0))
    try {
      const st = await handle.stat()
      if (!st.isFile()) throw new Error(`${path} is not a regular file`)
      if (st.size > MAX_PACKAGE_CONFIG_BYTES) throw new Error(`${path} is ${st.size} bytes, over the ${MAX_PACKAGE_CONFIG_BYTES / 1024 / 1024} MiB such a file may have`)
      return await handle.readFile('utf8')
    } finally {
      await handle.close()
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined
    const why = e instanceof Error ? e.message : String(e)
    logger.warn({ path, code }, `skipping a package manager's configuration (the registries it names are not withheld from publishing): ${why}`)
    return undefined
  }
}

/** Hosts of the URLs `urls(line)` finds on each line of a file (npmrc, pip.conf, apt sources). */
async function hostsInFile(path: string, urls: (line: string) => string | undefined, logger: Logger): Promise<string[]> {
  const text = (await readPackageConfig(path, logger)) ?? ''
  return text.split('\n').flatMap((l) => (urls(l.trim()) ?? '').split(/\s+/).flatMap((u) => hostOf(u) ?? []))
}

/** The first capture group of `re` on a line: a line matcher for {@link hostsInFile}. */
const captured = (re: RegExp) => (line: string) => re.exec(line)?.slice(1).find((g) => g !== undefined)

async function listDir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).map((f) => join(dir, f))
  } catch {
    return []
  }
}

/**
 * The package registries this machine is configured to use: npm's (`npm_config_registry`, npmrc
 * files), pip's (`index-url`), apt's sources; each a hostname that must keep resolving to the real one.
 * A file is read only as {@link readPackageConfig} allows.
 */
export async function configuredRegistryHosts(env: NodeJS.ProcessEnv = process.env, home: string = homedir(), logger: Logger = silentLogger): Promise<string[]> {
  const npmrc = [env.npm_config_userconfig, join(home, '.npmrc'), env.npm_config_globalconfig, '/etc/npmrc', '/usr/local/etc/npmrc'].filter((p): p is string => !!p)
  const npm = captured(/^(?:@[^:]+:)?registry\s*=\s*(\S+)/i)
  const pipFiles = ['/etc/pip.conf', '/etc/xdg/pip/pip.conf', join(home, '.config/pip/pip.conf'), join(home, '.pip/pip.conf')]
  const pip = captured(/^(?:extra-)?index-url\s*[=:]\s*(.+)$/i)
  const aptFiles = ['/etc/apt/sources.list', ...(await listDir('/etc/apt/sources.list.d'))]
  const apt = captured(/^(?:deb(?:-src)?\s+(?:\[[^\]]*\]\s+)?(\S+)|URIs:\s*(.+))$/)
  const files = [...npmrc.map((f) => [f, npm] as const), ...pipFiles.map((f) => [f, pip] as const), ...aptFiles.map((f) => [f, apt] as const)]
  return [...[env.npm_config_registry, env.NPM_CONFIG_REGISTRY].flatMap((u) => hostOf(u) ?? []), ...(await Promise.all(files.map(([f, urls]) => hostsInFile(f, urls, logger)))).flat()]
}

/** The hosts of the proxy variables (either case), as programs read them: a value without a scheme is `host:port`. */
export function proxyHosts(env: NodeJS.ProcessEnv): string[] {
  const names = ['HTTPS_PROXY', 'HTTP_PROXY', 'ALL_PROXY'].flatMap((n) => [n, n.toLowerCase()])
  return [...new Set(names.flatMap((n) => hostOf(env[n]?.trim()) ?? []))]
}

/**
 * Every hostname the machine itself needs, each with why: ngrok's API and ingress (configured and
 * default), well-known and configured package registries, the proxies the environment names, and this machine's own
 * name. The ingress the API named at run time is added by the daemon.
 */
export async function machineProtectedHosts(config: { api: { url: string }; ingress: { endpoint?: string } }, logger: Logger = silentLogger): Promise<Array<[string, string]>> {
  const hosts: Array<[string, string]> = []
  const api = hostOf(config.api.url)
  if (api) hosts.push([api, 'the ngrok API host (api.url)'])
  const ingress = hostOf(config.ingress.endpoint)
  if (ingress) hosts.push([ingress, 'the binding ingress host (ingress.endpoint)'])
  for (const h of ALWAYS_PROTECTED) hosts.push([h, h.includes('ngrok') ? "one of ngrok's own hosts" : 'a package registry host'])
  // published, a proxy's name would lead ngrokd's own API calls (and the machine's proxied traffic) into an endpoint
  for (const h of proxyHosts(process.env)) hosts.push([h, 'a proxy this machine is configured to use (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY)'])
  for (const h of await configuredRegistryHosts(process.env, homedir(), logger)) hosts.push([h, 'a package registry this machine is configured to use'])
  hosts.push([machineHostname().toLowerCase(), "this machine's own hostname"])
  return hosts
}
