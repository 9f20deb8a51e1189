// Everything a plugin author needs, and nothing of the daemon: `@ngrokd/core/plugin`.
export {
  definePlugin,
  isPluginModule,
  type PluginDefinition,
  type PluginModule,
  type PluginContext,
  type PluginCleanupContext,
  PLUGIN_CLEANUP_TIMEOUT_MS,
  type PluginScope,
  type PluginInterfaceInfo,
  type PluginOptionsSchema,
  type PluginRouteHandler,
  type ServingEntry,
} from './define-plugin.js'
export type { Check } from '../contracts/check.js'
export { silentLogger, type Logger } from '../contracts/logger.js'
export type { NameResolver, NameRecord, NameResolverHealth } from '../contracts/name-resolver.js'
export * from '../errors/index.js'
export { Lifecycle } from '../util/lifecycle.js'
export { LocalAddresses } from '../util/local-addresses.js'
export { writeFileAtomic, type AtomicWriteOptions } from '../util/atomic-file.js'
// Metric classes for ctx.metrics: the same prom-client copy as the daemon's registry.
export { Counter, Gauge, Histogram, Summary } from 'prom-client'
// How a name-resolver plugin points the OS resolver at itself on macOS and Windows (core's one home of both).
export { syncResolverFiles, removeResolverFiles, ngrokdFiles as ngrokdResolverFiles, MACOS_RESOLVER_DIR, type ResolverTarget } from '../names/macos-resolver-files.js'
export { WindowsNrpt, NRPT_RECORD_FILE, loadWindowsNrptRegistry, type NrptRegistry } from '../names/windows-nrpt.js'

