import type { Registry } from 'prom-client'
import type { Check } from '../contracts/check.js'
import type { Logger } from '../contracts/logger.js'
import type { NameResolver } from '../contracts/name-resolver.js'
import type { EndpointProto } from '../contracts/forwarder.js'
import { NgrokdError } from '../errors/ngrokd-error.js'
import { hasBrand, PLUGIN_BRAND } from '../util/module-brands.js'

const ID_PATTERN = /^[a-z][a-z0-9-]*$/

/** A JSON Schema (draft-07) for a plugin's options; defaults in it are filled in before `register()`. */
export type PluginOptionsSchema = Record<string, unknown> & { type: 'object' }

/** One hostname the daemon serves after a reconcile: what a plugin sees in `afterReconcile`. */
export interface ServingEntry {
  hostname: string
  address: string
  ports: Array<{ port: number; proto: EndpointProto }>
}

/** The interface the daemon runs, as a plugin may use it (e.g. to answer DNS on its own address). */
export interface PluginInterfaceInfo {
  /** The OS's name for it (`ngrokd0`, `utun4`). */
  name: string
  /** The interface index, when the OS has one. */
  index?: number
  /**
   * The interface's own address (the subnet's first host, never given to an endpoint). Asking for
   * it puts it on the interface and keeps it there while the daemon runs.
   */
  address: string
}

/** A control API route a plugin adds; served at `/v1/plugins/<plugin name><path>`. */
export type PluginRouteHandler = (body: unknown) => unknown | Promise<unknown>

/** What a plugin's own DI scope offers (a child of the daemon's: registrations never leak upward). */
export interface PluginScope {
  register<T>(token: symbol, provider: { useValue: T }): void
  resolve<T>(token: symbol): T
  isRegistered(token: symbol): boolean
}

/** Everything `register()` gets: its options, a logger, and what a plugin may add. */
export interface PluginContext<Options = Record<string, unknown>> {
  readonly name: string
  /** Validated against the plugin's `optionsSchema`, defaults filled in. */
  readonly options: Options
  /** A child logger naming the plugin. */
  readonly logger: Logger
  readonly platform: NodeJS.Platform
  /** `state_dir`: a plugin keeps its files under `<state_dir>/plugins/<name>/`. */
  readonly stateDir: string
  readonly scope: PluginScope
  /**
   * Resolves once the daemon's interface is open. Call it from a hook (`onStart`), not in
   * `register()`: the interface opens after every plugin registered. It gives the interface as it is
   * now: one deleted under the daemon is made again at the next reconcile, with a new `index`, so a
   * plugin that keys something by the index asks again in `afterReconcile`.
   */
  interface(): Promise<PluginInterfaceInfo>
  /**
   * A new hosts-file name resolver on `names.hosts_file` (the default resolver), for a plugin's own
   * resolver to fall back to; the caller opens and closes it.
   */
  hostsFileResolver(): NameResolver
  /** Offers a name resolver under `name`; the daemon uses it when `names.resolver` is that name. */
  provideNameResolver(name: string, factory: () => NameResolver | Promise<NameResolver>): void
  /** Adds checks to `ngrokd doctor` (they must not change the machine). */
  addDoctorChecks(checks: () => Promise<Check[]>): void
  /** Adds a control API route under `/v1/plugins/<name>`. */
  addRoute(method: 'GET' | 'POST', path: `/${string}`, handler: PluginRouteHandler): void
  /** The daemon's Prometheus registry (prom-client): register counters, gauges and histograms here. */
  readonly metrics: Registry
  readonly hooks: {
    /** After the daemon started (interface open, last known endpoints served). In plugin order. */
    onStart(fn: () => void | Promise<void>): void
    /** After every reconcile, with what is served now. */
    afterReconcile(fn: (serving: readonly ServingEntry[]) => void | Promise<void>): void
    /**
     * When the daemon stops, after its teardown. The plugins' hooks run side by side (started in reverse plugin
     * order), all within 5 s together; a plugin's own in order, once the plugins that list it in `dependencies` have
     * stopped or its turn of the 5 s came (one turn per level of dependencies: a stuck dependent never leaves it no time).
     */
    onStop(fn: () => void | Promise<void>): void
  }
}

