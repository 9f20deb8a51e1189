import type { DaemonConfig } from '../config/daemon-config.js'
import { groupId } from '../control/control-server.js'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { resolveDriver } from '../driver/resolve-driver.js'
import { pluginSpecsOf } from '../plugin/plugin-host.js'
import { builtinPlugins } from '../plugin/resolve-plugin.js'
import { pluginEntryName } from '../config/builtin-plugins.js'
import { hasNetAdmin } from '../util/privilege.js'
import { loadIngressTrust } from '../forward/ingress-trust.js'

/**
 * What a start resolves of the keys a reload cannot apply, checked without starting anything: each throws the error
 * the next start would stop on. `reload` refuses a file that fails one (the daemon keeps what it runs on), and
 * `doctor` reports them.
 */
export const START_CHECKS: Readonly<Record<'control.group' | 'net.driver' | 'names.resolver' | 'ingress.ca_file' | 'ingress.ca_mode', (config: DaemonConfig) => Promise<unknown>>> = {
  // a group that does not exist; Windows resolves it to a SID when the pipe opens
  'control.group': async (config) => (config.control.group && process.platform !== 'win32' ? groupId(config.control.group) : undefined),
  // a ca_file that cannot be read or holds no certificate, or `replace` without one
  'ingress.ca_file': (config) => loadIngressTrust({ caFile: config.ingress.caFile, caMode: config.ingress.caMode }),
  'ingress.ca_mode': (config) => loadIngressTrust({ caFile: config.ingress.caFile, caMode: config.ingress.caMode }),
  'net.driver': (config) => resolveDriver(config.net.driver, { configDir: config.configDir, kind: 'interface', privileged: hasNetAdmin() }),
  // the hosts file, a resolver a listed plugin offers, else a name-resolver driver
  'names.resolver': async (config) => {
    const name = config.names.resolver
    const plugins = pluginSpecsOf(config)
    if (name === 'hosts-file' || plugins.some((spec) => pluginEntryName(spec) === name)) return
    return resolveDriver(name, { configDir: config.configDir, kind: 'name-resolver' }).catch((e: unknown) => {
      // a third-party plugin (by path or package) may offer it under a name of its own: only a start, which registers
      // them, can tell; the built-in ones offer theirs under their own names (above)
      const thirdParty = plugins.some((spec) => !(pluginEntryName(spec)! in builtinPlugins))
      if (thirdParty && isNgrokdError(e, 'NGROKD_ERR_DRIVER_NOT_FOUND')) return undefined
      throw e
    })
  },
}
