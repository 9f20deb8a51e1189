import { loadModule } from '../util/load-module.js'
import { NgrokdError } from '../errors/ngrokd-error.js'
import { CORE_VERSION } from '../version.js'
import { isPluginModule, type PluginModule } from './define-plugin.js'
import { checkCoreRange, entryName, INVALID_RANGE_HINT } from '../util/core-range.js'
import { BUILTIN_PLUGINS } from '../config/builtin-plugins.js'

/** The plugins that ship with ngrokd, by the short name config uses. */
export const builtinPlugins = BUILTIN_PLUGINS

export interface ResolvedPlugin {
  plugin: PluginModule
  /** What was resolved: the package name or path. */
  specifier: string
  /** The file loaded. */
  file: string
}

/**
 * Finds and loads a plugin named in config, like a driver ({@link loadModule}): a built-in short
 * name (from ngrokd's installation), an npm package name (from the config file's directory, then
 * beside ngrokd) or a path (relative to the config file). Checks the export, the platform and the compatible core range, with coded errors.
 */
export async function resolvePlugin(spec: string, { configDir, platform = process.platform, fresh = false }: { configDir: string; platform?: NodeJS.Platform; fresh?: boolean }): Promise<ResolvedPlugin> {
  const { specifier, file, exports: mod } = await loadModule(spec, {
    what: 'plugin',
    configDir,
    builtins: builtinPlugins,
    codes: { notFound: 'NGROKD_ERR_PLUGIN_NOT_FOUND', invalid: 'NGROKD_ERR_PLUGIN_INVALID' },
    fresh,
  })
  const plugin = mod.default
  if (!isPluginModule(plugin)) {
    const what = plugin === undefined ? 'it has no default export' : 'its default export was not made with definePlugin'
    throw new NgrokdError('NGROKD_ERR_PLUGIN_INVALID', `"${spec}" (${file}) is not an ngrokd plugin: ${what}`, {
      hint: "export default definePlugin({...}) from '@ngrokd/core/plugin'",
    })
  }
  const named = entryName('plugin', plugin.name, spec)
  if (plugin.platforms && !plugin.platforms.includes(platform)) {
    throw new NgrokdError('NGROKD_ERR_PLUGIN_UNSUPPORTED_PLATFORM', `${named} runs on ${plugin.platforms.join(', ')}, not ${platform}`, {
      hint: `remove it from plugins: on ${platform}`,
    })
  }
  const check = checkCoreRange(plugin.ngrokd, CORE_VERSION)
  if (!check.ok && check.reason === 'invalid-range') {
    throw new NgrokdError('NGROKD_ERR_PLUGIN_INVALID', `${named} declares an invalid core range "${plugin.ngrokd}"`, { hint: INVALID_RANGE_HINT })
  }
  if (!check.ok && check.reason === 'incompatible') {
    throw new NgrokdError('NGROKD_ERR_PLUGIN_INCOMPATIBLE', `${named} needs @ngrokd/core ${plugin.ngrokd}, this is ${CORE_VERSION}`, {
      hint: `install a version of the plugin made for ngrokd ${check.coreMajor}.x, or upgrade ngrokd`,
    })
  }
  return { plugin, specifier, file }
}
