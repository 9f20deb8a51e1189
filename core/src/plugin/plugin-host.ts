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
import { within } from './within.js'
import { isSecretName, redactSecretOptions } from '../config/redact-secret.js'
import { validateHostname } from '../protocol/endpoints.js'

/** One entry of the `plugins:` config list: a name, or a name with options. */
export type PluginSpec = string | { name: string; options?: Record<string, unknown> }

/**
 * The plugins a config runs: `plugins:`, with the prometheus plugin's `listen` from the older `metrics.prometheus_listen`
 * when it is set (the entry added when `plugins:` has none, its `listen` filled in when it gives none).
 */
export function pluginSpecsOf(config: { plugins: readonly PluginSpec[]; metrics: { prometheusListen?: string | undefined } }): PluginSpec[] {
  const listen = config.metrics.prometheusListen
  if (!listen) return [...config.plugins]
  const named = (s: PluginSpec) => (typeof s === 'string' ? s : s.name)
  if (!config.plugins.some((s) => named(s) === 'prometheus')) return [...config.plugins, { name: 'prometheus', options: { listen } }]
  return config.plugins.map((s) => (named(s) !== 'prometheus' ? s : typeof s === 'string' ? { name: s, options: { listen } } : { ...s, options: { listen, ...s.options } }))
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
    optionsAjv = new Ajv({ allErrors: true, strict: false, useDefaults: true })
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

/** Longest value an option error quotes (as JSON); a longer one is cut, with `…`. */
const OPTION_VALUE_MAX = 60

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

/** The value at `keys` (then `key`), as short JSON; undefined when absent. */
function valueAt(options: unknown, keys: readonly string[], key?: string): string | undefined {
  const path = key === undefined ? keys : [...keys, key]
  // an option whose name (or one above it) says secret shows as much as the config's API key does
  const value = redactSecretOptions(rawAt(options, path), path.some(isSecretName))
  const text = value === undefined ? undefined : (JSON.stringify(value) ?? String(value))
  return text !== undefined && text.length > OPTION_VALUE_MAX ? `${text.slice(0, OPTION_VALUE_MAX - 1)}…` : text
}

/** Each problem names the key, the value it has (absent for a missing key) and what is expected (docs/errors.md). */
function optionsError(name: string, errors: ErrorObject[], options: unknown): NgrokdError {
  const fixes = new Set<string>()
  const what = errors.map((e) => {
    const extra = e.params && 'additionalProperty' in e.params ? String(e.params.additionalProperty) : undefined
    const keys = keysOf(e.instancePath)
    const value = e.keyword === 'required' ? undefined : valueAt(options, keys, extra)
    // a format of ours says why the value fails it, not only its name
    const format = e.keyword === 'format' ? OPTION_FORMATS[String(e.params.format)] : undefined
    if (format) fixes.add(format.fix)
    const message = format ? `is not ${format.what}: ${format.reason(String(rawAt(options, keys)))}` : e.message
    return `${['options', ...keys].join('.')} ${message}${e.params && 'allowedValues' in e.params ? ` (${(e.params.allowedValues as unknown[]).join(', ')})` : ''}${extra !== undefined ? `: ${extra}` : ''}${value !== undefined ? ` (got ${value})` : ''}`
  })
  return new NgrokdError('NGROKD_ERR_PLUGIN_INVALID', `plugin "${name}": ${what.join('; ')}`, { hint: [`fix the plugin's options in plugins: (see the ${name} plugin's documentation)`, ...fixes].join('; ') })
}

/** A throw of a plugin's `checkOptions`: its options are invalid, said in the plugin's words, with its fix. */
function checkedOptionsError(name: string, e: unknown): NgrokdError {
  const hint = isNgrokdError(e) ? e.hint : undefined
  return new NgrokdError('NGROKD_ERR_PLUGIN_INVALID', `plugin "${name}": ${e instanceof Error ? e.message : String(e)}`, {
    hint: [`fix the plugin's options in plugins: (see the ${name} plugin's documentation)`, ...(hint ? [hint] : [])].join('; '),
  })
}

/**
 * Loads the plugins of the `plugins:` list and runs what they add (Fastify's encapsulation, over
 * tsyringe child scopes). A plugin that cannot be resolved, is incompatible, has invalid options or
 * a missing dependency stops the start with a coded error, as a bad driver does; one that throws
 * in `register()` or a hook is isolated and reported — it never takes the daemon down.
 *
 * ```ts
 * const plugins = await PluginHost.load(config.plugins, { configDir, stateDir, logger, scope, metrics, interfaceInfo, hostsFileResolver })
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
  private static async resolve(specs: readonly PluginSpec[], options: Pick<PluginHostOptions, 'configDir' | 'platform' | 'hookTimeoutMs' | 'signal'> & { fresh?: boolean }): Promise<Array<{ plugin: PluginModule; options: Record<string, unknown> }>> {
    const modules: Array<{ plugin: PluginModule; options: Record<string, unknown> }> = []
    for (const spec of specs) {
      const { name, options: pluginOptions = {} } = typeof spec === 'string' ? { name: spec } : spec
      // a module whose top-level await never settles would leave nothing to wait on: the process would exit at once
      const resolved = await within(() => resolvePlugin(name, { configDir: options.configDir, platform: options.platform, fresh: options.fresh ?? false }), options.hookTimeoutMs ?? PLUGIN_HOOK_TIMEOUT_MS, `loading plugin ${name}`, options.signal)
      modules.push({ plugin: resolved.plugin, options: pluginOptions })
    }
    return modules
  }

  /** Checks every entry (listed once, dependencies before it, options valid, defaults filled in), then registers each, in list order. */
  static async create(modules: ReadonlyArray<{ plugin: PluginModule; options?: Record<string, unknown> }>, options: PluginHostOptions): Promise<PluginHost> {
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
  private static async checkAll(modules: ReadonlyArray<{ plugin: PluginModule; options?: Record<string, unknown> }>): Promise<CheckedPlugin[]> {
    const checked: CheckedPlugin[] = []
    const names = new Set<string>()
    for (const { plugin, options: raw = {} } of modules) {
      if (names.has(plugin.name)) throw new NgrokdError('NGROKD_ERR_PLUGIN_INVALID', `plugin "${plugin.name}" is listed twice`, { hint: 'list each plugin once in plugins:' })
      for (const dep of plugin.dependencies ?? []) {
        if (!names.has(dep)) {
          throw new NgrokdError('NGROKD_ERR_PLUGIN_DEPENDENCY', `plugin "${plugin.name}" needs plugin "${dep}" registered before it`, { hint: `add ${dep} to plugins:, ahead of ${plugin.name}` })
        }
      }
      const pluginOptions = structuredClone(raw)
      if (plugin.optionsSchema) {
        const validate = await compileOptionsSchema(plugin)
        if (!validate(pluginOptions)) throw optionsError(plugin.name, validate.errors ?? [], pluginOptions)
      }
      if (plugin.checkOptions) {
        try {
          plugin.checkOptions(pluginOptions)
        } catch (e) {
          throw checkedOptionsError(plugin.name, e)
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
      addRoute: (method, path, handler) => void entry.routes.set(pluginRouteKey(plugin.name, method, path), handler),
      metrics: options.metrics,
      hooks: {
        onStart: (fn) => void entry.onStart.push(fn),
        afterReconcile: (fn) => void entry.afterReconcile.push(fn),
        onStop: (fn) => void entry.onStop.push(fn),
      },
    }
    const metricsBefore = new Set(options.metrics.getMetricsAsArray().map((m) => m.name))
    try {
      await within(() => plugin.register(ctx), options.hookTimeoutMs ?? PLUGIN_HOOK_TIMEOUT_MS, `register() of plugin ${plugin.name}`, options.signal)
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
    entry.status.state = where === 'register' ? 'failed' : 'degraded'
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
      return await within(p.nameResolvers.get(name)!, this.hookTimeoutMs, `name resolver ${name} of plugin ${p.plugin.name}`, this.signal)
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
          checks.push(...(await within(fn, Math.min(this.hookTimeoutMs, PLUGIN_DOCTOR_TIMEOUT_MS), `the doctor checks of plugin ${p.plugin.name}`)))
        } catch (e) {
          checks.push({ id, status: 'fail', summary: `plugin ${p.plugin.name}: its doctor checks failed: ${(e as Error).message}`, code: 'NGROKD_ERR_PLUGIN_FAILED' })
        }
      }
      // the name resolver in use says how names are published; a check the plugin already gave is not repeated
      for (const resolver of p.opened) {
        const seen = new Set(checks.map((c) => c.id))
        try {
          const own = await within(() => resolver.diagnose(), Math.min(this.hookTimeoutMs, PLUGIN_DOCTOR_TIMEOUT_MS), `diagnose() of name resolver ${resolver.resolver} of plugin ${p.plugin.name}`)
          checks.push(...own.filter((c) => !seen.has(c.id)))
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
      const call = Promise.resolve().then(() => fn(...args))
      try {
        await within(() => call, left, `${name} of plugin ${p.plugin.name}`, signal)
        p.logged.delete(fn)
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
