import { execFileSync } from 'node:child_process'
import { existsSync, lstatSync, readFileSync, realpathSync } from 'node:fs'
import { mkdir, unlink } from 'node:fs/promises'
import { basename, delimiter, dirname, isAbsolute, join, resolve, sep, win32 } from 'node:path'
import { loadConfig, instanceOf, DEFAULT_CONFIG_PATH } from '../config/index.js'
import { readEnvOverrides } from '../config/env-overrides.js'
import { instanceConfigPath } from '../config/instance.js'
import type { DaemonConfig } from '../config/daemon-config.js'
import { NgrokdError, isNgrokdError } from '../errors/ngrokd-error.js'
import { prepareStateDir } from '../daemon/state-dir.js'
import { LAUNCH_DAEMONS_DIR, launchdLabel, launchdService } from '../service/launchd.js'
import { SYSTEMD_UNIT_DIR, systemdService, systemdUnitName, type ServiceCommand } from '../service/systemd.js'
import { installWindowsService, planWindowsService, uninstallWindowsService, windowsServiceInstalled, type ScmApi } from '../service/windows-service.js'
import { writeFileAtomic } from '../util/atomic-file.js'
import { assertTrustedInstallation, scopeOf } from '../util/load-module.js'
import { assertTrustedPath, runsAsRoot, type TrustedPathOptions } from '../util/trusted-path.js'

/** Where `ngrokd run` reads its config as root when none is named (as the config loader does). */
const SYSTEM_CONFIG = DEFAULT_CONFIG_PATH
/** sd_booted(3): this folder exists when systemd is PID 1. */
const SYSTEMD_RUNNING = '/run/systemd/system'
/** Room after `forwarder.drain_timeout` for removing names and addresses before the service manager kills. */
const STOP_ROOM_SECONDS = 15

export type ServiceAction = 'install' | 'uninstall' | 'status'

/** What installing the service means on this OS: the file to write, and the commands around it. */
interface ServicePlan {
  file: { path: string; text: string }
  /** Run before the file is written, their failure ignored (unloading a job that is not loaded). */
  unloadFirst: ServiceCommand[]
  install: ServiceCommand[]
  uninstall: ServiceCommand[]
  afterUninstall: ServiceCommand[]
  status: ServiceCommand[]
  /** Folders the daemon needs before its first start (the state dir). */
  makeDirs: string[]
}

/**
 * The node the service runs: this one, named by the link on PATH that leads to it when there is one
 * (/usr/local/bin/node → …/Cellar/node/24.1.0/bin/node), so that upgrading node does not break the service.
 */
export function servicedNodePath(execPath = process.execPath, path = process.env.PATH ?? ''): string {
  for (const dir of path.split(delimiter)) {
    if (!isAbsolute(dir)) continue
    const candidate = join(dir, 'node')
    if (candidate === execPath) return execPath
    try {
      // a link of its own (not a path through a linked folder, such as /bin → /usr/bin)
      if (lstatSync(candidate).isSymbolicLink() && realpathSync(candidate) === execPath) return candidate
    } catch {
      // not there
    }
  }
  return execPath
}

/**
 * The `NGROKD_*` variables this command's config came from: the service must get them too, or it runs on another
 * config than the one this plan was made from. The API key is never written into a service file (readable by all):
 * `set-api-key` saves it.
 */
function serviceEnvironment(env: NodeJS.ProcessEnv = process.env): { environment: Record<string, string>; apiKeyVariable?: string } {
  const { sources } = readEnvOverrides(env)
  const environment: Record<string, string> = {}
  let apiKeyVariable: string | undefined
  for (const [key, name] of sources) {
    if (key === 'api.key') apiKeyVariable = name
    else environment[name] = env[name]!
  }
  return { environment, ...(apiKeyVariable ? { apiKeyVariable } : {}) }
}

/** Runtime folders shared with the rest of the system, which a service's control socket must not sit directly in. */
const SHARED_RUNTIME_DIRS: ReadonlySet<string> = new Set(['/', '/run', '/var/run', '/tmp', '/dev/shm', '/var/tmp'])

