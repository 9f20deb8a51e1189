import type { DaemonConfig } from './daemon-config.js'
import { SECRET_NAME, redactSecret } from './redact-secret.js'

/**
 * A copy of `config` safe to print (`ngrokd status`, `ngrokd doctor`): the API key shows at most its
 * last 4 characters (`ak_…9xyz`), and so do string driver options whose name says key, secret, token
 * or password.
 */
export function describeConfig(config: DaemonConfig): DaemonConfig {
  const copy = structuredClone(config)
  if (copy.api.key !== undefined) copy.api.key = redactSecret(copy.api.key)
  for (const [name, value] of Object.entries(copy.net.driverOptions)) {
    if (SECRET_NAME.test(name) && typeof value === 'string') copy.net.driverOptions[name] = redactSecret(value)
  }
  return copy
}
