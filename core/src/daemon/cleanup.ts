import { existsSync } from 'node:fs'
import { readdir, readFile, rm, rmdir, stat } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import type { DaemonConfig } from '../config/daemon-config.js'
import type { Forwarder } from '../contracts/forwarder.js'
import type { Interface } from '../contracts/interface.js'
import type { Allocator } from '../contracts/allocator.js'
import type { Logger } from '../contracts/logger.js'
import type { NameResolver } from '../contracts/name-resolver.js'
import { removeStaleSocket } from '../control/control-server.js'
import { createDaemonScope } from '../di/container.js'
import { INTERFACE } from '../di/tokens.js'
import { NgrokdError, formatError, isNgrokdError } from '../errors/ngrokd-error.js'
import { NgrokApiClient } from '../api/ngrok-api-client.js'
import { MACHINE_ID_METADATA_KEY, Registration, REGISTRATION_FILES } from '../registration/index.js'
import { USER_AGENT } from '../version.js'
import { checkApiKey, readApiKeyFile } from './api-key-file.js'
import { prepareStateDir } from './state-dir.js'
import { removeStaleTempFilesIn } from '../util/atomic-file.js'
import { InstanceLock } from './instance-lock.js'
import { assertTrustedHostsFile, hostsFileResolverFor, platformHostsPath } from '../names/platform-hosts-file.js'
import { parseHostsBlock } from '../names/hosts-block.js'
import { MACOS_RESOLVER_DIR, removeResolverFiles } from '../names/macos-resolver-files.js'
import { loadWindowsNrptRegistry, NRPT_RECORD_FILE, WindowsNrpt, type NrptRegistry } from '../names/windows-nrpt.js'
import { PluginHost, pluginSpecsOf, type CheckedPlugin } from '../plugin/plugin-host.js'
import { PLUGIN_CLEANUP_TIMEOUT_MS, type PluginCleanupContext } from '../plugin/define-plugin.js'
import { within } from '../util/within.js'

/** Stands in for the forwarder while cleaning up: nothing listens, so there is nothing to carry. */
const NO_FORWARDER: Forwarder = {
  forwarder: 'none (cleanup)',
  async listen() {},
  async unlisten() {},
  listeners: () => [],
  async close() {},
  diagnose: async () => [],
}

/** Stands in for the allocator: the stable hostname → address mappings are kept for the next start, untouched. */
const NO_ALLOCATOR: Allocator = {
  allocator: 'none (cleanup)',
  async open() {},
  allocate: async () => [],
  async release() {},
  lookup: () => undefined,
  list: () => [],
  async close() {},
  diagnose: async () => [],
}

/** Stands in for a name resolver that is not the hosts file's: its names are left to it. */
const LEFT_ALONE: NameResolver = {
  resolver: 'none (cleanup)',
  async open() {},
  async publish() {
    return { changed: false }
  },
  list: async () => [],
  async close() {},
  diagnose: async () => [],
}

/** The daemon's locks, taken by `cleanup` or `uninstall`: refused while a daemon of this config runs, with the fix for these commands. */
async function lockWhileNoDaemonRuns(config: DaemonConfig, command: 'cleanup' | 'uninstall'): Promise<InstanceLock> {
  try {
    return await InstanceLock.acquireFor(config)
  } catch (e) {
    throw refusedWhileRunning(e, command)
  }
}

/** A refusal because a daemon runs, with the fix for `command`; any other error as it is. */
function refusedWhileRunning(e: unknown, command: 'cleanup' | 'uninstall'): unknown {
  if (!isNgrokdError(e, 'NGROKD_ERR_ALREADY_RUNNING')) return e
  return new NgrokdError(e.code, e.message, {
    cause: e.cause,
    hint: `stop that daemon first (Ctrl-C, or \`ngrokd service uninstall\` for the service): a daemon that stops removes what it made itself${command === 'uninstall' ? '; then run uninstall again' : ''}`,
  })
}

export interface CleanupOptions {
  /** Where the interface and hosts-block locks are (see `InstanceLockOptions.runDir`); default `defaultRunDir()` (`/run/ngrokd` as root on Linux). For tests. */
  runDir?: string | null
  /** The interface driver's interface instead of `net.driver`'s. For tests. */
  interface?: Interface
  /** How long the driver's removals and close() may take; default {@link CLEANUP_DRIVER_DEADLINE_MS}. For tests. */
  driverDeadlineMs?: number
  /** Remove the interface too; default `cleanup.remove_interface_on_stop`, as a clean stop does (uninstall: always). */
  removeInterface?: boolean
  /** Whose leftovers: default `process.platform`. For tests, with the two below. */
  platform?: NodeJS.Platform
  /** macOS: the folder of per-domain resolver files; default /etc/resolver. */
  resolverDir?: string
  /** Windows: the registry calls of NRPT; default through koffi. */
  nrpt?: () => Promise<NrptRegistry>
}

