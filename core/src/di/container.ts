import { container, type DependencyContainer } from './tsyringe.js'
import { join } from 'node:path'
import type { DaemonConfig } from '../config/index.js'
import type { Interface, InterfaceInfo } from '../contracts/interface.js'
import type { Allocator } from '../contracts/allocator.js'
import type { NameResolver } from '../contracts/name-resolver.js'
import type { Forwarder } from '../contracts/forwarder.js'
import type { Logger } from '../contracts/logger.js'
import type { DriverContext } from '../driver/define-driver.js'
import { resolveDriver } from '../driver/resolve-driver.js'
import { driverCall, guardedDriver } from '../driver/guarded-driver.js'
import { NgrokdError, formatError } from '../errors/ngrokd-error.js'
import { ALLOCATIONS_FILE, PersistentAllocator } from '../alloc/index.js'
import { hostsFileResolverFor } from '../names/platform-hosts-file.js'
import { parseSubnet, intToIpv4, LOOPBACK_IPV4, subnetsOverlap } from '../util/ipv4.js'
import { hasNetAdmin } from '../util/privilege.js'
import { ALLOCATOR, FORWARDER, INTERFACE, LOGGER, NAME_RESOLVER } from './tokens.js'

export interface DaemonScope {
  scope: DependencyContainer
  interfaceInfo: InterfaceInfo
  /** The driver `net.driver` resolved to, e.g. `linux-netlink` for `auto`. */
  driverName: string
  /** The subnet addresses come from (the driver's when it overrides `net.subnet`). */
  subnet: string
  /** Closes what the scope owns, in reverse order of creation. */
  close(options?: ScopeCloseOptions): Promise<void>
}

export interface ScopeCloseOptions {
  removeInterface?: boolean
  /** Told what failed to close (`interface`, `allocator`, `names`, `forwarder`) instead of the log's warning. */
  onError?: (what: ScopeMember, error: unknown) => void
}

export type ScopeMember = 'interface' | 'allocator' | 'names' | 'forwarder'

export interface CreateDaemonScopeOptions {
  config: DaemonConfig
  logger: Logger
  forwarder: Forwarder
  /** Replacements for tests (startTestDaemon): registered after the defaults. */
  overrides?: Partial<{ interface: Interface; allocator: Allocator; nameResolver: NameResolver }>
  /** The daemon's root scope (plugins register in children of it); default a new child of the global container. */
  scope?: DependencyContainer
  /** Name resolvers offered by plugins (`names.resolver: <name>`); see PluginHost. */
  plugins?: PluginNameResolvers
  /** `ngrokd cleanup`: the interface is only adopted, never made (see `InterfaceOpenOptions.adoptOnly`). */
  adoptOnly?: boolean
}

/** What the scope needs of the plugin host. */
export interface PluginNameResolvers {
  offersNameResolver(name: string): boolean
  /**
   * Made and opened; undefined when the plugin's factory or its open() failed (it is reported as degraded). One that
   * throws or hangs later is reported the same way, and the names go to `fallback` from then on.
   */
  openNameResolver(name: string, options: { fallback: () => Promise<NameResolver> }): Promise<NameResolver | undefined>
}

/**
 * Builds the per-daemon DI scope: drivers are created (async) first and registered as values; the
 * built-in allocator and name resolver are the defaults. `container.dispose()` does not dispose
 * `useValue` registrations, so the scope closes what it owns itself.
 */
