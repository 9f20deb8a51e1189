import type { Ajv as AjvClass, ErrorObject, ValidateFunction } from 'ajv'
import type { Registry } from 'prom-client'
import type { DependencyContainer } from '../di/tsyringe.js'
import type { Check } from '../contracts/check.js'
import type { Logger } from '../contracts/logger.js'
import type { NameResolver } from '../contracts/name-resolver.js'
import { NgrokdError, formatError, isNgrokdError } from '../errors/ngrokd-error.js'
import type { PluginContext, PluginInterfaceInfo, PluginModule, PluginRouteHandler, ServingEntry } from './define-plugin.js'
import { resolvePlugin } from './resolve-plugin.js'
import { PluginNameResolver } from './plugin-name-resolver.js'
import { pluginRouteKey } from './plugin-routes.js'
import { asPlugin, boundToPlugin, type RunningPlugin } from './plugin-context.js'
import { within } from '../util/within.js'
import { wellFormedChecks as wellFormed } from '../contracts/check-shape.js'
import { isSecretName, redactSecretOptions } from '../config/redact-secret.js'
import { ConfigInvalidError, type ConfigIssue, type ConfigOrigin } from '../config/config-invalid-error.js'
import type { DaemonConfig } from '../config/daemon-config.js'
import type { SchemaNode } from '../config/config-schema.js'
import { expectedFor, renderValue } from '../config/value-kinds.js'
import { didYouMean } from '../util/did-you-mean.js'
import { validateHostname } from '../protocol/endpoints.js'

/** Where an entry of the plugins to load was written, for the errors of its options (see {@link pluginSpecsOf}). */
export interface PluginSpecOrigin {
  /** Where its options were written: `plugins[0].options` in FILE. Default: `plugins[<its place in the list>].options`, no file. */
  options?: ConfigOrigin
  /** An option written under a key of its own: `listen` as `metrics.prometheus_listen`. */
  option?: Readonly<Record<string, ConfigOrigin>>
}

/** One entry of the `plugins:` config list: a name, or a name with options (and where they were written). */
export type PluginSpec = string | { name: string; options?: Record<string, unknown>; origin?: PluginSpecOrigin }

/**
 * The plugins a config runs: `plugins:`, with the prometheus plugin's `listen` from the older `metrics.prometheus_listen`
 * when it is set (the entry added when `plugins:` has none, its `listen` filled in when it gives none). Each entry
 * carries where it was written (config.origins): `plugins[0]` in FILE, or `metrics.prometheus_listen` for that `listen`.
 */
export function pluginSpecsOf(config: Pick<DaemonConfig, 'plugins' | 'metrics' | 'origins'>): PluginSpec[] {
  const list = config.origins?.plugins ?? { key: 'plugins' }
  const specs = config.plugins.map((s, i): Exclude<PluginSpec, string> => ({ ...(typeof s === 'string' ? { name: s } : s), origin: { options: { ...list, key: `${list.key}[${i}].options` } } }))
  const listen = config.metrics.prometheusListen
  if (!listen) return specs
  const written = config.origins?.['metrics.prometheus_listen'] ?? { key: 'metrics.prometheus_listen' }
  const prometheus = specs.findIndex((s) => s.name === 'prometheus')
  if (prometheus < 0) return [...specs, { name: 'prometheus', options: { listen }, origin: { options: written, option: { listen: written } } }]
  const entry = specs[prometheus]!
  if (entry.options?.listen === undefined) specs[prometheus] = { ...entry, options: { listen, ...entry.options }, origin: { ...entry.origin, option: { listen: written } } }
  return specs
}

/** What `ngrokd status` shows per plugin. */
export interface PluginStatus {
  name: string
  version: string
  /** `failed`: `register()` threw; nothing it added is used. `degraded`: a hook or its name resolver threw (it keeps running; the names go to the hosts file). */
  state: 'running' | 'failed' | 'degraded'
  error?: { code: string; message: string; at: string }
}

/** An entry of `plugins:` resolved and checked: its module and its options, validated with defaults filled in. */
export interface CheckedPlugin {
  plugin: PluginModule
  options: Record<string, unknown>
}

/** An entry of the list resolved to its module, with its options as written (not checked yet) and where they were written. */
export interface ResolvedPlugin {
  plugin: PluginModule
  options?: Record<string, unknown>
  origin?: PluginSpecOrigin
}

type Hook<A extends unknown[]> = (...args: A) => void | Promise<void>