/** The programs and the config file the service runs. */
interface ServicePaths {
  nodePath: string
  cliPath: string
  configPath: string | undefined
}

function planFor(config: DaemonConfig, { nodePath, cliPath, configPath }: ServicePaths, environment: Record<string, string>): ServicePlan {
  const stopSeconds = Math.ceil(config.forwarder.drainTimeoutMs / 1000) + STOP_ROOM_SECONDS
  if (process.platform === 'linux') {
    const socketDir = dirname(config.control.socket)
    // the unit makes the socket's folder writable to the service: never a folder systemd and udev read units and rules from
    if (SHARED_RUNTIME_DIRS.has(socketDir)) {
      throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `control.socket ${config.control.socket} is directly in ${socketDir}: the service would have to be able to write all of ${socketDir} (where systemd and udev read units and rules), which would undo its sandbox`, {
        hint: `put the socket in a folder of its own: control.socket: /run/ngrokd/${basename(config.control.socket)} (the default is /run/ngrokd/ngrokd.sock)`,
      })
    }
    const s = systemdService({
      nodePath,
      cliPath,
      environment,
      ...(configPath ? { configPath } : {}),
      writablePaths: [config.stateDir, config.names.hostsFile, socketDir],
      stopTimeoutSeconds: stopSeconds,
      ...instanceOf(config),
      ...(config.control.group ? { controlGroup: true } : {}),
    })
    return { file: { path: s.unitPath, text: s.unit }, unloadFirst: [], install: s.install, uninstall: s.uninstall, afterUninstall: s.afterUninstall, status: s.status, makeDirs: [config.stateDir] }
  }
  if (process.platform === 'darwin') {
    const s = launchdService({ nodePath, cliPath, environment, exitTimeoutSeconds: stopSeconds, ...(configPath ? { configPath } : {}), ...instanceOf(config) })
    return { file: { path: s.plistPath, text: s.plist }, unloadFirst: s.unloadFirst, install: s.install, uninstall: s.uninstall, afterUninstall: [], status: s.status, makeDirs: [config.stateDir] }
  }
  throw new NgrokdError('NGROKD_ERR_SERVICE', `ngrokd service knows no service manager of ${process.platform}`, {
    hint: 'run `ngrokd run` under your service manager',
  })
}

/** Where a node root alone can change comes from, for a service refused its node. */
const SERVICE_NODE_HINTS: Partial<Record<NodeJS.Platform, string>> = {
  darwin:
    "run the install with a node only root can change first in PATH: the nodejs.org installer's /usr/local/bin/node (Homebrew's and nvm's node belong to the user who installed them; do not chown them, their updates would break)",
  linux: "run the install with a node only root can change first in PATH: the distribution's /usr/bin/node, or one installed as root (nvm's node in a user's home is that user's)",
}

/** How an installation of ngrokd that only root (Administrators) can change is had, for a service refused its ngrokd; `folder`: the one to give root whole. */
function serviceNgrokdHint(platform: NodeJS.Platform, folder: string): string {
  if (platform === 'win32') {
    return 'from an elevated prompt, install ngrokd under a folder only Administrators can write (npm install -g --prefix "%ProgramFiles%\\ngrokd" ngrokd; npm\'s default, %AppData%\\npm, is the user\'s own) and run the install with that ngrokd'
  }
  return `install ngrokd as root (sudo npm install -g ngrokd, into root's npm prefix, such as /usr/local) and run the install with that ngrokd, or give its files to root: chown -R root ${folder} && chmod -R go-w ${folder} (and any folder above it the message names)`
}

/**
 * The service runs this node and this ngrokd as root (LocalSystem on Windows) at every start: neither may be another
 * user's to change, by the rule of this OS (trusted-path.ts); of ngrokd, no file or folder of its installation either
 * (the packages it loads: {@link assertTrustedInstallation}). npm's default global folder on Windows, `%AppData%\npm`,
 * is the user's own: refused. `rule.uid`: the user besides root whose files pass (0 for what an install as root would refuse).
 */