/**
 * `ngrokd cleanup`: removes what a daemon that is gone (a crash, `kill -9`, a stop that timed out)
 * left on the machine — its addresses and interface, its hosts-file block, the dns plugin's macOS resolver files
 * and Windows NRPT rules, its control socket and its locks — and says what it removed. Refused (NGROKD_ERR_ALREADY_RUNNING) while a daemon runs on
 * the same state dir, interface or hosts block: that one cleans up after itself when it stops.
 * What could not be removed is listed in `failed` with its reason (the command then exits 1), never as removed.
 *
 * Locks that cannot be written (a full state disk, a folder in a lock's place) stop nothing: the locks that are
 * there still decide whether a daemon runs (a live holder's are never removed), and without one the cleanup goes
 * on unlocked; for lack of permission (NGROKD_ERR_PERMISSION, not root) it stops, as before. The hosts block's
 * removal may need room in `state_dir` for its backup (a hosts file rewritten in place): without it the block is
 * listed as not removed, and the rest still goes.
 */
export async function cleanupLeftovers(config: DaemonConfig, logger: Logger, options: CleanupOptions = {}): Promise<CleanupReport> {
  const removed: string[] = []
  const failed: string[] = []
  // made for the locks and the hosts file's backup when missing (nothing ran here, or after uninstall), with the
  // folders above it that were missing too; removed again
  const made = await missingFolders(config.stateDir)
  const removeInterface = options.removeInterface ?? config.cleanup.removeInterfaceOnStop
  // a state dir that is not there holds nothing to clean up: one that cannot be made (a read-only file system) only
  // costs its lock, which the locks below go on without (the interface's and hosts block's still decide)
  const noStateDir = await prepareStateDir(config.stateDir).then(
    () => false,
    (e: unknown) => {
      if (made.length === 0 || !isNgrokdError(e, 'NGROKD_ERR_STATE')) throw e
      logger.warn(`cleanup: ${e.message}: nothing ran on it, so it holds nothing to clean up; going on without its lock`)
      return true
    },
  )
  await assertTrustedHostsFile(config)
  const lockOptions = options.runDir === undefined ? {} : { runDir: options.runDir }
  let lock: InstanceLock | undefined
  try {
    lock = await InstanceLock.acquireFor(config, lockOptions)
    for (const path of lock.replacedStale) removed.push(`stale lock ${path}`)
  } catch (e) {
    if (isNgrokdError(e, 'NGROKD_ERR_ALREADY_RUNNING')) throw refusedWhileRunning(e, 'cleanup')
    // not root: nothing else here could be removed either, and a lock it cannot read says nothing of its holder
    if (isNgrokdError(e, 'NGROKD_ERR_PERMISSION')) throw e
    const stale = await InstanceLock.clearStaleFor(config, lockOptions).catch((refusal: unknown) => Promise.reject(refusedWhileRunning(refusal, 'cleanup')))
    // without a state dir its lock (the first) cannot be written: said above
    if (!noStateDir) logger.warn(`cleanup: the locks cannot be taken, and no running ngrokd holds them: cleaning up without them. ${formatError(e)}`)
    for (const path of stale.removed) removed.push(`stale lock ${path}`)
    failed.push(...stale.failed)
  }
  try {
    const subnetLock = await InstanceLock.removeStaleSubnetLock(config.net.subnet, options.runDir).catch((e: unknown) => {
      failed.push(oneLine(e))
      return undefined
    })
    if (subnetLock) removed.push(`stale lock ${subnetLock}`)
    for (const temp of await removeStaleTempFilesIn(config.stateDir)) removed.push(`temp file ${temp}`)
    const platform = options.platform ?? process.platform
    // on Windows control.socket only names the named pipe, which goes with its process: no file of that path is ngrokd's
    if (platform !== 'win32' && (await removeStaleSocket(config.control.socket))) removed.push(`control socket ${config.control.socket}`)
    // the ngrokd block goes whatever names.resolver is: a plugin's resolver may have fallen back to
    // the hosts file (dns without systemd-resolved); what it published elsewhere is left to it
    const block = `the ngrokd ${config.instance ? `instance ${config.instance} ` : ''}block of ${config.names.hostsFile}`
    // the hosts writer keeps its backup in state_dir: without one, a file that holds no block of ours needs nothing
    if (!noStateDir || (await holdsBlock(config))) {
      const names = hostsFileResolverFor(config, logger)
      try {
        await names.open()
        if ((await names.publish({ records: [] })).changed) removed.push(block)
      } catch (e) {
        failed.push(`${block}: ${oneLine(e)}`)
      } finally {
        await names.close().catch((e: unknown) => logger.warn({ err: e }, `closing the hosts file: ${formatError(e)}`))
      }
    }
    // a dns plugin's routes outlive the daemon on macOS and Windows (files, registry keys): ngrokd's own go; on Linux
    // systemd-resolved forgets a link's domains with the interface, which goes below (a kept one: the plugin's cleanup())
    if (platform === 'darwin') {
      const dir = options.resolverDir ?? MACOS_RESOLVER_DIR
      await removeResolverFiles({ dir, owner: config.stateDir }).then(
        (suffixes) => suffixes.length > 0 && removed.push(`${dir} files of ${suffixes.join(', ')}`),
        (e: unknown) => failed.push(`ngrokd's files in ${dir}: ${oneLine(e)}`),
      )
    } else if (platform === 'win32') {
      const record = join(config.stateDir, NRPT_RECORD_FILE)
      if (existsSync(record)) {
        try {
          const nrpt = new WindowsNrpt(await (options.nrpt ?? loadWindowsNrptRegistry)(), record)
          const namespaces = nrpt.recorded()
          nrpt.remove(namespaces)
          if (namespaces.length > 0) removed.push(`the NRPT rules of ${namespaces.join(', ')}`)
        } catch (e) {
          failed.push(`the NRPT rules recorded in ${record}: ${oneLine(e)}`)
        }
      }
    } else if (config.names.resolver !== 'hosts-file') logger.warn(`names.resolver ${config.names.resolver}: names it published outside the hosts file are left to it`)
    // the driver's calls are a third party's: one that hangs (a close() that never settles) is reported, not waited for
    let driverWork = `the interface and its addresses (net.driver ${config.net.driver})`
    // the interface when it stays (kept by cleanup.remove_interface_on_stop: false, or not removable): for the plugins
    let keptInterface: { name: string; index?: number } | undefined
    const removeAddressesAndInterface = async (): Promise<void> => {
      const scope = await createDaemonScope({
        config,
        logger,
        forwarder: NO_FORWARDER,
        adoptOnly: true,
        // the hosts file's block is done above; names published by a plugin's resolver are that plugin's to remove
        overrides: { allocator: NO_ALLOCATOR, nameResolver: LEFT_ALONE, ...(options.interface ? { interface: options.interface } : {}) },
      })
      driverWork = `interface ${scope.interfaceInfo.name} and its addresses (${scope.driverName})`
      try {
        const iface = scope.scope.resolve(INTERFACE)
        const addresses = scope.interfaceInfo.absent ? [] : await iface.listAddresses()
        if (addresses.length > 0) {
          await iface.applyAddresses({ add: [], remove: addresses })
          removed.push(`${addresses.length} address${addresses.length === 1 ? '' : 'es'} on ${scope.interfaceInfo.name}`)
        }
      } finally {
        let interfaceFailed = false
        await scope.close({
          // as a clean stop does: cleanup.remove_interface_on_stop false keeps the interface, its addresses gone
          removeInterface,
          onError: (what, e) => {
            if (what !== 'interface') return logger.warn({ err: e }, `closing the ${what}: ${formatError(e)}`)
            interfaceFailed = true
            failed.push(`interface ${scope.interfaceInfo.name} (${scope.driverName}): ${formatError(e)}`)
          },
        })
        if (scope.interfaceInfo.adopted && !interfaceFailed && removeInterface) removed.push(`interface ${scope.interfaceInfo.name} (${scope.driverName})`)
        if (!scope.interfaceInfo.absent && (!removeInterface || interfaceFailed)) {
          keptInterface = { name: scope.interfaceInfo.name, ...(scope.interfaceInfo.index === undefined ? {} : { index: scope.interfaceInfo.index }) }
        }
      }
    }
    let timer: NodeJS.Timeout | undefined
    const deadlineMs = options.driverDeadlineMs ?? CLEANUP_DRIVER_DEADLINE_MS
    const deadline = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), deadlineMs)))
    try {
      if ((await Promise.race([removeAddressesAndInterface(), deadline])) === 'late') {
        failed.push(`${driverWork}: the driver did not finish within ${deadlineMs / 1000} s (a call that hangs): see the driver's documentation, then run ngrokd cleanup again`)
      }
    } catch (e) {
      // a driver that cannot open (a refusal meant for serving, a missing library) stops neither the report nor the plugins
      failed.push(`${driverWork}: ${formatError(e)}`)
    } finally {
      clearTimeout(timer)
    }
    await cleanupPlugins(config, logger, platform, keptInterface, removed, failed)
  } finally {
    await lock?.release()
    for (const dir of made) await rmdir(dir).catch(() => {}) // only empty ones, deepest first: never what a run left
  }
  return { removed, failed }
}