interface Loaded {
  plugin: PluginModule
  status: PluginStatus
  nameResolvers: Map<string, () => NameResolver | Promise<NameResolver>>
  /** Every name it offered a resolver under, kept when a failed `register()` takes the resolvers back. */
  offered: Set<string>
  doctorChecks: Array<() => Promise<Check[]>>
  /** The name resolvers of its that the daemon opened and uses: their `diagnose()` is part of its doctor checks. */
  opened: NameResolver[]
  routes: Map<string, PluginRouteHandler>
  onStart: Array<Hook<[]>>
  afterReconcile: Array<Hook<[readonly ServingEntry[]]>>
  onStop: Array<Hook<[]>>
  /** Hooks that timed out and have not settled since: skipped until they do, so that calls do not pile up. */
  stuck: Set<unknown>
  /** The failure last logged at error, by hook (or by where it happened): the same one again is logged at debug until that call succeeds. */
  logged: Map<unknown, string>
  /** What its code runs as (plugin-context.ts): a callback of its own that throws and nothing catches degrades it. */
  running: RunningPlugin
}

export interface PluginHostOptions {
  configDir: string
  stateDir: string
  logger: Logger
  /** The daemon's DI scope: each plugin registers in a child of it. */
  scope: DependencyContainer
  metrics: Registry
  /** Resolves once the interface is open; the host then keeps its own address on it (see PluginContext.interface). */
  interfaceInfo: () => Promise<PluginInterfaceInfo>
  /** What `ctx.hostsFileResolver()` gives: the hosts file of `names.hosts_file`. */
  hostsFileResolver: () => NameResolver
  platform?: NodeJS.Platform
  /** How long `register()`, a hook, a name resolver's factory or one call of it may take before the plugin is failed or degraded. */
  hookTimeoutMs?: number
  /**
   * The daemon's stop: once it aborts, nothing of the start waits for a plugin any longer (a module still loading ends
   * the load with NGROKD_ERR_ABORTED; a pending `register()` ends it with the plugins registered before, that one
   * unused; `onStart`, `afterReconcile`, a resolver's factory and `open()` are left), so that a stop asked for during
   * the start keeps its own bound. `onStop` hooks still run.
   */
  signal?: AbortSignal
}

/**
 * Far above what declaring things or a hook's own work takes: a call still pending then is stuck (it awaits
 * something that never comes, such as `ctx.interface()` inside `register()`), and the daemon goes on without it.
 */
export const PLUGIN_HOOK_TIMEOUT_MS = 10_000
/**
 * All `onStop` hooks together: the daemon's stop is bounded by forwarder.drain_timeout plus 10 s (ngrokd run), and
 * the lock, the control socket and the scope's teardown come after the hooks.
 */
export const PLUGIN_STOP_BUDGET_MS = 5_000
/** How long one plugin's doctor checks may take: a stuck one fails its check instead of holding doctor. */
export const PLUGIN_DOCTOR_TIMEOUT_MS = 5_000

/**
 * The `format`s a plugin's option schema may use (Ajv knows none of its own without ajv-formats; an unknown one is
 * ignored), each with what it means and why a value fails it, for the option error.
 */
const OPTION_FORMATS: Record<string, { what: string; fix: string; reason: (value: string) => string | undefined }> = {
  // JSON Schema's `hostname`, by the rules ngrokd publishes names by (one label allowed, `prod`); DNS ignores case
  hostname: { what: 'a DNS name', fix: 'a DNS name is labels of a-z, 0-9 and "-" joined by single dots (corp.internal)', reason: (value) => validateHostname(value.toLowerCase(), { singleLabel: true }) },
}

/** Resolves once `work` settles (either way), or at `until` (a performance.now() time), whichever comes first. */
function untilSettledOr(work: Promise<unknown>, until: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, until - performance.now()))))
  return Promise.race([work.then(() => undefined, () => undefined), bound]).finally(() => clearTimeout(timer))
}

let optionsAjv: AjvClass | undefined
/** Compiles plugins' option schemas; loaded with the first plugin that has one (a daemon without plugins never loads Ajv). */
async function pluginOptionsAjv(): Promise<AjvClass> {
  if (!optionsAjv) {
    const { Ajv } = await import('ajv')
    // verbose: each error carries its value and the schema it broke, for what is expected
    optionsAjv = new Ajv({ allErrors: true, strict: false, useDefaults: true, verbose: true })
    for (const [name, format] of Object.entries(OPTION_FORMATS)) optionsAjv.addFormat(name, { type: 'string', validate: (value: string) => format.reason(value) === undefined })
  }
  return optionsAjv
}

/** The validator of a plugin's `optionsSchema`; a schema Ajv cannot compile is the plugin's bug, named as such. */
async function compileOptionsSchema(plugin: PluginModule): Promise<ValidateFunction> {
  const ajv = await pluginOptionsAjv()
  try {
    return ajv.compile(plugin.optionsSchema!)
  } catch (e) {
    throw new NgrokdError('NGROKD_ERR_PLUGIN_INVALID', `plugin "${plugin.name}" ${plugin.version} declares an optionsSchema that is not a valid JSON Schema (draft-07): ${(e as Error).message}`, {
      hint: `a bug in the plugin: upgrade ${plugin.name} or tell its author; until then remove it from plugins:`,
    })
  }
}

/** Where an entry's options were written, and any option written under a key of its own (PluginSpecOrigin). */
type OptionsOrigin = Required<Pick<PluginSpecOrigin, 'options'>> & Pick<PluginSpecOrigin, 'option'>

