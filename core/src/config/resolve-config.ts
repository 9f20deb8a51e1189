import { dirname, resolve } from 'node:path'
import { ConfigInvalidError, type ConfigIssue, type ConfigOrigin } from './config-invalid-error.js'
import { pluginEntryName } from './builtin-plugins.js'
import { builtinDrivers } from './builtin-drivers.js'
import type { NgrokdError } from '../errors/ngrokd-error.js'
import { getConfigModel } from './config-schema.js'
import { didYouMean } from '../util/did-you-mean.js'
import type { ConfigNotice, DaemonConfig, LoadedConfig } from './daemon-config.js'
import { readEnvOverrides } from './env-overrides.js'
import { LEGACY_IGNORED_KEYS, LEGACY_RENAMED_KEYS, migrateLegacyConfig } from './legacy-config.js'
import { instanceDefaults } from './instance.js'
import { defaultStateDir, defaultControlSocket, type PlatformDefaultsOptions } from './platform-defaults.js'
import { isPlainObject, validateLayer } from './validate-layer.js'
import { encodeConnRequestBody, MAX_FRAME_BODY } from '../protocol/binding-frames.js'
import { isIpv4, LOOPBACK_IPV4, parseSubnet, subnetContains, subnetsOverlap } from '../util/ipv4.js'

export interface ResolveConfigOptions {
  /** The file `content` was read from. Its directory is `configDir`; relative paths in it resolve there. */
  source?: string
  /** Base of relative paths from the environment, and `configDir` without a file. Default `process.cwd()`. */
  cwd?: string
  /** Default `process.env`. Pass `{}` to ignore the environment. */
  env?: NodeJS.ProcessEnv
  /** The OS whose defaults apply (platform-defaults.ts), and where its `ProgramData` is read. Default: this process's. */
  platformDefaults?: PlatformDefaultsOptions
  /**
   * Given: bad keys do not throw; they are handed to this and left at their defaults, and the configuration is
   * built from the good ones. For commands that only ask a running daemon (`status`, `list`), whose file may
   * have been edited under it: the daemon runs on what it read.
   */
  salvage?: (error: NgrokdError<'NGROKD_ERR_CONFIG_INVALID'>) => void
  /** Where the configuration sits in its file (`ngrokd`, in a package.json): the file's issues name their keys under it. */
  within?: string
}

function defaultsContent(): Record<string, unknown> {
  const content: Record<string, unknown> = {}
  for (const key of getConfigModel().keys) {
    if (key.schema.default === undefined) continue
    let node = content
    for (const s of key.segments.slice(0, -1)) node = (node[s] ??= {}) as Record<string, unknown>
    node[key.segments.at(-1)!] = structuredClone(key.schema.default)
  }
  return content
}

function buildConfig(values: Map<string, unknown>, configDir: string): DaemonConfig {
  const out: Record<string, unknown> = {}
  for (const key of getConfigModel().keys) {
    let node = out
    for (const s of key.outputSegments.slice(0, -1)) node = (node[s] ??= {}) as Record<string, unknown>
    if (values.has(key.path)) node[key.outputSegments.at(-1)!] = structuredClone(values.get(key.path))
  }
  out.configDir = configDir
  return out as unknown as DaemonConfig
}

/**
 * Why `content` is no ngrokd config at all — not a mapping, or a mapping none of whose top-level keys is ngrokd's (or
 * the seed daemon's) — or undefined. Such a file's text is never echoed: `--config` may name a file that is not one
 * (a key, a password file), and a command run with privilege would print what its caller may not read.
 */
function notAConfig(content: unknown): string | undefined {
  const sections = getConfigModel().sections.get('')!.names
  const expected = `expected a mapping of the sections ${sections.join(', ')}; its content is not shown`
  if (!isPlainObject(content)) return `the file holds ${Array.isArray(content) ? 'a list' : `a ${typeof content}`}, not an ngrokd config: ${expected}`
  const legacy = [...Object.keys(LEGACY_RENAMED_KEYS), ...Object.keys(LEGACY_IGNORED_KEYS)].map((k) => k.split('.')[0]!)
  const keys = Object.keys(content)
  // a section's typo (`nte:`) or dotted name (`net.subnet:`) makes it a config with a mistake, said key by key
  if (keys.length === 0 || keys.some((k) => [k, k.split('.')[0]!].some((name) => sections.includes(name) || legacy.includes(name) || didYouMean(name, sections)))) return undefined
  return `none of the file's ${keys.length} top-level key${keys.length === 1 ? '' : 's'} is ngrokd's: not an ngrokd config? ${expected}`
}

