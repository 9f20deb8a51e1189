import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import semver from 'semver'
import { NgrokdError } from '../errors/ngrokd-error.js'
import { CORE_VERSION } from '../version.js'
import { builtinDrivers, platformDefaults, type BuiltinDriverName } from './builtin-drivers.js'
import { isDriverModule, type DriverKind, type DriverModule } from './define-driver.js'

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

export function isPathSpec(spec: string): boolean {
  return spec.startsWith('.') || spec.startsWith('/') || /^[A-Za-z]:[\\/]/.test(spec)
}

/**
 * Finds and loads a driver named in config: `auto`, a built-in short name, an npm package name
 * (resolved from the config file's directory, then from core's own), or a path.
 * Checks the export is a driver, its platforms and its compatible core range.
 */
export async function resolveDriver(spec: string, options: ResolveDriverOptions): Promise<ResolvedDriver> {
  const platform = options.platform ?? process.platform
  let name = spec
  let reason: string | undefined
  if (spec === 'auto') ({ name, reason } = resolveAutoDriver(platform, options.privileged ?? false))
  const specifier = builtinDrivers[name as BuiltinDriverName] ?? name

  let resolved: string
  try {
    resolved = resolveSpecifier(specifier, options.configDir)
  } catch (cause) {
    throw new NgrokdError(
      'NGROKD_ERR_DRIVER_NOT_FOUND',
      `${options.kind} driver "${spec}" not found (looked for ${specifier} from ${options.configDir})`,
      {
        cause,
        hint: isPathSpec(specifier)
          ? `check the path: it is resolved relative to the config file's directory`
          : `install it: npm install ${specifier}${name in builtinDrivers ? '' : ' (next to your config file, or globally beside ngrokd)'}`,
      },
    )
  }
  let mod: { default?: unknown }
  try {
    mod = (await import(pathToFileURL(resolved).href)) as { default?: unknown }
  } catch (cause) {
    throw new NgrokdError('NGROKD_ERR_DRIVER_INVALID', `${options.kind} driver "${spec}" (${resolved}) failed to load: ${(cause as Error).message}`, {
      cause,
      hint: 'reinstall the driver package; if it was built from source, build it (npm run build)',
    })
  }
  const driver = mod.default
  if (!isDriverModule(driver)) {
    throw new NgrokdError('NGROKD_ERR_DRIVER_INVALID', `"${spec}" (${resolved}) is not an ngrokd driver: its default export was not made with defineDriver`, {
      hint: "export default defineDriver({...}) from '@ngrokd/core/driver'",
    })
  }
  if (!driver.provides.includes(options.kind)) {
    throw new NgrokdError('NGROKD_ERR_DRIVER_INVALID', `driver "${driver.name}" provides ${driver.provides.join(', ')}, not ${options.kind}`, {
      hint: `choose a ${options.kind} driver`,
    })
  }
  if (!driver.platforms.includes(platform)) {
    throw new NgrokdError('NGROKD_ERR_DRIVER_UNSUPPORTED_PLATFORM', `driver "${driver.name}" runs on ${driver.platforms.join(', ')}, not ${platform}`, {
      hint: `use net.driver: auto, or a driver made for ${platform}`,
    })
  }
  assertCompatible(driver, CORE_VERSION)
  return { driver, name, specifier, reason }
}

/** Fastify's rule: a driver's `ngrokd` range must include this core's version (prereleases are compared by their release). */
export function assertCompatible(driver: Pick<DriverModule, 'name' | 'ngrokd'>, coreVersion: string): void {
  const version = semver.coerce(coreVersion)?.version ?? coreVersion
  if (!semver.validRange(driver.ngrokd)) {
    throw new NgrokdError('NGROKD_ERR_DRIVER_INVALID', `driver "${driver.name}" declares an invalid core range "${driver.ngrokd}"`)
  }
  if (!semver.satisfies(version, driver.ngrokd)) {
    throw new NgrokdError('NGROKD_ERR_DRIVER_INCOMPATIBLE', `driver "${driver.name}" needs @ngrokd/core ${driver.ngrokd}, this is ${coreVersion}`, {
      hint: `install a version of the driver made for ngrokd ${semver.major(version)}.x, or upgrade ngrokd`,
    })
  }
}

/** The file a driver or plugin specifier names: a path (relative to `configDir`), or a package next to the config, then beside ngrokd. */
export function resolveSpecifier(specifier: string, configDir: string): string {
  if (isPathSpec(specifier)) return createRequire(join(configDir, 'noop.js')).resolve(specifier)
  for (const from of [join(configDir, 'noop.js'), fileURLToPath(import.meta.url)]) {
    try {
      return createRequire(from).resolve(specifier) // next to the config, then beside ngrokd (built-ins)
    } catch (e) {
      const importOnly = importOnlyEntry(specifier, dirname(from))
      if (importOnly) return importOnly
      if (from !== join(configDir, 'noop.js')) throw e
    }
  }
  throw new Error(`cannot resolve ${specifier}`)
}

/**
 * require.resolve() only sees a package's `require`/`default` export conditions. A driver that
 * publishes only `import` is still found: walk up node_modules and read its `exports` ourselves.
 */
function importOnlyEntry(name: string, fromDir: string): string | undefined {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const pkgDir = join(dir, 'node_modules', name)
    try {
      const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { exports?: unknown; main?: string }
      const root = typeof pkg.exports === 'object' && pkg.exports !== null && '.' in pkg.exports ? (pkg.exports as Record<string, unknown>)['.'] : pkg.exports
      const entry = typeof root === 'string' ? root : typeof root === 'object' && root !== null ? ((root as Record<string, unknown>).import ?? (root as Record<string, unknown>).node) : undefined
      if (typeof entry === 'string') return join(pkgDir, entry)
      return undefined
    } catch {
      // not here: go up
    }
    if (dirname(dir) === dir) return undefined
  }
}