/** A value for an option error, as core's config errors show one; under a secret name, its own or one above it (isSecretName), as much as the API key shows. */
function optionValue(value: unknown, path: readonly string[]): string {
  return renderValue(redactSecretOptions(value, path.some(isSecretName)))
}

/**
 * What an option's schema accepts, in words, as core's config errors say it: the schema's own `x-ngrokd.expected`
 * (how a plugin describes a pattern: docs/writing-a-plugin.md), else what its type says; a pattern nobody described is
 * shown as it is. Undefined when the schema says nothing a sentence can.
 */
function expectedOf(schema: SchemaNode & { oneOf?: SchemaNode[] }): string | undefined {
  if (schema['x-ngrokd']?.expected) return schema['x-ngrokd'].expected
  const branches = schema.anyOf ?? schema.oneOf
  if (branches) {
    const each = branches.map(expectedOf)
    return each.every((e) => e !== undefined) ? each.join(', or ') : undefined
  }
  if (typeof schema.pattern === 'string') return `a string matching ${schema.pattern}`
  return schema.type !== undefined || schema.enum !== undefined ? expectedFor(schema) : undefined
}

/** Keywords whose rule {@link expectedOf} puts in words (core's expectedFor): another's is said in Ajv's words too. */
const SAID_BY_EXPECTED: ReadonlySet<string> = new Set(['type', 'pattern', 'minimum', 'maximum', 'exclusiveMinimum', 'anyOf', 'oneOf'])

/**
 * Ajv's errors as core's config issues (docs/errors.md): each names the key as the user wrote it (`plugins[0].options.listen`,
 * or `metrics.prometheus_listen`) in its file or variable, the value, and what is expected; an unknown option, the
 * options there are, and the one it is likely a typo of. The error keeps the plugin's code.
 */
function optionsError(name: string, errors: ErrorObject[], options: Record<string, unknown>, origin: OptionsOrigin): ConfigInvalidError<'NGROKD_ERR_PLUGIN_INVALID'> {
  /** The key of the option at `path` (keys of the options), as the user wrote it, where it was written. */
  const keyOf = (path: readonly string[]): ConfigOrigin => {
    const own = path.length > 0 ? origin.option?.[path[0]!] : undefined
    const [base, rest, from] = own ? [own, path.slice(1), path.slice(0, 1)] : [origin.options, path, []]
    let key = base.key
    let node: unknown = rawAt(options, from)
    for (const k of rest) {
      key += Array.isArray(node) ? `[${k}]` : `.${k}`
      node = (node as Record<string, unknown> | undefined)?.[k]
    }
    return { ...base, key }
  }
  /** ` as the prometheus plugin's listen`, for an option written under a key of its own. */
  const as = (path: readonly string[]) => (path.length > 0 && origin.option?.[path[0]!] ? ` as the ${name} plugin's ${path.join('.')}` : '')
  const issues: ConfigIssue[] = []
  const seen = new Set<string>()
  const add = (where: ConfigOrigin, message: string) => {
    if (seen.has(where.key)) return
    seen.add(where.key)
    issues.push({ ...where, message })
  }
  const fixes = new Set<string>()
  // an unknown option first: a required one it is likely a typo of is then said there (`lisen`: did you mean listen?)
  const meant = new Set<string>()
  for (const e of errors.filter((x) => x.keyword === 'additionalProperties')) {
    const path = keysOf(e.instancePath)
    const unknown = String(e.params.additionalProperty)
    const parent = keyOf(path)
    const known = Object.keys((e.parentSchema as SchemaNode | undefined)?.properties ?? {})
    const sibling = didYouMean(unknown, known)
    if (sibling) meant.add([...path, sibling].join('/'))
    const valid = known.length > 0 ? `valid keys in ${parent.key}: ${known.join(', ')}` : `${parent.key} takes none`
    add(keyOf([...path, unknown]), `unknown key; ${valid}${sibling ? ` (did you mean ${keyOf([...path, sibling]).key}?)` : ''}`)
  }
  for (const e of errors) {
    const path = keysOf(e.instancePath)
    const schema = (e.parentSchema ?? {}) as SchemaNode
    const value = optionValue(e.data, path)
    if (e.keyword === 'additionalProperties') continue
    // a branch of anyOf/oneOf: the anyOf's own error says what any branch takes
    if (errors.some((x) => (x.keyword === 'anyOf' || x.keyword === 'oneOf') && e.schemaPath.startsWith(`${x.schemaPath}/`))) continue
    if (e.keyword === 'required') {
      const missing = String(e.params.missingProperty)
      if (meant.has([...path, missing].join('/'))) continue
      const expected = expectedOf(schema.properties?.[missing] ?? {})
      add(keyOf([...path, missing]), `missing${as([...path, missing])}${expected ? `; expected ${expected}` : ''}`)
    } else if (e.keyword === 'enum') {
      add(keyOf(path), `${value} is not one of ${(e.params.allowedValues as unknown[]).join(', ')}${as(path)}`)
    } else if (e.keyword === 'format' && OPTION_FORMATS[String(e.params.format)]) {
      // a format of ours says why the value fails it, not only its name
      const format = OPTION_FORMATS[String(e.params.format)]!
      fixes.add(format.fix)
      add(keyOf(path), `${value} is not ${format.what}${as(path)}: ${format.reason(String(e.data))}`)
    } else {
      const expected = expectedOf(schema)
      // a rule the phrase does not put in words (maxLength, multipleOf, …) is said in Ajv's too
      const said = expected !== undefined && (schema['x-ngrokd']?.expected !== undefined || SAID_BY_EXPECTED.has(e.keyword) || ((e.keyword === 'minLength' || e.keyword === 'minItems') && e.params.limit === 1))
      add(keyOf(path), `${value} is not valid${as(path)}${said ? '' : `: it ${e.message}`}${expected ? `; expected ${expected}` : ''}`)
    }
  }
  return new ConfigInvalidError(issues, { code: 'NGROKD_ERR_PLUGIN_INVALID', hint: [`fix the keys listed; the ${name} plugin's documentation says what each of its options takes`, ...fixes].join('; ') })
}

