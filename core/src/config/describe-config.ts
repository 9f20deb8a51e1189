import type { DaemonConfig } from './daemon-config.js'
import { redactSecret, redactSecretOptions } from './redact-secret.js'

/**
 * A copy of `config` safe to print or log (the `effective configuration` debug line): the API key shows at most
 * its last 4 characters (`ak_…9xyz`), and so does every option of a driver or plugin, at any depth, whose name
 * (or a name above it) says secret ({@link redactSecretOptions}). Where each key was written (`origins`) is left out:
 * it is no setting.
 */
export function describeConfig(config: DaemonConfig): DaemonConfig {
  const { origins: _origins, ...settings } = config
  const copy = structuredClone(settings)
  if (copy.api.key !== undefined) copy.api.key = redactSecret(copy.api.key)
  copy.net.driverOptions = redactSecretOptions(copy.net.driverOptions)
  copy.names.driverOptions = redactSecretOptions(copy.names.driverOptions)
  copy.plugins = copy.plugins.map((p) => (typeof p === 'string' || p.options === undefined ? p : { ...p, options: redactSecretOptions(p.options) }))
  return copy
}
