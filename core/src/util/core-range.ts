// semver by function: all of `semver` is 48 modules. Imported: the build bundles it into dist (see requireCommonJs).
import coerce from 'semver/functions/coerce.js'
import major from 'semver/functions/major.js'
import satisfies from 'semver/functions/satisfies.js'
import validRange from 'semver/ranges/valid.js'

/** How a driver's or plugin's `ngrokd` range relates to this core's version. */
export type CoreRangeCheck = { ok: true } | { ok: false; reason: 'invalid-range' } | { ok: false; reason: 'incompatible'; coreMajor: number }

/**
 * Fastify's rule for drivers and plugins: the module's `ngrokd` range must include this core's version
 * (a prerelease is compared by its release, so `1.2.0-rc.1` satisfies `^1.1`).
 */
export function checkCoreRange(range: string, coreVersion: string): CoreRangeCheck {
  const version = coerce(coreVersion)?.version ?? coreVersion
  if (!validRange(range)) return { ok: false, reason: 'invalid-range' }
  if (!satisfies(version, range)) return { ok: false, reason: 'incompatible', coreMajor: major(version) }
  return { ok: true }
}

/** The fix for a module whose `ngrokd` field is not a semver range. */
export const INVALID_RANGE_HINT = "its ngrokd field must be a semver range of the core it was made for, such as '^1.0.0': fix it in its source, or tell its author"

/** A driver or plugin as the configuration names it: `plugin "dns"`, or `plugin "inc" (./plugins/inc.mjs)` when the entry is a path or package. */
export function entryName(kind: 'driver' | 'plugin', name: string, spec: string): string {
  return spec === name ? `${kind} "${name}"` : `${kind} "${name}" (${spec})`
}