/** The keys of a JSON pointer (Ajv's instancePath; RFC 6901: `~1` is `/`, `~0` is `~`). */
function keysOf(pointer: string): string[] {
  return pointer ? pointer.slice(1).split('/').map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~')) : []
}

/** The value at `path`, as it is. */
function rawAt(options: unknown, path: readonly string[]): unknown {
  let value = options
  for (const k of path) value = (value as Record<string, unknown> | undefined)?.[k]
  return value
}

/** A throw of a plugin's `checkOptions`: its options are invalid, said in the plugin's words where they were written, with its fix. */
function checkedOptionsError(name: string, e: unknown, origin: OptionsOrigin): ConfigInvalidError<'NGROKD_ERR_PLUGIN_INVALID'> {
  const hint = isNgrokdError(e) ? e.hint : undefined
  return new ConfigInvalidError([{ ...origin.options, message: e instanceof Error ? e.message : String(e) }], {
    code: 'NGROKD_ERR_PLUGIN_INVALID',
    hint: [`fix the keys listed; the ${name} plugin's documentation says what each of its options takes`, ...(hint ? [hint] : [])].join('; '),
  })
}

/**
 * Loads the plugins of the `plugins:` list and runs what they add (Fastify's encapsulation, over
 * tsyringe child scopes). A plugin that cannot be resolved, is incompatible, has invalid options or
 * a missing dependency stops the start with a coded error, as a bad driver does; one that throws
 * in `register()` or a hook is isolated and reported — it never takes the daemon down.
 *
 * ```ts
 * const plugins = await PluginHost.load(pluginSpecsOf(config), { configDir, stateDir, logger, scope, metrics, interfaceInfo, hostsFileResolver })
 * plugins.nameResolver('dns') // a factory, if a plugin offered one
 * await plugins.start(); await plugins.afterReconcile(serving); await plugins.stop()
 * ```
 */
export class PluginHost {
  private constructor(
    private readonly loaded: Loaded[],
    private readonly logger: Logger,
    private readonly hookTimeoutMs: number,
    /** PluginHostOptions.hostsFileResolver (none without plugins: no plugin resolver to fall back from). */
    private readonly hostsFileResolver?: () => NameResolver,
    private readonly signal?: AbortSignal,
  ) {}

  /** The host of a daemon without plugins. */
  static none(logger: Logger): PluginHost {
    return new PluginHost([], logger, PLUGIN_HOOK_TIMEOUT_MS)
  }

  /** Resolves every plugin of `specs` (see resolvePlugin), then {@link create}. */
  static async load(specs: readonly PluginSpec[], options: PluginHostOptions): Promise<PluginHost> {
    return PluginHost.create(await PluginHost.resolve(specs, options), options)
  }

  /**
   * Resolves and checks every entry of `specs` as a start does (module, platform, core range, dependencies, options),
   * registering nothing: what `ngrokd reload` asks of a new `plugins:` list. Throws the start's coded error.
   */
  static async check(specs: readonly PluginSpec[], options: Pick<PluginHostOptions, 'configDir' | 'platform' | 'hookTimeoutMs' | 'signal'>): Promise<CheckedPlugin[]> {
    // the files as they are now: a plugin fixed or upgraded since the start, or since a reload refused it
    return PluginHost.checkAll(await PluginHost.resolve(specs, { ...options, fresh: true }))
  }