/**
 * Each plugin of `plugins:` that has a `cleanup()` removes what its part of the dead daemon left outside ngrokd's files
 * (the dns plugin: systemd-resolved's settings of a kept interface). The list is resolved and checked as a start does;
 * one that does not load, throws or does not answer in time is listed as not removed.
 */
async function cleanupPlugins(config: DaemonConfig, logger: Logger, platform: NodeJS.Platform, keptInterface: { name: string; index?: number } | undefined, removed: string[], failed: string[]): Promise<void> {
  const specs = pluginSpecsOf(config)
  if (specs.length === 0) return
  let checked: CheckedPlugin[]
  try {
    checked = await PluginHost.check(specs, { configDir: config.configDir, platform })
  } catch (e) {
    failed.push(`what the plugins (${specs.map((s) => (typeof s === 'string' ? s : s.name)).join(', ')}) left: they do not load: ${oneLine(e)}`)
    return
  }
  for (const { plugin, options } of checked) {
    if (!plugin.cleanup) continue
    const ctx: PluginCleanupContext = {
      name: plugin.name,
      options,
      logger: logger.child({ plugin: plugin.name }),
      platform,
      stateDir: config.stateDir,
      ...(keptInterface ? { interface: keptInterface } : {}),
    }
    try {
      const said = await within(async () => (await plugin.cleanup!(ctx)) ?? [], PLUGIN_CLEANUP_TIMEOUT_MS, `cleanup() of plugin ${plugin.name}`)
      for (const what of said) removed.push(`${String(what)} (plugin ${plugin.name})`)
    } catch (e) {
      failed.push(`what plugin ${plugin.name} left: ${oneLine(e)}`)
    }
  }
}