export async function assertServiceProgramsTrusted(nodePath: string, cliPath: string, rule: Pick<TrustedPathOptions, 'platform' | 'readSddl' | 'uid'> = {}): Promise<void> {
  const platform = rule.platform ?? process.platform
  await assertTrustedPath(nodePath, { what: 'node binary the service would run', code: true, ...rule }).catch((e: unknown) => {
    const ownNode = SERVICE_NODE_HINTS[platform]
    // a node installed by a user's package manager (Homebrew, nvm) is theirs: changing its owner breaks their updates
    throw isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED') && ownNode ? new NgrokdError(e.code, e.message, { cause: e.cause, hint: ownNode }) : e
  })
  const installation = scopeOf(realpathSync(cliPath))
  await assertTrustedPath(cliPath, { what: 'ngrokd program the service would run', code: true, ...rule }).catch((e: unknown) => {
    throw isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED') ? new NgrokdError(e.code, e.message, { cause: e.cause, hint: serviceNgrokdHint(platform, installation) }) : e
  })
  await assertTrustedInstallation(installation, 'ngrokd installation the service would run', rule, (refused) => serviceNgrokdHint(platform, folderToGive(installation, refused)))
}

/**
 * The folder to give root whole for a refused package of ngrokd's installation: the installation, when the package is
 * in it; the node_modules folder that holds both, when npm hoisted the package beside it (a prefix's lib/node_modules);
 * else the refused package itself (a workspace's link leads out of the installation).
 */
function folderToGive(installation: string, refused: string): string {
  if (refused === installation || refused.startsWith(installation + sep)) return installation
  const holder = modulesFolderOf(installation)
  return holder !== undefined && holder === modulesFolderOf(refused) ? holder : refused
}

/** The `node_modules` folder an installed package is in (`/usr/local/lib/node_modules` of `…/node_modules/@ngrokd/core`). */
function modulesFolderOf(pkg: string): string | undefined {
  const marker = `${sep}node_modules${sep}`
  const at = pkg.lastIndexOf(marker)
  return at < 0 ? undefined : pkg.slice(0, at + marker.length - 1)
}

/**
 * For --dry-run, on every OS: `# the install would be refused: …` and its hint when the install, run as root (an
 * Administrator), would refuse the node or the ngrokd the service would run ({@link assertServiceProgramsTrusted});
 * else undefined. `rule`: as there, but whose files pass is root's alone (uid 0), whoever runs the dry run.
 */
export async function installRefusal(nodePath: string, cliPath: string, rule: Pick<TrustedPathOptions, 'platform' | 'readSddl'> = {}): Promise<string | undefined> {
  const untrusted = await assertServiceProgramsTrusted(nodePath, cliPath, { ...rule, uid: 0 }).then(
    () => undefined,
    (e: unknown) => (isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED') ? e : Promise.reject(e)),
  )
  return untrusted && `# the install would be refused: ${untrusted.message}\n#   hint: ${untrusted.hint}`
}

/**
 * Windows: the service is registered with the Service Control Manager through its API (windows-service.ts: the
 * command line `node.exe <ngrokd> run --service --config FILE`, recovery actions, `ngrokd cleanup` after a third
 * failure); `sc.exe` starts, stops and shows it. --dry-run prints what would be registered, and says when the install
 * would be refused.
 */
async function windowsServiceAction(action: ServiceAction, config: DaemonConfig, { cliPath, configPath }: ServicePaths, environment: Record<string, string>, dryRun: boolean): Promise<number> {
  const plan = planWindowsService({ nodePath: process.execPath, cliPath, ...(configPath ? { configPath } : {}), ...instanceOf(config) })
  const carried = Object.keys(environment)
  if (action === 'install' && carried.length > 0) {
    // the SCM starts the service with the system's environment, not this prompt's
    throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `${carried.join(', ')} ${carried.length === 1 ? 'is' : 'are'} set here, but the service would not see ${carried.length === 1 ? 'it' : 'them'}`, {
      hint: 'put the settings in the config file and pass that with --config, then unset the variables',
    })
  }
  const name = plan.name
  const systemRoot = process.env.SystemRoot ?? 'C:\\Windows'
  // by its full path: a bare name is looked for in the working directory first (libuv's search_path), as administrator
  const sc = (...args: string[]): ServiceCommand => [win32.join(systemRoot, 'System32', 'sc.exe'), ...args]
  if (dryRun) {
    if (action === 'install') {
      const refusal = await installRefusal(process.execPath, process.argv[1]!)
      if (refusal) console.log(refusal)
      console.log(`# registered with the Service Control Manager (a service ${name} registered before is changed to it, and stopped)\n${JSON.stringify(plan, null, 2)}\n# StartServiceW ${name}`)
    } else console.log(action === 'uninstall' ? `# ControlService(STOP) ${name}, waiting for STOPPED\n# DeleteService ${name}` : `$ ${sc('query', name).join(' ')}`)
    return 0
  }
  if (action === 'status') return runStatus([sc('query', name)])
  const { loadScm } = await import('../service/windows-service-ffi.js')
  const scm = loadScm(systemRoot)
  if (action === 'install') {
    if (runsAsRoot()) await assertServiceProgramsTrusted(process.execPath, process.argv[1]!)
    await prepareStateDir(config.stateDir) // with its protected DACL, before the service's first start
    // a service registered before is stopped (waiting at most as long as the service's own stop may take) and started again
    const done = await installWindowsService(scm, plan, { stopTimeoutMs: windowsStopTimeoutMs(config) })
    console.log(`${done === 'replaced' ? 'replaced the registration of' : 'registered'} the service ${name} and started it; \`ngrokd status\` shows the daemon`)
  } else {
    // its stop removes what it made: waited for, as long as the service's own stop may take
    await uninstallWindowsService(scm, name, { stopTimeoutMs: windowsStopTimeoutMs(config) })
    console.log(`stopped and removed the service ${name}`)
  }
  return 0
}