  /** Each entry of `specs` resolved to its module, in list order. */
  private static async resolve(specs: readonly PluginSpec[], options: Pick<PluginHostOptions, 'configDir' | 'platform' | 'hookTimeoutMs' | 'signal'> & { fresh?: boolean }): Promise<ResolvedPlugin[]> {
    const modules: ResolvedPlugin[] = []
    for (const spec of specs) {
      const { name, options: pluginOptions = {}, origin } = typeof spec === 'string' ? { name: spec } : spec
      // a module whose top-level await never settles would leave nothing to wait on: the process would exit at once.
      // Loading is file work (the trust checks of its folder, the import), not a hook: bounded far above it, never by
      // hookTimeoutMs, which a test sets to 50 ms to see stuck hooks time out (a load under load took longer: 1 run in 25)
      const resolved = await within(() => resolvePlugin(name, { configDir: options.configDir, platform: options.platform, fresh: options.fresh ?? false }), PLUGIN_HOOK_TIMEOUT_MS, `loading plugin ${name}`, options.signal)
      modules.push({ plugin: resolved.plugin, options: pluginOptions, ...(origin ? { origin } : {}) })
    }
    return modules
  }

  /** Checks every entry (listed once, dependencies before it, options valid, defaults filled in), then registers each, in list order. */
  static async create(modules: readonly ResolvedPlugin[], options: PluginHostOptions): Promise<PluginHost> {
    const loaded: Loaded[] = []
    // the whole list is checked before any register() runs: a bad last entry stops the start before the first plugin does anything
    for (const { plugin, options: pluginOptions } of await PluginHost.checkAll(modules)) {
      // the daemon stops: the plugins registered so far are its (their onStop runs), the rest are not loaded
      if (options.signal?.aborted) break
      loaded.push(await PluginHost.register(plugin, pluginOptions, options))
    }
    return new PluginHost(loaded, options.logger, options.hookTimeoutMs ?? PLUGIN_HOOK_TIMEOUT_MS, options.hostsFileResolver, options.signal)
  }

  /** The checks of {@link create} over the whole list, before anything registers: each entry with its options validated. */
  private static async checkAll(modules: readonly ResolvedPlugin[]): Promise<CheckedPlugin[]> {
    const checked: CheckedPlugin[] = []
    const names = new Set<string>()
    for (const [i, { plugin, options: raw = {}, origin }] of modules.entries()) {
      if (names.has(plugin.name)) throw new NgrokdError('NGROKD_ERR_PLUGIN_INVALID', `plugin "${plugin.name}" is listed twice`, { hint: 'list each plugin once in plugins:' })
      for (const dep of plugin.dependencies ?? []) {
        if (!names.has(dep)) {
          throw new NgrokdError('NGROKD_ERR_PLUGIN_DEPENDENCY', `plugin "${plugin.name}" needs plugin "${dep}" registered before it`, { hint: `add ${dep} to plugins:, ahead of ${plugin.name}` })
        }
      }
      const written: OptionsOrigin = { options: origin?.options ?? { key: `plugins[${i}].options` }, ...(origin?.option ? { option: origin.option } : {}) }
      const pluginOptions = structuredClone(raw)
      if (plugin.optionsSchema) {
        const validate = await compileOptionsSchema(plugin)
        if (!validate(pluginOptions)) throw optionsError(plugin.name, validate.errors ?? [], pluginOptions, written)
      }
      if (plugin.checkOptions) {
        try {
          plugin.checkOptions(pluginOptions)
        } catch (e) {
          throw checkedOptionsError(plugin.name, e, written)
        }
      }
      names.add(plugin.name)
      checked.push({ plugin, options: pluginOptions })
    }
    return checked
  }