/** `dir` and the folders above it that do not exist, deepest first (what `mkdir -p dir` would make). */
/** Whether the hosts file holds the block of `config`'s daemon (a file that cannot be read: it may). */
async function holdsBlock(config: DaemonConfig): Promise<boolean> {
  const data = await readFile(platformHostsPath(config.names.hostsFile)).catch(() => undefined)
  return data === undefined || parseHostsBlock(data, config.instance ? { instance: config.instance } : {}).blocks > 0
}

async function missingFolders(dir: string): Promise<string[]> {
  const missing: string[] = []
  for (let d = resolve(dir); !(await stat(d).then(() => true, () => false)); d = dirname(d)) {
    missing.push(d)
    if (dirname(d) === d) break
  }
  return missing
}

/** How long cleanup waits for the interface driver's removals and close() before it reports them not done. */
const CLEANUP_DRIVER_DEADLINE_MS = 15_000

/** Why something was not removed, on the one line `cleanup` lists it on: the message, its code and its fix. */
function oneLine(e: unknown): string {
  if (!isNgrokdError(e)) return e instanceof Error ? e.message : String(e)
  return `${e.message} (${e.code})${e.hint ? `; ${e.hint}` : ''}`
}

export interface CleanupReport {
  removed: string[]
  /** What could not be removed, and why. */
  failed: string[]
}

export interface UninstallReport extends CleanupReport {
  /** What {@link cleanupLeftovers} removed, then the state directory. */
  removed: string[]
  /** Registrations deleted at ngrok (`--deregister`). */
  deregistered: string[]
  /** The registration left at ngrok without `--deregister`, to say so. */
  leftAtNgrok?: string
  /**
   * Without `--deregister`, when `operator.json` (which names the registration) was unreadable but other
   * registration files were there: the metadata (`ngrokd_machine_id: <id>`) that finds the registration left at ngrok.
   */
  unnamedLeftAtNgrok?: string
  /** `--deregister` with neither a state directory nor an API key: why no registration was looked for. */
  deregisterSkipped?: string
}