/** How long the service's own stop may take (its stop wait hint): the drain, and room for the rest. */
function windowsStopTimeoutMs(config: DaemonConfig): number {
  return (Math.ceil(config.forwarder.drainTimeoutMs / 1000) + STOP_ROOM_SECONDS) * 1000
}

/**
 * The service manager's own status command, its output shown as it is and its exit code passed on: systemctl
 * answers 3 for a stopped service and 4 for none, which are answers, not failures of this command.
 */
function runStatus(commands: readonly ServiceCommand[], noManager?: (failure: string) => NgrokdError): number {
  for (const [program, ...args] of commands) {
    try {
      // without a service manager its output is held back: an answer (0, 3, 4) is shown, a failure said as ours
      const out = execFileSync(program!, args, { stdio: noManager ? ['ignore', 'pipe', 'pipe'] : 'inherit', encoding: 'utf8' })
      if (noManager) process.stdout.write(out)
    } catch (cause) {
      const status = (cause as { status?: number | null }).status
      if (noManager && typeof status === 'number') {
        const { stdout = '', stderr = '' } = cause as { stdout?: string; stderr?: string }
        if (status !== 3 && status !== 4) throw noManager(stderr.trim().split('\n')[0] || `exit ${status}`)
        process.stdout.write(stdout)
        process.stderr.write(stderr)
      }
      if (typeof status === 'number') return status
      throw new NgrokdError('NGROKD_ERR_SERVICE', `\`${[program, ...args].join(' ')}\` could not run: ${(cause as Error).message.split('\n')[0]}`, { cause, hint: `is ${program} installed?` })
    }
  }
  return 0
}

function runAll(commands: readonly ServiceCommand[]): void {
  for (const [program, ...args] of commands) {
    try {
      execFileSync(program!, args, { stdio: 'inherit' })
    } catch (cause) {
      throw new NgrokdError('NGROKD_ERR_SERVICE', `\`${[program, ...args].join(' ')}\` failed: ${(cause as Error).message.split('\n')[0]}`, {
        cause,
        hint: 'its output above says why; `ngrokd service status` shows the service',
      })
    }
  }
}

/**
 * The service `service install` wrote for this config's instance when it runs this config (the same file, or both
 * the default one): a unit or job that would start this ngrokd again at the next boot. `configFile` is the file this
 * command read, if any. On Windows the Service Control Manager is asked whether the instance's service (`ngrokd`,
 * `ngrokd-NAME`) is registered, whatever config it runs (`scm`: the SCM's calls, loaded when not given).
 * `service` is the unit's or job's file, or the Windows service's name.
 */
