import type { DaemonConfig } from '../config/daemon-config.js'

/** What a reload did: keys applied to the running daemon, and keys that take effect only at the next start. */
export interface ReloadResult {
  applied: string[]
  restartNeeded: string[]
  /**
   * Of `restartNeeded`, the paths a systemd unit lets the service write only as they were at `ngrokd service install`
   * (its ReadWritePaths): set when the daemon runs as a systemd service and one of them changed.
   */
  reinstallNeeded?: string[]
}

/** Keys whose folder the systemd unit makes writable (ReadWritePaths), as they were when it was installed. */
export const UNIT_WRITABLE_KEYS: readonly string[] = ['control.socket', 'names.hosts_file', 'state_dir']
/** Why those need the unit written again, for the messages that say so. */
export const REINSTALL_WHY = "the service's unit lets it write only the paths it was installed with"


/** Keys a running daemon takes at once (as the config file names them); every other change waits for a restart. */
export const LIVE_KEYS: readonly string[] = ['log.level', 'bound_endpoints.poll_interval']

/**
 * The keys whose values differ between two resolved configurations, named as in the config file
 * (`boundEndpoints.pollIntervalMs` → `bound_endpoints.poll_interval`). Where the config file itself
 * is (`config_dir`) and where each key was written (`origins`) are no keys.
 */
export function changedKeys(before: DaemonConfig, after: DaemonConfig): string[] {
  const a = flatten(before)
  const b = flatten(after)
  const keys = new Set([...a.keys(), ...b.keys()])
  keys.delete('configDir')
  return [...keys].filter((k) => !k.startsWith('origins.') && a.get(k) !== b.get(k)).map(fileKey).filter((k, i, all) => all.indexOf(k) === i).sort()
}

/** Splits changed keys into those applied live and those needing a restart. */
export function planReload(before: DaemonConfig, after: DaemonConfig): ReloadResult {
  const changed = changedKeys(before, after)
  return { applied: changed.filter((k) => LIVE_KEYS.includes(k)), restartNeeded: changed.filter((k) => !LIVE_KEYS.includes(k)) }
}

/** Keys whose value is a mapping the user names the keys of: one leaf each, its own keys never renamed. */
const USER_MAPS: ReadonlySet<string> = new Set(['ingress.podIdentity.annotations', 'net.driverOptions', 'names.driverOptions'])

/** Leaves as `path → JSON of the value`; arrays, plain values and {@link USER_MAPS} are leaves. */
function flatten(value: unknown, prefix = '', out = new Map<string, string>()): Map<string, string> {
  if (USER_MAPS.has(prefix) && value !== null && typeof value === 'object') {
    // its keys in order, at every depth: the same mapping written in another order is no change
    out.set(prefix, JSON.stringify(value, (_key, v: unknown) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v)))
  } else if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out)
  } else if (prefix) {
    out.set(prefix, JSON.stringify(value) ?? 'undefined')
  }
  return out
}

/** `boundEndpoints.pollIntervalMs` → `bound_endpoints.poll_interval` (durations are written without their unit). */
function fileKey(path: string): string {
  return path
    .split('.')
    .map((part) => part.replace(/Ms$/, '').replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`))
    .join('.')
}
