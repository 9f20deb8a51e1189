import { isNgrokdError, NgrokdError } from '../errors/ngrokd-error.js'
import { loadModule } from '../util/load-module.js'
import { CORE_VERSION } from '../version.js'
import { builtinDriverIsForOtherOs, builtinDriverOs, builtinDrivers, platformDefaults, type BuiltinDriverName } from '../config/builtin-drivers.js'
import { hasBrand, PLUGIN_BRAND } from '../util/module-brands.js'
import { isDriverModule, type DriverKind, type DriverModule } from './define-driver.js'
import { checkCoreRange, entryName, INVALID_RANGE_HINT } from '../util/core-range.js'

export interface ResolveDriverOptions {
  /** Directory of the config file: third-party names and relative paths resolve from here. */
  configDir: string
  /** What the caller needs from the driver. */
  kind: DriverKind
  platform?: NodeJS.Platform
  /** Decides `auto` on Linux: true when the process may change network interfaces. */
  privileged?: boolean
}

export interface ResolvedDriver {
  driver: DriverModule
  /** What `spec` became, e.g. `auto` → `linux-netlink`. */
  name: string
  specifier: string
  /** Why `auto` chose what it chose, for one log line. */
  reason?: string
}

/** `auto` → a built-in name for this OS. Linux or macOS without privilege → loopback-alias. */
export function resolveAutoDriver(platform: NodeJS.Platform, privileged: boolean): { name: BuiltinDriverName; reason: string } {
  const preferred = platformDefaults[platform]
  if (platform === 'linux' && !privileged) {
    return { name: 'loopback-alias', reason: 'not root and no CAP_NET_ADMIN: using loopback-alias (127.0.0.0/8 needs no privilege); run as root for linux-netlink' }
  }
  if (platform === 'darwin' && !privileged) {
    return { name: 'loopback-alias', reason: 'not root: using loopback-alias (lo0 aliases, which need root too when they are added); run ngrokd with sudo for darwin-utun' }
  }
  if (!preferred) return { name: 'loopback-alias', reason: `no built-in driver for ${platform} yet: trying loopback-alias` }
  return { name: preferred, reason: `${platform}${privileged ? ' with privilege' : ''}: using ${preferred}` }
}

/**
 * Finds and loads a driver named in config: `auto`, a built-in short name (always from ngrokd's own
 * installation), an npm package name (from the config file's directory, then beside ngrokd), or a
 * path; as root, a module another user could have written is refused ({@link loadModule}).
 * Checks the export is a driver, its platforms and its compatible core range.
 */
export async function resolveDriver(spec: string, options: ResolveDriverOptions): Promise<ResolvedDriver> {
  const platform = options.platform ?? process.platform
  let name = spec
  let reason: string | undefined
  if (spec === 'auto') ({ name, reason } = resolveAutoDriver(platform, options.privileged ?? false))
  if (builtinDriverIsForOtherOs(name, platform)) {
    throw new NgrokdError('NGROKD_ERR_DRIVER_UNSUPPORTED_PLATFORM', `driver "${name}" is for ${builtinDriverOs[name]!.join(', ')}, not ${platform}: npm installs its package (${builtinDrivers[name]}) only there`, {
      hint: `use net.driver: auto, or a driver made for ${platform}`,
    })
  }
  const { specifier, file: resolved, exports: mod } = await loadModule(name, {
    what: `${options.kind} driver`,
    configDir: options.configDir,
    builtins: builtinDrivers,
    codes: { notFound: 'NGROKD_ERR_DRIVER_NOT_FOUND', invalid: 'NGROKD_ERR_DRIVER_INVALID' },
  }).catch((e: unknown) => {
    if (!isNgrokdError(e, 'NGROKD_ERR_DRIVER_NOT_FOUND') || !(name in builtinDriverOs)) throw e
    throw notInstalled(name as BuiltinDriverName, platform, e)
  })
  const driver = mod.default
  if (!isDriverModule(driver)) {
    // a plugin named where a driver goes: its name resolver is chosen by the name it offers it under
    if (hasBrand(driver, PLUGIN_BRAND)) {
      throw new NgrokdError('NGROKD_ERR_DRIVER_INVALID', `"${spec}" (${resolved}) is the plugin ${(driver as { name: string }).name}, not a driver`, {
        hint: options.kind === 'name-resolver' ? `list it in plugins: and set names.resolver to the name its resolver is offered under (the dns plugin's: names.resolver: dns)` : 'list it in plugins:; net.driver takes an interface driver',
      })
    }
    const what = driver === undefined ? 'it has no default export' : 'its default export was not made with defineDriver'
    throw new NgrokdError('NGROKD_ERR_DRIVER_INVALID', `"${spec}" (${resolved}) is not an ngrokd driver: ${what}`, {
      hint: "export default defineDriver({...}) from '@ngrokd/core/driver'",
    })
  }
  if (!driver.provides.includes(options.kind)) {
    throw new NgrokdError('NGROKD_ERR_DRIVER_INVALID', `driver "${driver.name}" provides ${driver.provides.join(', ')}, not ${options.kind}`, {
      hint: `choose ${options.kind === 'interface' ? 'an' : 'a'} ${options.kind} driver`,
    })
  }
  if (!driver.platforms.includes(platform)) {
    throw new NgrokdError('NGROKD_ERR_DRIVER_UNSUPPORTED_PLATFORM', `driver "${driver.name}" runs on ${driver.platforms.join(', ')}, not ${platform}`, {
      hint: `use net.driver: auto, or a driver made for ${platform}`,
    })
  }
  assertCompatible(driver, CORE_VERSION, spec)
  return { driver, name, specifier, reason }
}

/**
 * A platform driver for this system that is missing from ngrokd's installation: an optional dependency
 * of the `ngrokd` package, left out by `--omit=optional` (or `--no-optional`) or by a failed install.
 */
function notInstalled(name: BuiltinDriverName, platform: NodeJS.Platform, cause: unknown): NgrokdError {
  return new NgrokdError('NGROKD_ERR_DRIVER_NOT_FOUND', `built-in driver "${name}" is not installed: ${builtinDrivers[name]}, the ngrokd package's optional dependency for ${platform}, is missing beside ngrokd`, {
    cause,
    hint: 'reinstall ngrokd with its optional dependencies: npm install -g ngrokd (without --omit=optional or --no-optional)',
  })
}

/** Fastify's rule: a driver's `ngrokd` range must include this core's version (prereleases are compared by their release). */
export function assertCompatible(driver: Pick<DriverModule, 'name' | 'ngrokd'>, coreVersion: string, spec: string = driver.name): void {
  const check = checkCoreRange(driver.ngrokd, coreVersion)
  if (check.ok) return
  const named = entryName('driver', driver.name, spec)
  if (check.reason === 'invalid-range') {
    throw new NgrokdError('NGROKD_ERR_DRIVER_INVALID', `${named} declares an invalid core range "${driver.ngrokd}"`, { hint: INVALID_RANGE_HINT })
  }
  throw new NgrokdError('NGROKD_ERR_DRIVER_INCOMPATIBLE', `${named} needs @ngrokd/core ${driver.ngrokd}, this is ${coreVersion}`, {
    hint: `install a version of the driver made for ngrokd ${check.coreMajor}.x, or upgrade ngrokd`,
  })
}
