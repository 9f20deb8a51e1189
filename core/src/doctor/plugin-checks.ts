import { Registry } from 'prom-client'
import { container } from '../di/tsyringe.js'
import type { DaemonConfig } from '../config/daemon-config.js'
import type { Check } from '../contracts/check.js'
import { silentLogger } from '../contracts/logger.js'
import { callDaemon } from '../daemon/control-api.js'
import { PluginHost, pluginSpecsOf } from '../plugin/plugin-host.js'
import { NgrokdError } from '../errors/ngrokd-error.js'
import { failedCheck } from './ingress-checks.js'
import { issueChecks } from './daemon-checks.js'
import { ConfigInvalidError } from '../config/config-invalid-error.js'
import { hostsFileResolverFor } from '../names/platform-hosts-file.js'

/** How long the daemon may take for its plugins' checks: each plugin's are bounded (PLUGIN_DOCTOR_TIMEOUT_MS). */
const DAEMON_ANSWER_MS = 30_000

/**
 * The plugins' doctor checks: from the running daemon, which has them loaded and started; without
 * one, each plugin of `plugins:` is resolved and registered here (never started) so that a plugin
 * that is missing, incompatible or misconfigured shows before `ngrokd run` does.
 */
export async function pluginChecks(config: DaemonConfig): Promise<Check[]> {
  const specs = pluginSpecsOf(config)
  if (specs.length === 0) return []
  try {
    return (await callDaemon(config.control.socket, 'GET /v1/plugins/checks', undefined, DAEMON_ANSWER_MS)).checks
  } catch (e) {
    // only no daemon (or an older one, without the route) is checked here: a daemon that runs is the truth
    const cause = (e as { cause?: NodeJS.ErrnoException }).cause?.code
    const noDaemon = cause === 'ENOENT' || cause === 'ECONNREFUSED' || /no route GET/.test((e as Error).message)
    if (!noDaemon) return [{ id: 'plugin.checks', status: 'warn', summary: `the running daemon did not give its plugins' checks: ${(e as Error).message}`, hint: 'ngrokd status shows each plugin\'s state' }]
  }
  try {
    const host = await PluginHost.load(specs, {
      configDir: config.configDir,
      stateDir: config.stateDir,
      logger: silentLogger,
      scope: container.createChildContainer(),
      metrics: new Registry(),
      interfaceInfo: () => Promise.reject(new NgrokdError('NGROKD_ERR_CONTROL', 'the daemon is not running: no interface to give')),
      hostsFileResolver: () => hostsFileResolverFor(config, silentLogger),
    })
    const checks = host.status().map((p): Check =>
      p.error
        ? { id: `plugin.${p.name}`, status: 'fail', summary: `plugin ${p.name} ${p.version}: ${p.error.message}`, code: p.error.code }
        : { id: `plugin.${p.name}`, status: 'ok', summary: `plugin ${p.name} ${p.version} loads and its options are valid (its own checks run when the daemon runs)` },
    )
    // a resolver names.resolver does not select is never opened: what the plugin would publish (dns: every name) is not
    for (const { plugin, name } of host.nameResolversOffered().filter((o) => o.name !== config.names.resolver)) {
      checks.push({ id: `plugin.${plugin}.resolver`, status: 'warn', summary: `plugin ${plugin} offers the name resolver ${name}, which is not used: names.resolver is ${config.names.resolver}`, hint: `set names.resolver: ${name} to publish the names through it, or remove ${plugin} from plugins: if it is not meant` })
    }
    return checks
  } catch (e) {
    // a plugin's options found bad: one check per option, named as the user wrote it, as a bad key of the file is
    return e instanceof ConfigInvalidError && e.issues.length > 0 ? issueChecks('plugin.load', e) : [failedCheck('plugin.load', e)]
  }
}