  /** Runs `register()` in the plugin's own scope; a throw leaves it `failed`, with nothing it added. */
  private static async register(plugin: PluginModule, pluginOptions: Record<string, unknown>, options: PluginHostOptions): Promise<Loaded> {
    const logger = options.logger.child({ plugin: plugin.name })
    const entry: Loaded = {
      plugin,
      status: { name: plugin.name, version: plugin.version, state: 'running' },
      nameResolvers: new Map(),
      offered: new Set(),
      doctorChecks: [],
      opened: [],
      routes: new Map(),
      onStart: [],
      afterReconcile: [],
      onStop: [],
      stuck: new Set(),
      logged: new Map(),
      running: {
        name: plugin.name,
        // known from before its register() runs; a plugin that failed stays failed
        uncaught: (e) => PluginHost.failed(entry, e, 'a callback of its own threw and nothing caught it', logger, 'uncaught'),
      },
    }
    const scope = options.scope.createChildContainer()
    const ctx: PluginContext = {
      name: plugin.name,
      options: pluginOptions,
      logger,
      platform: options.platform ?? process.platform,
      stateDir: options.stateDir,
      scope: {
        register: (token, provider) => void scope.register(token, provider),
        resolve: (token) => scope.resolve(token),
        isRegistered: (token) => scope.isRegistered(token, true),
      },
      interface: options.interfaceInfo,
      hostsFileResolver: options.hostsFileResolver,
      provideNameResolver: (name, factory) => {
        entry.nameResolvers.set(name, factory)
        entry.offered.add(name)
      },
      addDoctorChecks: (checks) => void entry.doctorChecks.push(checks),
      // a method or path outside the rule throws here: in register(), the plugin fails
      addRoute: (method, path, handler) => void entry.routes.set(pluginRouteKey(plugin.name, method, path), (...args) => asPlugin(entry.running, () => handler(...args))),
      metrics: options.metrics,
      hooks: {
        onStart: (fn) => void entry.onStart.push(fn),
        afterReconcile: (fn) => void entry.afterReconcile.push(fn),
        onStop: (fn) => void entry.onStop.push(fn),
      },
    }
    const metricsBefore = new Set(options.metrics.getMetricsAsArray().map((m) => m.name))
    try {
      await within(() => asPlugin(entry.running, () => plugin.register(ctx)), options.hookTimeoutMs ?? PLUGIN_HOOK_TIMEOUT_MS, `register() of plugin ${plugin.name}`, options.signal)
      logger.info(`plugin ${plugin.name} ${plugin.version} registered`)
    } catch (e) {
      if (options.signal?.aborted && isNgrokdError(e, 'NGROKD_ERR_ABORTED')) {
        // the daemon stops: this register() is left running, and the plugin is not used (nothing to report: no failure)
        entry.status.state = 'failed'
        entry.status.error = { code: e.code, message: `register: ${e.message}`, at: new Date().toISOString() }
      } else PluginHost.failed(entry, e, 'register', logger)
      // nothing a failed plugin added is used: the metrics it registered are not exported either
      for (const m of options.metrics.getMetricsAsArray()) if (!metricsBefore.has(m.name)) options.metrics.removeSingleMetric(m.name)
      entry.nameResolvers.clear()
      entry.doctorChecks.length = 0
      entry.routes.clear()
      entry.onStart.length = entry.afterReconcile.length = entry.onStop.length = 0
    }
    return entry
  }

  private static failed(entry: Loaded, e: unknown, where: string, logger: Logger, key: unknown = where): void {
    const message = `${where}: ${e instanceof Error ? e.message : String(e)}`
    // the same failure again (a hook that throws at every poll): said once, then at debug until it changes or that call succeeds
    const again = entry.logged.get(key) === message
    entry.logged.set(key, message)
    entry.status.state = where === 'register' || entry.status.state === 'failed' ? 'failed' : 'degraded'
    entry.status.error = { code: isNgrokdError(e) ? e.code : 'NGROKD_ERR_PLUGIN_FAILED', message, at: new Date().toISOString() }
    if (again) logger.debug({ err: e }, `plugin ${entry.plugin.name}: ${where} failed again: ${formatError(e)}`)
    else logger.error({ err: e }, `plugin ${entry.plugin.name}: ${where} failed: ${formatError(e)}`)
  }

  /**
   * True when a plugin offers a name resolver under `name`, or failed before it could: one that failed in
   * `register()` after offering it, or a failed plugin of that name (`dns`). Its resolver is then the
   * plugin's business, and {@link openNameResolver} answers undefined for a failed one: the caller falls
   * back to the hosts file instead of looking for a driver of that name.
   */
  offersNameResolver(name: string): boolean {
    return this.loaded.some((p) => p.offered.has(name) || (p.status.state === 'failed' && p.plugin.name === name))
  }

  /**
   * The name resolver a running plugin offers under `name`; undefined when none does or its factory
   * threw or did not finish within the hook timeout (the plugin is then reported as degraded, and the caller falls back).
   */
  async createNameResolver(name: string): Promise<NameResolver | undefined> {
    const p = this.loaded.find((x) => x.status.state !== 'failed' && x.nameResolvers.has(name))
    if (!p) return undefined
    try {
      const made = await within(() => asPlugin(p.running, p.nameResolvers.get(name)!), this.hookTimeoutMs, `name resolver ${name} of plugin ${p.plugin.name}`, this.signal)
      return boundToPlugin(p.running, made)
    } catch (e) {
      if (!this.signal?.aborted) PluginHost.failed(p, e, `name resolver ${name}`, this.logger.child({ plugin: p.plugin.name })) // a stop is no failure of the plugin
      return undefined
    }
  }

