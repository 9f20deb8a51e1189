import type { Check } from '../contracts/check.js'
import type { Interface } from '../contracts/interface.js'
import type { NameResolver } from '../contracts/name-resolver.js'
import type { Logger } from '../contracts/logger.js'
import { NgrokdError } from '../errors/ngrokd-error.js'
import { DRIVER_BRAND, hasBrand } from '../util/module-brands.js'

const ID_PATTERN = /^[a-z][a-z0-9-]*$/

/** What a driver may provide. The forwarder is always ngrokd's own (the `forwarder.*` keys). */
export const DRIVER_KINDS = ['interface', 'name-resolver'] as const
export type DriverKind = (typeof DRIVER_KINDS)[number]

/** Something the driver needs from the machine, listed by `ngrokd doctor`. */
const REQUIREMENT_KINDS = ['capability', 'kernel-module', 'library', 'privilege'] as const

/** What a driver needs from the machine; `ngrokd doctor` lists them with the driver. */
export interface DriverRequirement {
  kind: (typeof REQUIREMENT_KINDS)[number]
  name: string
  optional?: boolean
}

/** What a driver gets from the daemon: no container, no config object, just what it may use. */
export interface DriverContext {
  logger: Logger
  /** `state_dir`: where a driver may keep files of its own. */
  stateDir: string
  platform: NodeJS.Platform
}

export interface DriverInstances {
  interface?: Interface
  nameResolver?: NameResolver
}

export interface DriverDefinition<Options = Record<string, unknown>> {
  /** kebab-case id, the same as the one users write in config. */
  name: string
  provides: readonly DriverKind[]
  /** `process.platform` values the driver runs on. */
  platforms: readonly NodeJS.Platform[]
  /** semver range of @ngrokd/core this driver works with, e.g. `^1.0.0`. */
  ngrokd: string
  requirements?: readonly DriverRequirement[]
  create(ctx: DriverContext, options: Options): Promise<DriverInstances>
  /**
   * Checks for `ngrokd doctor`; must not change the system. Gets the same options `create()` would
   * (partial: doctor may run with a config that does not validate).
   */
  diagnose?(ctx: DriverContext, options: Partial<Options>): Promise<Check[]>
}

export type DriverModule<Options = Record<string, unknown>> = Readonly<DriverDefinition<Options>> & {
  readonly [DRIVER_BRAND]: 1
}

/**
 * Declares a driver. Validates the metadata, brands the object so the core recognises it across
 * duplicate copies of core, and freezes it.
 *
 * ```ts
 * export default defineDriver({
 *   name: 'my-driver', provides: ['interface'], platforms: ['linux'], ngrokd: '^1.0.0',
 *   async create(ctx, options) { return { interface: new MyInterface(ctx.logger, options) } },
 * })
 * ```
 */
export function defineDriver<Options = Record<string, unknown>>(definition: DriverDefinition<Options>): DriverModule<Options> {
  const problems: string[] = []
  if (typeof definition.name !== 'string' || !ID_PATTERN.test(definition.name)) {
    problems.push(`name ${JSON.stringify(definition.name)} must match ${ID_PATTERN}`)
  }
  if (!Array.isArray(definition.provides) || definition.provides.length === 0) problems.push(`provides must list at least one of ${DRIVER_KINDS.join(', ')}`)
  else {
    for (const kind of definition.provides as readonly string[]) {
      if ((DRIVER_KINDS as readonly string[]).includes(kind)) continue
      problems.push(kind === 'forwarder' ? 'provides "forwarder": ngrokd always carries connections with its own forwarder (the forwarder.* keys); a driver provides an interface or a name resolver' : `provides ${JSON.stringify(kind)} is not one of ${DRIVER_KINDS.join(', ')}`)
    }
  }
  if (!Array.isArray(definition.platforms) || definition.platforms.length === 0) problems.push('platforms must list at least one process.platform value')
  if (typeof definition.ngrokd !== 'string' || definition.ngrokd.length === 0) problems.push('ngrokd must be a semver range of @ngrokd/core, e.g. "^1.0.0"')
  if (typeof definition.create !== 'function') problems.push('create must be a function')
  if (definition.requirements !== undefined) {
    if (!Array.isArray(definition.requirements)) problems.push('requirements must be a list of { kind, name, optional? }')
    else {
      for (const [i, r] of (definition.requirements as readonly Partial<DriverRequirement>[]).entries()) {
        if (!(REQUIREMENT_KINDS as readonly unknown[]).includes(r?.kind)) problems.push(`requirements[${i}].kind ${JSON.stringify(r?.kind)} is not one of ${REQUIREMENT_KINDS.join(', ')}`)
        if (typeof r?.name !== 'string' || r.name.length === 0) problems.push(`requirements[${i}].name must be a non-empty string`)
      }
    }
  }
  if (problems.length > 0) {
    throw new NgrokdError('NGROKD_ERR_DRIVER_INVALID', `defineDriver(${String(definition.name)}): ${problems.join('; ')}`)
  }
  return Object.freeze({ ...definition, [DRIVER_BRAND]: 1 as const })
}

export function isDriverModule(value: unknown): value is DriverModule {
  return hasBrand(value, DRIVER_BRAND)
}