/**
 * Turns a configuration file's parsed content (or `undefined` for none) into a {@link DaemonConfig}:
 * legacy keys are renamed with a notice, the content and the environment are validated against
 * config.schema.json, and defaults < file < environment are merged. No file is read here.
 *
 * ```ts
 * const { config } = resolveConfig({ net: { subnet: '10.99.0.0/24' } }, { env: {} })
 * config.net.subnet // '10.99.0.0/24'
 * ```
 * @throws ConfigInvalidError (`NGROKD_ERR_CONFIG_INVALID`) listing every bad key of the file and the environment.
 */
export function resolveConfig(content: unknown, options: ResolveConfigOptions = {}): LoadedConfig {
  const cwd = resolve(options.cwd ?? process.cwd())
  const source = options.source === undefined ? undefined : resolve(cwd, options.source)
  const configDir = source ? dirname(source) : cwd
  const notices: ConfigNotice[] = []
  const issues: ConfigIssue[] = []

  const defaults = validateLayer(defaultsContent(), { baseDir: configDir })
  // A default that fails its own schema is a bug in config.schema.json, not the user's fault.
  if (defaults.issues.length) throw new Error(`config.schema.json has bad defaults: ${defaults.issues.map((i) => `${i.key}: ${i.message}`).join('; ')}`)
  // the schema's POSIX state_dir means this OS's place (on Windows under %ProgramData%, not the drive root); an
  // instance's is derived from it below
  defaults.values.set('state_dir', defaultStateDir(options.platformDefaults))
  defaults.values.set('control.socket', defaultControlSocket(options.platformDefaults))

  let fileValues = new Map<string, unknown>()
  // the name a key of the file was written under, when it differs (a legacy key)
  let fileLabel = (path: string): string => path
  if (content !== undefined && content !== null) {
    const file = source ? { file: source } : {}
    const foreign = notAConfig(content)
    if (foreign) {
      issues.push({ key: '(top level)', message: foreign, ...file })
    } else if (!isPlainObject(content)) {
      issues.push(...validateLayer(content, { baseDir: configDir, ...file }).issues)
    } else {
      const legacy = migrateLegacyConfig(content, source)
      notices.push(...legacy.notices.map((message) => ({ check: 'config.deprecated' as const, message })))
      issues.push(...legacy.issues)
      const layer = validateLayer(legacy.raw, { baseDir: configDir, ...file, labelFor: (path) => legacy.renamed.get(path), ...(options.within ? { within: options.within } : {}) })
      issues.push(...layer.issues)
      fileValues = layer.values
      fileLabel = (path) => legacy.renamed.get(path) ?? path
    }
  }

  const env = readEnvOverrides(options.env ?? process.env)
  notices.push(...env.notices.map((message) => ({ check: 'config.environment' as const, message })))
  issues.push(...env.issues)
  const envLayer = validateLayer(env.raw, { baseDir: cwd, envFor: (path) => env.sources.get(path) })
  issues.push(...envLayer.issues)

  const values = new Map([...defaults.values, ...fileValues, ...envLayer.values])
  const instance = values.get('instance')
  const fileInstance = fileValues.get('instance')
  if (fileInstance !== undefined && fileInstance !== instance) {
    issues.push({ key: 'instance', file: source ?? 'the file', message: `the file is instance ${JSON.stringify(fileInstance)}, but ${env.sources.get('instance') ?? 'the environment'} (or --instance) says ${JSON.stringify(instance)}; use the file of that instance` })
  }
  if (typeof instance === 'string') {
    for (const [key, value] of instanceDefaults(instance, defaults.values)) if (!fileValues.has(key) && !envLayer.values.has(key)) values.set(key, value)
  }
  for (const issue of [loopbackSubnetIssue(values), plainHttpApiIssue(values), pluginResolverIssue(values), prometheusListenIssue(values), podIdentitySizeIssue(values), controlSocketLengthIssue(values, options.platformDefaults?.platform ?? process.platform)]) {
    if (!issue) continue
    const envName = envLayer.values.has(issue.key) ? env.sources.get(issue.key) : undefined
    issues.push({ ...issue, ...(envName ? { env: envName } : source ? { file: source } : {}) })
  }
  if (values.get('api.allow_insecure_http') === true && isPlainHttpToNetwork(String(values.get('api.url')))) {
    notices.push({
      check: 'api.insecure-http',
      message: `INSECURE: api.allow_insecure_http is set and api.url ${String(values.get('api.url'))} is plain HTTP: the ngrok API key and the registration cross the network unencrypted; use https`,
    })
  }
  if (options.within && source) {
    const within = options.within
    for (const issue of issues) if (issue.file === source && !issue.env) issue.key = issue.key === '(top level)' ? within : `${within}.${issue.key}`
  }
  if (issues.length) {
    if (!options.salvage) throw new ConfigInvalidError(issues)
    options.salvage(new ConfigInvalidError(issues))
  }
  const origins: Record<string, ConfigOrigin> = {}
  for (const { path } of getConfigModel().keys) {
    const envName = envLayer.values.has(path) ? env.sources.get(path) : undefined
    if (envName) origins[path] = { key: path, env: envName }
    else if (fileValues.has(path)) origins[path] = { key: options.within && source ? `${options.within}.${fileLabel(path)}` : fileLabel(path), ...(source ? { file: source } : {}) }
  }
  const config = buildConfig(values, configDir)
  if (Object.keys(origins).length > 0) config.origins = origins
  const apiKeyOrigin = envLayer.values.has('api.key') ? `environment variable ${env.sources.get('api.key')}` : fileValues.has('api.key') ? `api.key in ${source ?? 'the configuration'}` : undefined
  return { config, ...(source ? { source } : {}), notices, ...(apiKeyOrigin ? { apiKeyOrigin } : {}) }
}

