import type { DaemonConfig } from '../config/daemon-config.js'
import { stat } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { assertSocketFolderPossible, groupId } from '../control/control-server.js'
import { NgrokdError, isNgrokdError } from '../errors/ngrokd-error.js'
import { resolveDriver, type ResolvedDriver } from '../driver/resolve-driver.js'
import { pluginSpecsOf } from '../plugin/plugin-host.js'
import { builtinPlugins } from '../plugin/resolve-plugin.js'
import { pluginEntryName } from '../config/builtin-plugins.js'
import { hasNetAdmin } from '../util/privilege.js'
import { nearestExisting } from '../util/nearest-existing.js'
import { runsAsRoot } from '../util/trusted-path.js'
import { assertTrustedHostsFile, platformHostsPath } from '../names/platform-hosts-file.js'
import { checkStateDirTrust, stateDirError } from './state-dir.js'
import { loadIngressTrust } from '../forward/ingress-trust.js'

/**
 * What a start resolves of the keys a reload cannot apply, checked without starting anything: each throws the error
 * the next start would stop on. `reload` refuses a file that fails one (the daemon keeps what it runs on), and
 * `doctor` reports them.
 */
export const START_CHECKS: Readonly<
  Record<'control.group' | 'control.socket' | 'state_dir' | 'names.hosts_file' | 'net.driver' | 'names.resolver' | 'ingress.ca_file' | 'ingress.ca_mode', (config: DaemonConfig) => Promise<unknown>>
> = {
  // a folder that cannot be made (a file on the way); as root one another user could change
  'control.socket': (config) => (process.platform === 'win32' ? Promise.resolve() : assertSocketFolderPossible(config.control.socket)),
  'state_dir': async (config) => {
    const at = nearestExisting(config.stateDir)
    if (!(await stat(at)).isDirectory()) throw stateDirError(config.stateDir, Object.assign(new Error(`${at} is not a directory`), { code: 'ENOTDIR' }))
    if (at === resolve(config.stateDir) && runsAsRoot()) await checkStateDirTrust(config.stateDir)
  },
  // as root one another user could change, or in a folder that does not exist
  'names.hosts_file': async (config) => {
    await assertTrustedHostsFile(config)
    const folder = dirname(platformHostsPath(config.names.hostsFile))
    if (!(await stat(folder).catch(() => undefined))?.isDirectory()) {
      throw new NgrokdError('NGROKD_ERR_HOSTS_FILE', `hosts file ${config.names.hostsFile}: its folder ${folder} does not exist`, {
        hint: 'set names.hosts_file to the hosts file this system reads (/etc/hosts), or create its folder',
      })
    }
  },
  // a group that does not exist; Windows resolves it to a SID when the pipe opens
  'control.group': async (config) => (config.control.group && process.platform !== 'win32' ? groupId(config.control.group) : undefined),
  // a ca_file that cannot be read or holds no certificate, or `replace` without one
  'ingress.ca_file': (config) => loadIngressTrust({ caFile: config.ingress.caFile, caMode: config.ingress.caMode }),
  'ingress.ca_mode': (config) => loadIngressTrust({ caFile: config.ingress.caFile, caMode: config.ingress.caMode }),
  'net.driver': (config) => resolveDriver(config.net.driver, { configDir: config.configDir, kind: 'interface', privileged: hasNetAdmin() }),
  'names.resolver': nameResolverDriverOf,
}

/**
 * The name-resolver driver `names.resolver` names; undefined for the hosts file and a resolver a listed plugin offers.
 * Throws the error a start would stop on.
 */
export async function nameResolverDriverOf(config: DaemonConfig): Promise<ResolvedDriver | undefined> {
  const name = config.names.resolver
  const plugins = pluginSpecsOf(config)
  if (name === 'hosts-file' || plugins.some((spec) => pluginEntryName(spec) === name)) return undefined
  return resolveDriver(name, { configDir: config.configDir, kind: 'name-resolver' }).catch((e: unknown) => {
    // a third-party plugin (by path or package) may offer it under a name of its own: only a start, which registers
    // them, can tell; the built-in ones offer theirs under their own names (above)
    const thirdParty = plugins.some((spec) => !(pluginEntryName(spec)! in builtinPlugins))
    if (thirdParty && isNgrokdError(e, 'NGROKD_ERR_DRIVER_NOT_FOUND')) return undefined
    throw e
  })
}