export async function createDaemonScope({ config, logger, forwarder, overrides = {}, scope = container.createChildContainer(), plugins, adoptOnly }: CreateDaemonScopeOptions): Promise<DaemonScope> {
  const owned: Array<[ScopeMember, (opts?: ScopeCloseOptions) => Promise<void>]> = []
  const close = async (opts?: ScopeCloseOptions): Promise<void> => {
    const onError = opts?.onError ?? ((what, e) => logger.warn({ err: e }, `error while closing the ${what}: ${formatError(e)}`))
    for (const [what, fn] of owned.reverse()) await fn(opts).catch((e: unknown) => onError(what, e))
    owned.length = 0
  }
  let madeInterface = false
  try {
    const ctx: DriverContext = { logger, stateDir: config.stateDir, platform: process.platform }
    let iface = overrides.interface
    let driverName = iface?.driver ?? config.net.driver
    if (!iface) {
      const resolved = await resolveDriver(config.net.driver, { configDir: config.configDir, kind: 'interface', privileged: hasNetAdmin() })
      if (resolved.reason) logger.info(`net.driver auto: ${resolved.reason}`)
      driverName = resolved.name
      const made = await driverCall('interface', resolved.name, 'create()', () => resolved.driver.create(ctx, {
        name: config.net.interfaceName,
        subnet: config.net.subnet,
        force: config.net.force,
        removeOnClose: config.cleanup.removeInterfaceOnStop,
        stateDir: config.stateDir,
        ...config.net.driverOptions,
      }))
      iface = guardedDriver(checkMade('interface', resolved.name, made.interface, INTERFACE_METHODS), 'interface', resolved.name, [...INTERFACE_METHODS, 'repair'])
    }
    const theInterface = iface
    if (!overrides.interface) assertServesSubnet(theInterface, driverName, config.net.subnet)
    const interfaceInfo = await driverCall('interface', driverName, 'open()', () => theInterface.open({ name: config.net.interfaceName, subnet: config.net.subnet, ...(adoptOnly ? { adoptOnly } : {}) }))
    owned.push(['interface', (opts) => theInterface.close({ removeInterface: opts?.removeInterface ?? config.cleanup.removeInterfaceOnStop })])
    // cleanup (adoptOnly) opens what it then removes: "adopted the link" is no news to it
    for (const note of interfaceInfo.notes) logger[adoptOnly ? 'debug' : 'warn'](`${driverName}: ${note}`)
    madeInterface = !interfaceInfo.adopted && !interfaceInfo.absent

    const subnet = interfaceInfo.subnet ?? config.net.subnet
    if (subnet !== config.net.subnet) logger.info(`${driverName} serves addresses from ${subnet} (net.subnet ${config.net.subnet} is not usable with it)`)
    const allocator = overrides.allocator ?? new PersistentAllocator({ stateFile: join(config.stateDir, ALLOCATIONS_FILE), logger })
    // the subnet's first host is the interface's own address: never handed to an endpoint
    await allocator.open({ subnet, reserved: [intToIpv4(parseSubnet(subnet).network + 1)] })
    owned.push(['allocator', () => allocator.close()])

    const names = await openNameResolver(config, logger, overrides.nameResolver, plugins)
    owned.push(['names', () => names.close()])
    owned.push(['forwarder', () => forwarder.close()])

    scope.register(LOGGER, { useValue: logger })
    scope.register(INTERFACE, { useValue: theInterface })
    scope.register(ALLOCATOR, { useValue: allocator })
    scope.register(NAME_RESOLVER, { useValue: names })
    scope.register(FORWARDER, { useValue: forwarder })
    return {
      scope,
      interfaceInfo,
      driverName,
      subnet,
      async close(opts) {
        await close(opts)
        await scope.dispose()
      },
    }
  } catch (e) {
    // a start that fails takes back the interface it made; an adopted one stays for the next start
    await close({ removeInterface: madeInterface })
    throw e
  }
}

/**
 * `names.resolver`, opened: the hosts file, a resolver a plugin offers (`dns` with `plugins: [dns]`), or a
 * name-resolver driver. A plugin's resolver that fails to come up (its factory or its `open()` throws or hangs), or
 * fails later (a `publish()`, `list()` that throws or hangs), falls back to the hosts file: a plugin never takes the
 * daemon down.
 */