/**
 * 127.0.0.0/8 is for a loopback-only driver: any other driver would put loopback addresses on a
 * real interface, where the kernel treats them as martians.
 */
function loopbackSubnetIssue(values: Map<string, unknown>): Omit<ConfigIssue, 'file' | 'env'> | undefined {
  const subnet = parseSubnet(String(values.get('net.subnet')))
  const driver = String(values.get('net.driver'))
  const builtin = driver === 'auto' || driver in builtinDrivers || (Object.values(builtinDrivers) as string[]).includes(driver)
  // a third-party driver may serve loopback (its capabilities.loopbackOnly): the start judges it (di/container.ts)
  if (driver === 'loopback-alias' || driver === builtinDrivers['loopback-alias'] || !builtin || !subnetsOverlap(subnet, parseSubnet(LOOPBACK_IPV4))) return undefined
  return {
    key: 'net.subnet',
    message: `${JSON.stringify(subnet.cidr)} overlaps ${LOOPBACK_IPV4}, loopback (RFC 1122 §3.2.1.3), which of the built-in drivers only net.driver: loopback-alias serves from; expected a private unicast range such as 10.107.0.0/16, or net.driver: loopback-alias`,
  }
}

/**
 * `metrics.prometheus_listen` is the older spelling of the prometheus plugin's `listen`: beside a `prometheus` entry in
 * `plugins:` it fills that entry's `listen` when it has none (pluginSpecsOf), and another `listen` there is refused.
 */
function prometheusListenIssue(values: Map<string, unknown>): Omit<ConfigIssue, 'file' | 'env'> | undefined {
  const listen = values.get('metrics.prometheus_listen')
  if (typeof listen !== 'string' || listen === '') return undefined
  const entry = ((values.get('plugins') as unknown[] | undefined) ?? []).find((p) => typeof p === 'object' && p !== null && (p as { name?: unknown }).name === 'prometheus')
  const own = (entry as { options?: { listen?: unknown } } | undefined)?.options?.listen
  if (own === undefined || own === listen) return undefined
  return {
    key: 'metrics.prometheus_listen',
    message: `${JSON.stringify(listen)} is the older spelling of the prometheus plugin's listen, and plugins gives it listen ${JSON.stringify(own)}; expected one of the two (plugins: [{ name: prometheus, options: { listen } }])`,
  }
}

/** `names.resolver` values that a built-in plugin offers, by the plugin's name (plugins/dns). */
const PLUGIN_RESOLVERS: Record<string, string> = { dns: 'dns' }