/**
 * `ngrokd uninstall [--deregister]`: what `cleanup` removes, then the state directory (client key
 * and certificate, registration, allocations, saved API key). With `deregister` the registration is
 * first deleted at ngrok (as `Registration.deregister`: ours, or every one carrying this machine's
 * id); a failure there stops before anything local is removed, so it can be tried again. Refused
 * while a daemon runs (NGROKD_ERR_ALREADY_RUNNING, from the cleanup's lock).
 */
export async function uninstall(config: DaemonConfig, logger: Logger, options: { deregister: boolean; signal?: AbortSignal }): Promise<UninstallReport> {
  // the cleanup makes the state dir for its lock: only one that was there before is reported removed
  const stateDirExisted = await stat(config.stateDir).then(() => true, () => false)
  const registrationFile = join(config.stateDir, REGISTRATION_FILES.operator)
  // a missing or damaged file names no operator: --deregister then finds ours by this machine's id
  const operatorId = await readFile(registrationFile, 'utf8')
    .then((text) => (JSON.parse(text) as { operatorId?: unknown }).operatorId)
    .then((id) => (typeof id === 'string' ? id : undefined))
    .catch(() => undefined)
  let deregistered: string[] = []
  let deregisterSkipped: string | undefined
  const key = options.deregister ? (config.api.key ?? (await readApiKeyFile(config.stateDir))) : undefined
  if (options.deregister && !key && !stateDirExisted) {
    // uninstalled before (or never run): nothing here names a registration, and without a key none can be looked for
    deregisterSkipped = `no state directory (${config.stateDir}) and no API key: nothing on this machine names a registration at ngrok; to look for one made by this machine, give the key (NGROK_API_KEY) and run it again, or see the ngrok dashboard`
  } else if (options.deregister) {
    if (!key) {
      throw new NgrokdError('NGROKD_ERR_API_KEY_MISSING', 'uninstall --deregister needs the ngrok API key to delete the registration at ngrok', {
        hint: 'set NGROK_API_KEY (or api.key) for this command, or delete the operator in the ngrok dashboard and uninstall without --deregister',
      })
    }
    const api = new NgrokApiClient({ baseUrl: config.api.url, apiKey: checkApiKey(key), logger, userAgent: USER_AGENT, timeoutMs: config.api.timeoutMs, ...(options.signal ? { signal: options.signal } : {}) })
    // before anything local goes: the registration's files are what tells which operator is ours
    await prepareStateDir(config.stateDir)
    const lock = await lockWhileNoDaemonRuns(config, 'uninstall')
    try {
      deregistered = await new Registration({ api, stateDir: config.stateDir, logger }).deregister()
    } finally {
      await lock.release()
    }
  }
  // operator.json damaged: the machine id still finds the registration (in its metadata) once the files are gone
  const machineId = !options.deregister && !operatorId ? await unnamedRegistrationMachineId(config.stateDir) : undefined
  const { removed, failed } = await cleanupLeftovers(config, logger, { removeInterface: true }) // whatever a clean stop keeps
  // removed even when it was not there before: taking the locks may have made it
  const removedState = await removeStateDir(config.stateDir)
  if (stateDirExisted) removed.push(removedState)
  return {
    removed,
    failed,
    deregistered,
    ...(!options.deregister && operatorId ? { leftAtNgrok: operatorId } : {}),
    ...(machineId ? { unnamedLeftAtNgrok: `${MACHINE_ID_METADATA_KEY}: ${machineId}` } : {}),
    ...(deregisterSkipped ? { deregisterSkipped } : {}),
  }
}

/**
 * Removes the state directory; one that is a mount point (EBUSY: a volume of its own) is emptied and kept.
 * Returns what was removed, as `uninstall` reports it.
 */
async function removeStateDir(dir: string): Promise<string> {
  try {
    await rm(dir, { recursive: true, force: true })
    return `state directory ${dir}`
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EBUSY') throw e
    for (const entry of await readdir(dir)) await rm(join(dir, entry), { recursive: true, force: true })
    return `everything in state directory ${dir} (a mount point: the folder itself stays)`
  }
}

/** The machine id, when a client certificate or key says this machine registered though no operator.json names it. */
async function unnamedRegistrationMachineId(stateDir: string): Promise<string | undefined> {
  const registered = await Promise.all([REGISTRATION_FILES.cert, REGISTRATION_FILES.key].map((f) => stat(join(stateDir, f)).then(() => true, () => false)))
  if (!registered.includes(true)) return undefined
  const id = await readFile(join(stateDir, REGISTRATION_FILES.machineId), 'utf8').then((t) => t.trim(), () => '')
  return id || 'unknown: its machine-id file is gone too'
}