  /**
   * {@link createNameResolver}, then its `open()` under the same timeout: undefined when either threw or hung (the
   * plugin is then reported as degraded, what it opened is closed, and the caller falls back). What it answers is the
   * plugin's resolver bounded the same way ({@link PluginNameResolver}): one that later throws or hangs degrades the
   * plugin, and the names go to `fallback` from then on (default: the hosts file of `hostsFileResolver`, opened).
   */
  async openNameResolver(name: string, { fallback }: { fallback?: () => Promise<NameResolver> } = {}): Promise<NameResolver | undefined> {
    const resolver = await this.createNameResolver(name)
    if (!resolver) return undefined
    const p = this.loaded.find((x) => x.nameResolvers.has(name))!
    const logger = this.logger.child({ plugin: p.plugin.name })
    const abort = new AbortController()
    const opening = Promise.resolve().then(() => resolver.open({ signal: abort.signal }))
    try {
      await within(() => opening, this.hookTimeoutMs, `open() of name resolver ${name} of plugin ${p.plugin.name}`, this.signal)
    } catch (e) {
      abort.abort(e)
      if (!this.signal?.aborted) PluginHost.failed(p, e, `name resolver ${name}`, logger) // a stop is no failure of the plugin
      // closed once its open() has settled, late or not: what it opened is not left behind
      const closeIt = () => Promise.resolve().then(() => resolver.close()).catch((err: unknown) => logger.debug({ err }, `name resolver ${name}: close() after a failed open() failed`))
      void opening.then(closeIt, closeIt)
      return undefined
    }
    p.opened.push(resolver)
    return new PluginNameResolver({
      own: resolver,
      what: `${name} of plugin ${p.plugin.name}`,
      timeoutMs: this.hookTimeoutMs,
      ...(this.signal ? { signal: this.signal } : {}),
      logger,
      failed: (e) => {
        // no longer in use: its diagnose() is not part of the plugin's checks
        p.opened = p.opened.filter((r) => r !== resolver)
        PluginHost.failed(p, e, `name resolver ${name}`, logger)
      },
      fallback:
        fallback ??
        (async () => {
          const hostsFile = this.hostsFileResolver!()
          await hostsFile.open()
          return hostsFile
        }),
    })
  }

  /** The name resolvers the plugins that registered offer, each with its plugin. */
  nameResolversOffered(): Array<{ plugin: string; name: string }> {
    return this.loaded.filter((p) => p.status.state !== 'failed').flatMap((p) => [...p.nameResolvers.keys()].map((name) => ({ plugin: p.plugin.name, name })))
  }

  /** Control routes the plugins added, keyed `METHOD /v1/plugins/<name>/…`; a handler that throws answers an error. */
  routes(): Record<string, PluginRouteHandler> {
    return Object.fromEntries(this.loaded.filter((p) => p.status.state !== 'failed').flatMap((p) => [...p.routes]))
  }

  status(): PluginStatus[] {
    return this.loaded.map((p) => ({ ...p.status }))
  }

  /** Each plugin's doctor checks, plus a failing check for a plugin that failed. */
  async doctorChecks(): Promise<Check[]> {
    const checks: Check[] = []
    for (const p of this.loaded) {
      const id = `plugin.${p.plugin.name}`
      const { error } = p.status
      checks.push(
        error
          ? { id, status: p.status.state === 'failed' ? 'fail' : 'warn', summary: `plugin ${p.plugin.name} ${p.plugin.version}: ${error.message}`, code: error.code, hint: 'see the plugin\'s documentation; ngrokd runs on without it' }
          : { id, status: 'ok', summary: `plugin ${p.plugin.name} ${p.plugin.version} running` },
      )
      // a register() that timed out may still add checks when it ends: a failed plugin's are never run
      if (p.status.state === 'failed') continue
      for (const fn of p.doctorChecks) {
        try {
          checks.push(...wellFormed(await within(() => asPlugin(p.running, fn), Math.min(this.hookTimeoutMs, PLUGIN_DOCTOR_TIMEOUT_MS), `the doctor checks of plugin ${p.plugin.name}`), id, `plugin ${p.plugin.name}: its doctor checks`))
        } catch (e) {
          checks.push({ id, status: 'fail', summary: `plugin ${p.plugin.name}: its doctor checks failed: ${(e as Error).message}`, code: 'NGROKD_ERR_PLUGIN_FAILED' })
        }
      }
      // the name resolver in use says how names are published; a check the plugin already gave is not repeated
      for (const resolver of p.opened) {
        const seen = new Set(checks.map((c) => c.id))
        try {
          const own = await within(() => resolver.diagnose(), Math.min(this.hookTimeoutMs, PLUGIN_DOCTOR_TIMEOUT_MS), `diagnose() of name resolver ${resolver.resolver} of plugin ${p.plugin.name}`)
          checks.push(...wellFormed(own, `${id}.resolver`, `plugin ${p.plugin.name}: diagnose() of its name resolver ${resolver.resolver}`).filter((c) => !seen.has(c.id)))
        } catch (e) {
          checks.push({ id: `${id}.resolver`, status: 'fail', summary: `plugin ${p.plugin.name}: diagnose() of its name resolver ${resolver.resolver} failed: ${(e as Error).message}`, code: 'NGROKD_ERR_PLUGIN_FAILED' })
        }
      }
    }
    return checks
  }

  start(): Promise<void> {
    return this.run('onStart', (p) => p.onStart, [])
  }

  afterReconcile(serving: readonly ServingEntry[]): Promise<void> {
    return this.run('afterReconcile', (p) => p.afterReconcile, [serving])
  }