export interface PluginDefinition<Options = Record<string, unknown>> {
  /** kebab-case id, the same as users write in config (`plugins: [dns]`). */
  name: string
  /** The plugin's own version (its package's), shown in status and doctor. */
  version: string
  /** semver range of @ngrokd/core this plugin works with, e.g. `^1.0.0`. */
  ngrokd: string
  /** `process.platform` values it runs on; default all. */
  platforms?: readonly NodeJS.Platform[]
  /** Plugins that must be listed (and so registered) before this one. */
  dependencies?: readonly string[]
  optionsSchema?: PluginOptionsSchema
  /**
   * What the schema cannot say about the options (an address that must parse, a pair that must agree): throws, naming
   * the option, the value and the fix (`options.listen.0 is not …`), for options that are invalid. Runs where the
   * schema is checked (the start, before any plugin registers, and `ngrokd reload`), on the options with defaults
   * filled in, so a bad value stops the start with NGROKD_ERR_PLUGIN_INVALID instead of failing `register()`. It
   * decides from the options alone: no I/O.
   */
  checkOptions?(options: Options): void
  register(ctx: PluginContext<Options>): void | Promise<void>
  /**
   * `ngrokd cleanup` (and a systemd unit's `ExecStopPost`): removes what this plugin's part of a daemon that did not stop
   * cleanly left outside ngrokd's own files — a registration with the OS resolver, files, registry keys. Runs with no
   * daemon and nothing registered, after the interface was dealt with; resolves what it removed, one phrase each
   * (`systemd-resolved's DNS settings of ngrokd0`), printed in cleanup's list. A throw, or no answer within
   * {@link PLUGIN_CLEANUP_TIMEOUT_MS}, is listed as not removed and cleanup exits 1.
   */
  cleanup?(ctx: PluginCleanupContext<Options>): Promise<readonly string[] | void>
}

/** How long one plugin's `cleanup()` may take before `ngrokd cleanup` reports it as not done. */
export const PLUGIN_CLEANUP_TIMEOUT_MS = 15_000

/** What a plugin's `cleanup()` gets. */
export interface PluginCleanupContext<Options = Record<string, unknown>> {
  readonly name: string
  /** Validated against the plugin's `optionsSchema`, defaults filled in, as `register()` gets them. */
  readonly options: Options
  readonly logger: Logger
  readonly platform: NodeJS.Platform
  /** The instance's `state_dir` (it may not exist). */
  readonly stateDir: string
  /**
   * The interface when it is still there after cleanup (`cleanup.remove_interface_on_stop: false` keeps it): what the
   * OS still has registered for it may need undoing. Undefined when it was removed, or never there.
   */
  readonly interface?: { readonly name: string; readonly index?: number }
}

export type PluginModule<Options = Record<string, unknown>> = Readonly<PluginDefinition<Options>> & { readonly [PLUGIN_BRAND]: 1 }

/**
 * Declares a plugin: validates the metadata, brands the object so the core recognises it across
 * duplicate copies of core, and freezes it. A plugin needs no DI or decorators of its own.
 *
 * ```ts
 * export default definePlugin({
 *   name: 'hello', version: '1.0.0', ngrokd: '^1.0.0',
 *   register(ctx) { ctx.hooks.afterReconcile((serving) => ctx.logger.info(`${serving.length} hostnames`)) },
 * })
 * ```
 */
export function definePlugin<Options = Record<string, unknown>>(definition: PluginDefinition<Options>): PluginModule<Options> {
  const problems: string[] = []
  if (typeof definition.name !== 'string' || !ID_PATTERN.test(definition.name)) problems.push(`name ${JSON.stringify(definition.name)} must match ${ID_PATTERN}`)
  if (typeof definition.version !== 'string' || definition.version === '') problems.push('version must be the plugin\'s version, e.g. "1.0.0"')
  if (typeof definition.ngrokd !== 'string' || definition.ngrokd === '') problems.push('ngrokd must be a semver range of @ngrokd/core, e.g. "^1.0.0"')
  if (definition.platforms !== undefined && (!Array.isArray(definition.platforms) || definition.platforms.length === 0)) problems.push('platforms, when given, must list process.platform values')
  if (definition.dependencies !== undefined && !Array.isArray(definition.dependencies)) problems.push('dependencies must be a list of plugin names')
  if (definition.optionsSchema !== undefined && (typeof definition.optionsSchema !== 'object' || definition.optionsSchema.type !== 'object')) problems.push('optionsSchema must be a JSON Schema of type object')
  if (definition.checkOptions !== undefined && typeof definition.checkOptions !== 'function') problems.push('checkOptions, when given, must be a function')
  if (typeof definition.register !== 'function') problems.push('register must be a function')
  if (definition.cleanup !== undefined && typeof definition.cleanup !== 'function') problems.push('cleanup, when given, must be a function')
  if (problems.length > 0) throw new NgrokdError('NGROKD_ERR_PLUGIN_INVALID', `definePlugin(${String(definition.name)}): ${problems.join('; ')}`)
  return Object.freeze({ ...definition, [PLUGIN_BRAND]: 1 as const })
}

export function isPluginModule(value: unknown): value is PluginModule {
  return hasBrand(value, PLUGIN_BRAND)
}