export async function installedServiceFor(
  config: DaemonConfig,
  configFile: string | undefined,
  platform = process.platform,
  scm?: ScmApi,
): Promise<{ service: string; configFile?: string } | undefined> {
  const { instance } = instanceOf(config)
  if (platform === 'win32') {
    const name = instance ? `ngrokd-${instance}` : 'ngrokd'
    scm ??= (await import('../service/windows-service-ffi.js')).loadScm(process.env.SystemRoot ?? 'C:\\Windows')
    return windowsServiceInstalled(scm, name) ? { service: name } : undefined
  }
  const file = platform === 'linux' ? join(SYSTEMD_UNIT_DIR, systemdUnitName(instance)) : platform === 'darwin' ? join(LAUNCH_DAEMONS_DIR, `${launchdLabel(instance)}.plist`) : undefined
  if (!file || !existsSync(file)) return undefined
  const text = readFileSync(file, 'utf8')
  // ExecStart=… run --config FILE (systemd); <string>--config</string> <string>FILE</string> (launchd)
  const runs = (/ run (?:.* )?--config (\S+)/.exec(text) ?? /<string>--config<\/string>\s*<string>([^<]+)<\/string>/.exec(text))?.[1]
  const defaultFile = instance ? instanceConfigPath(SYSTEM_CONFIG, instance) : SYSTEM_CONFIG
  // one file by any of its names (as root the loader reads a link's target)
  const same = (path: string) => {
    try {
      return realpathSync(path)
    } catch {
      return resolve(path)
    }
  }
  if (same(runs ?? defaultFile) !== same(configFile ?? defaultFile)) return undefined
  return { service: file, ...(runs ? { configFile: runs } : {}) }
}

/** Unloads a job installed before; a job that is not loaded is what a first install finds, and fine. */
function runIgnoringFailure(commands: readonly ServiceCommand[]): void {
  for (const [program, ...args] of commands) {
    try {
      execFileSync(program!, args, { stdio: 'ignore' })
    } catch {
      // not loaded
    }
  }
}