  /**
   * The `onStop` hooks, all within {@link PLUGIN_STOP_BUDGET_MS} together (the daemon's stop has a bound of its own),
   * the plugins' side by side: one stuck plugin does not keep the others from stopping. A plugin's own hooks run in
   * order, and a plugin's start once the plugins that list it in `dependencies` have stopped, or once its turn in the
   * budget comes: the budget is cut in equal turns, one per level of dependencies, and a plugin that others depend on
   * through n levels waits for them n turns at most, so its own hooks always have a turn (with one plugin listing
   * `dns`, dns waits at most half the budget). A stuck dependent cannot use up its dependency's time to stop.
   */
  async stop(): Promise<void> {
    const start = performance.now()
    const budget = Math.min(this.hookTimeoutMs, PLUGIN_STOP_BUDGET_MS)
    const deadline = start + budget
    const levels = this.dependentLevels()
    const turn = budget / (Math.max(0, ...levels.values()) + 1)
    const stopped = new Map<string, Promise<unknown>>()
    // in reverse order, so that every plugin depending on this one (listed after it) is already under way
    for (const p of [...this.loaded].reverse()) {
      const dependents = this.loaded.filter((q) => q.plugin.dependencies?.includes(p.plugin.name)).map((q) => stopped.get(q.plugin.name))
      const waited = dependents.length === 0 ? Promise.resolve() : untilSettledOr(Promise.all(dependents), start + levels.get(p)! * turn)
      stopped.set(p.plugin.name, waited.then(() => this.runHooks(p, 'onStop', (x) => x.onStop, [], deadline, undefined)))
    }
    await Promise.all(stopped.values())
  }

  /** For each plugin, the longest chain of plugins above it that list the one below in `dependencies` (0: none does). */
  private dependentLevels(): Map<Loaded, number> {
    const levels = new Map<Loaded, number>()
    // dependents are listed after what they depend on: from the end, each one's level is known when it is needed
    for (const p of [...this.loaded].reverse()) {
      const dependents = this.loaded.filter((q) => q.plugin.dependencies?.includes(p.plugin.name))
      levels.set(p, Math.max(0, ...dependents.map((q) => levels.get(q)! + 1)))
    }
    return levels
  }

  /**
   * Runs one hook of every running plugin, in plugin order; a throw, or a call still pending after the hook
   * timeout, degrades that plugin only. A hook still pending from an earlier call is skipped.
   */
  private async run<A extends unknown[]>(name: string, hooks: (p: Loaded) => Array<Hook<A>>, args: A): Promise<void> {
    for (const p of this.loaded) {
      if (this.signal?.aborted) return
      if ((await this.runHooks(p, name, hooks, args, Infinity, this.signal)) === 'aborted') return
    }
  }

  /** One plugin's hooks of `name`, one after the other; 'aborted' when the daemon's stop ended the wait (not for onStop). */
  private async runHooks<A extends unknown[]>(p: Loaded, name: string, hooks: (p: Loaded) => Array<Hook<A>>, args: A, deadline: number, signal: AbortSignal | undefined): Promise<'aborted' | undefined> {
    if (p.status.state === 'failed') return undefined
    for (const fn of hooks(p)) {
      if (p.stuck.has(fn)) {
        this.logger.debug({ plugin: p.plugin.name }, `plugin ${p.plugin.name}: ${name} skipped: its last call has not finished`)
        continue
      }
      const left = Math.min(this.hookTimeoutMs, deadline - performance.now())
      if (left < 1) {
        // (under a millisecond: timers count whole ones, and one may fire that much before its deadline)
        const budget = new NgrokdError('NGROKD_ERR_PLUGIN_FAILED', `${name} of plugin ${p.plugin.name} not run: the plugins' ${PLUGIN_STOP_BUDGET_MS / 1000} s to stop were used up`)
        PluginHost.failed(p, budget, name, this.logger.child({ plugin: p.plugin.name }))
        continue
      }
      const call = Promise.resolve().then(() => asPlugin(p.running, () => fn(...args)))
      try {
        await within(() => call, left, `${name} of plugin ${p.plugin.name}`, signal)
        // a degraded plugin whose every failing call has since succeeded (a listen retried) runs again, and says so
        if (p.logged.delete(fn) && p.logged.size === 0 && p.status.state === 'degraded') {
          p.status.state = 'running'
          delete p.status.error
          this.logger.info({ plugin: p.plugin.name }, `plugin ${p.plugin.name}: running again (${name} succeeded)`)
        }
      } catch (e) {
        if (signal?.aborted && isNgrokdError(e, 'NGROKD_ERR_ABORTED')) {
          // left running, not counted against the plugin: the daemon stops; the call is not made again meanwhile
          p.stuck.add(fn)
          void call.then(() => p.stuck.delete(fn), () => p.stuck.delete(fn))
          return 'aborted'
        }
        if (isNgrokdError(e) && e.code === 'NGROKD_ERR_PLUGIN_FAILED') {
          p.stuck.add(fn)
          void call.then(() => p.stuck.delete(fn), () => p.stuck.delete(fn))
        }
        PluginHost.failed(p, e, name, this.logger.child({ plugin: p.plugin.name }), fn)
      }
    }
    return undefined
  }
}