async function openNameResolver(config: DaemonConfig, logger: Logger, given: NameResolver | undefined, plugins?: PluginNameResolvers): Promise<NameResolver> {
  const opened = async (names: NameResolver): Promise<NameResolver> => {
    await names.open()
    return names
  }
  if (given) return opened(given)
  const hostsFile = (): Promise<NameResolver> => opened(hostsFileResolverFor(config, logger))
  const name = config.names.resolver
  if (name === 'hosts-file') return hostsFile()
  if (plugins?.offersNameResolver(name)) {
    const hostsFileInstead = (failed: string) => (): Promise<NameResolver> => {
      logger.error(`names.resolver ${name}: the plugin's resolver ${failed} (ngrokd status shows why); publishing names in ${config.names.hostsFile} instead`)
      return hostsFile()
    }
    const fromPlugin = await plugins.openNameResolver(name, { fallback: hostsFileInstead('failed') })
    return fromPlugin ?? hostsFileInstead('failed to start')()
  }
  const resolved = await resolveDriver(config.names.resolver, { configDir: config.configDir, kind: 'name-resolver' })
  const made = await driverCall('name-resolver', resolved.name, 'create()', () => resolved.driver.create({ logger, stateDir: config.stateDir, platform: process.platform }, { ...config.names.driverOptions }))
  const names = guardedDriver(checkMade('name resolver', resolved.name, made.nameResolver, NAME_RESOLVER_METHODS), 'name-resolver', resolved.name, NAME_RESOLVER_METHODS)
  return driverCall('name-resolver', resolved.name, 'open()', () => opened(names))
}

/**
 * A subnet inside 127.0.0.0/8 only for a driver that serves loopback (`capabilities.loopbackOnly`): anywhere else the
 * kernel treats such addresses as martians. The config refuses it for every built-in driver but loopback-alias; a
 * third-party driver's capabilities are known only once it is made.
 */
function assertServesSubnet(iface: Interface, driver: string, subnet: string): void {
  if (iface.capabilities?.loopbackOnly || !subnetsOverlap(parseSubnet(subnet), parseSubnet(LOOPBACK_IPV4))) return
  throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `net.subnet ${subnet} overlaps ${LOOPBACK_IPV4}, loopback, and net.driver ${driver} does not serve loopback (its capabilities.loopbackOnly is not set)`, {
    hint: 'set net.subnet to a private unicast range such as 10.107.0.0/16, or use a driver that serves loopback (loopback-alias)',
  })
}

/** The methods of each contract (contracts/interface.ts, contracts/name-resolver.ts) a driver's `create()` must return an object with. */
const INTERFACE_METHODS = ['open', 'addAddress', 'removeAddress', 'applyAddresses', 'listAddresses', 'close', 'diagnose'] as const
const NAME_RESOLVER_METHODS = ['open', 'publish', 'list', 'close', 'diagnose'] as const

/** `made` when it has every one of `methods`; else the error that names the driver, what is missing and the contract. */
function checkMade<T>(what: 'interface' | 'name resolver', driver: string, made: T | undefined, methods: readonly string[]): T {
  const key = what === 'interface' ? 'interface' : 'nameResolver'
  const contract = `docs/writing-a-driver.md, the ${what === 'interface' ? 'Interface' : 'NameResolver'} contract`
  if (made === undefined || made === null) {
    throw new NgrokdError('NGROKD_ERR_DRIVER_INVALID', `driver "${driver}" created no ${what}: its create() returned no \`${key}\``, { hint: `create() must resolve to { ${key} } (${contract})` })
  }
  const missing = methods.filter((m) => typeof (made as Record<string, unknown>)[m] !== 'function')
  if (missing.length > 0) {
    throw new NgrokdError('NGROKD_ERR_DRIVER_INVALID', `driver "${driver}": the ${what} its create() returned has no ${missing.map((m) => `${m}()`).join(', ')}`, { hint: `a ${what} has every method of its contract (${contract})` })
  }
  return made
}