/** `ngrokd service ACTION`, its arguments checked: loaded only when that command runs. */
export async function runServiceAction(action: ServiceAction, values: { config?: string | undefined; instance?: string | undefined; 'dry-run'?: boolean | undefined }): Promise<number> {
  const loaded = await loadConfig({ configPath: values.config, ...(values.instance ? { instance: values.instance } : {}) })
  // the file this command read; none: the service reads what `ngrokd run` would (the default file once it exists)
  const source = values.config ?? loaded.source
  const configPath = source === undefined ? undefined : resolve(source)
  const defaultFile = loaded.config.instance ? instanceConfigPath(SYSTEM_CONFIG, loaded.config.instance) : SYSTEM_CONFIG
  // the script that runs this command: the installed `ngrokd` bin, through any npm symlink
  const paths: ServicePaths = { nodePath: servicedNodePath(), cliPath: realpathSync(process.argv[1]!), configPath }
  const { environment, apiKeyVariable } = serviceEnvironment()
  const keyNote = apiKeyVariable && action === 'install' ? `# ${apiKeyVariable} is not written into the service's file, which every user can read: \`ngrokd set-api-key\` saves the key for it` : undefined
  if (process.platform === 'win32') return windowsServiceAction(action, loaded.config, paths, environment, values['dry-run'] ?? false)
  const plan = planFor(loaded.config, paths, environment)
  // systemd gives the service its own /tmp (PrivateTmp): a config or a program there would not be found
  const inTmp = process.platform === 'linux' ? [paths.configPath, paths.nodePath, paths.cliPath].find((p) => p !== undefined && /^\/(var\/)?tmp\//.test(p)) : undefined
  const noFile = `# no config file: the service runs on the defaults and the saved API key, and reads ${defaultFile} once it exists`
  const carried = Object.keys(environment)
  const carriedNote = carried.length ? `# from this environment, the service gets ${carried.join(', ')} too` : undefined
  if (values['dry-run']) {
    if (configPath === undefined) console.log(noFile)
    if (inTmp && action === 'install') console.log(`# the install would be refused: ${inTmp} is under /tmp, which the service does not see (PrivateTmp); move it`)
    if (action === 'install' && process.platform === 'linux' && !existsSync(SYSTEMD_RUNNING)) console.log(`# the install would be refused: systemd does not run this machine (no ${SYSTEMD_RUNNING}); the unit below is to adapt to its service manager`)
    if (action === 'install') {
      const refusal = await installRefusal(paths.nodePath, process.argv[1]!)
      if (refusal) console.log(refusal)
    }
    for (const note of [carriedNote, keyNote]) if (note) console.log(note)
    if (action === 'install') console.log(`# ${plan.file.path}\n${plan.file.text}`)
    const commands = action === 'install' ? [...plan.unloadFirst, ...plan.install] : action === 'uninstall' ? [...plan.uninstall, ['rm', plan.file.path], ...plan.afterUninstall] : plan.status
    for (const c of commands) console.log(`$ ${c.join(' ')}`)
    return 0
  }
  if (action === 'status') {
    // sd_booted(3): without systemd, systemctl has no answer, only "Failed to connect to bus" (exit 1): said as ours
    const noSystemd = process.platform === 'linux' && !existsSync(SYSTEMD_RUNNING)
    return runStatus(plan.status, noSystemd ? (failure) => new NgrokdError('NGROKD_ERR_SERVICE', `systemd does not run this machine (no ${SYSTEMD_RUNNING}): there is no ngrokd service to ask about (${failure})`, { hint: '`ngrokd status` asks the daemon itself, however it was started' }) : undefined)
  }
  if (process.getuid?.() !== 0) throw new NgrokdError('NGROKD_ERR_PERMISSION', `ngrokd service ${action} changes the system's services`, { hint: `run it with sudo, or see it first with --dry-run` })
  if (action === 'install') {
    if (inTmp) throw new NgrokdError('NGROKD_ERR_SERVICE', `${inTmp} is under /tmp, which the service does not see (systemd's PrivateTmp)`, { hint: inTmp === configPath ? `move it, e.g. to ${SYSTEM_CONFIG}, and pass that with --config` : 'install node and ngrokd outside /tmp (npm install -g ngrokd)' })
    // sd_booted(3): systemd runs this machine when /run/systemd/system exists; without it nothing could load the unit
    if (process.platform === 'linux' && !existsSync(SYSTEMD_RUNNING)) {
      throw new NgrokdError('NGROKD_ERR_SERVICE', `systemd does not run this machine (no ${SYSTEMD_RUNNING}): nothing could start the unit, and nothing was written`, {
        hint: 'run `ngrokd run` under the service manager this machine has (--dry-run prints the unit, to adapt)',
      })
    }
    if (runsAsRoot()) await assertServiceProgramsTrusted(paths.nodePath, process.argv[1]!)
    for (const dir of plan.makeDirs) await mkdir(dir, { recursive: true, mode: 0o700 })
    runIgnoringFailure(plan.unloadFirst)
    await writeFileAtomic(plan.file.path, plan.file.text, { mode: 0o644 })
    runAll(plan.install)
    if (configPath === undefined) console.log(noFile.slice(2))
    for (const note of [carriedNote, keyNote]) if (note) console.log(note.slice(2))
    console.log(`installed ${plan.file.path} and started it; \`ngrokd status\` shows the daemon`)
  } else {
    if (!existsSync(plan.file.path)) {
      runIgnoringFailure(plan.uninstall) // a unit still loaded from a file someone removed goes too
      console.log(`no ngrokd service is installed here: ${plan.file.path} does not exist`)
      return 0
    }
    // the file goes even when the service manager fails (not running, the unit unknown to it): a later install starts afresh
    let failure: unknown
    try {
      runAll(plan.uninstall)
    } catch (e) {
      failure = e
    }
    await unlink(plan.file.path).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : Promise.reject(e)))
    if (failure) {
      console.log(`removed ${plan.file.path}`)
      throw failure
    }
    runAll(plan.afterUninstall)
    console.log(`removed ${plan.file.path}`)
  }
  return 0
}