/** A plugin's resolver needs that plugin in `plugins:`; without it the name would be looked for as a driver package. */
function pluginResolverIssue(values: Map<string, unknown>): Omit<ConfigIssue, 'file' | 'env'> | undefined {
  const resolver = String(values.get('names.resolver'))
  const plugin = PLUGIN_RESOLVERS[resolver]
  if (!plugin) return undefined
  const plugins = (values.get('plugins') as unknown[] | undefined) ?? []
  if (plugins.some((p) => pluginEntryName(p) === plugin)) return undefined // by its short name or its package's
  return {
    key: 'names.resolver',
    message: `${JSON.stringify(resolver)} is the ${plugin} plugin's resolver, and plugins does not load it; expected plugins: [${plugin}] beside it, or names.resolver: hosts-file`,
  }
}

/**
 * The bytes a Unix socket's path may take, its NUL aside: `sun_path` is 108 bytes on Linux (<linux/un.h> UNIX_PATH_MAX),
 * 104 on macOS and the BSDs (<sys/un.h>). A longer one Node cuts short without a word: the daemon would listen elsewhere.
 */
function socketPathMax(platform: NodeJS.Platform): number {
  return platform === 'linux' ? 107 : 103
}

/** `control.socket` must fit in `sun_path` (on Windows it only names a pipe). */
function controlSocketLengthIssue(values: Map<string, unknown>, platform: NodeJS.Platform): Omit<ConfigIssue, 'file' | 'env'> | undefined {
  const path = String(values.get('control.socket'))
  const bytes = Buffer.byteLength(path)
  if (platform === 'win32' || bytes <= socketPathMax(platform)) return undefined
  return {
    key: 'control.socket',
    message: `${JSON.stringify(path)} is ${bytes} bytes long, and a Unix socket's path holds at most ${socketPathMax(platform)} here (sun_path); expected a shorter path, such as ${defaultControlSocket({ platform })}`,
  }
}

/** The longest ConnRequest host (a DNS name, RFC 1035 §2.3.4) and port: the pod identity must fit beside them. */
const LONGEST_CONN_REQUEST = { host: 'x'.repeat(253), port: 65535 }

/** Every ConnRequest carries the pod identity, and a ConnRequest is one frame, and its length a uint16 (PROTOCOL.md §4, step 3). */
function podIdentitySizeIssue(values: Map<string, unknown>): Omit<ConfigIssue, 'file' | 'env'> | undefined {
  const field = (name: string) => values.get(`ingress.pod_identity.${name}`) as string | undefined
  const podIdentity = { uid: field('uid'), name: field('name'), namespace: field('namespace'), annotations: values.get('ingress.pod_identity.annotations') as Record<string, string> | undefined }
  const bytes = encodeConnRequestBody({ ...LONGEST_CONN_REQUEST, podIdentity }).length
  if (bytes <= MAX_FRAME_BODY) return undefined
  return {
    key: 'ingress.pod_identity.annotations',
    message: `a ConnRequest with this pod identity takes up to ${bytes} bytes, over the ${MAX_FRAME_BODY} one frame holds; expected fewer or shorter annotations (ngrok's operator sends only k8s.ngrok.com/ ones)`,
  }
}

/** Whether `url` is `http:` to a host other than loopback (localhost, 127.0.0.0/8, [::1]). */
export function isPlainHttpToNetwork(url: string): boolean {
  const { protocol, hostname } = new URL(url)
  if (protocol !== 'http:') return false
  const host = hostname.toLowerCase()
  return !(host === 'localhost' || host === '[::1]' || (isIpv4(host) && subnetContains(parseSubnet(LOOPBACK_IPV4), host)))
}

/** Plain HTTP would carry the API key in clear text: only to loopback, or when explicitly allowed. */
function plainHttpApiIssue(values: Map<string, unknown>): Omit<ConfigIssue, 'file' | 'env'> | undefined {
  const url = String(values.get('api.url'))
  if (values.get('api.allow_insecure_http') === true || !isPlainHttpToNetwork(url)) return undefined
  return {
    key: 'api.url',
    message: `${JSON.stringify(url)} is plain HTTP to a host that is not loopback: the API key would cross the network in clear text; expected an https URL (set api.allow_insecure_http: true only for a trusted test network)`,
  }
}

/** Every default, nothing read from a file or the environment. For tests and the test kit. */
export function defaultConfig(configDir: string = process.cwd()): DaemonConfig {
  return resolveConfig(undefined, { cwd: configDir, env: {} }).config
}
