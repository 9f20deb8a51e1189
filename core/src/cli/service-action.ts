import { execFileSync } from 'node:child_process'
import { realpathSync } from 'node:fs'
import { mkdir, unlink } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { loadConfig, instanceOf } from '../config/index.js'
import { instanceConfigPath } from '../config/instance.js'
import type { DaemonConfig } from '../config/daemon-config.js'
import { NgrokdError } from '../errors/ngrokd-error.js'
import { launchdService } from '../service/launchd.js'
import { systemdService, type ServiceCommand } from '../service/systemd.js'
import { installWindowsService, planWindowsService, uninstallWindowsService } from '../service/windows-service.js'
import { writeFileAtomic } from '../util/atomic-file.js'
import { assertTrustedPath, runsAsRoot } from '../util/trusted-path.js'

/** Where `ngrokd run` reads its config as root when none is named (as the config loader does). */
const SYSTEM_CONFIG = '/etc/ngrokd/config.yml'
/** Room after `forwarder.drain_timeout` for removing names and addresses before the service manager kills. */
const STOP_ROOM_SECONDS = 15

export type ServiceAction = 'install' | 'uninstall' | 'status'

/** What installing the service means on this OS: the file to write, and the commands around it. */
interface ServicePlan {
  file: { path: string; text: string }
  install: ServiceCommand[]
  uninstall: ServiceCommand[]
  afterUninstall: ServiceCommand[]
  status: ServiceCommand[]
  /** Folders the daemon needs before its first start (the state dir). */
  makeDirs: string[]
}

function planFor(config: DaemonConfig, configPath: string | undefined): ServicePlan {
  // the script that runs this command: the installed `ngrokd` bin, through any npm symlink
  const cliPath = realpathSync(process.argv[1]!)
  const nodePath = process.execPath
  if (process.platform === 'linux') {
    const s = systemdService({
      nodePath,
      cliPath,
      ...(configPath ? { configPath } : {}),
      writablePaths: [config.stateDir, config.names.hostsFile, dirname(config.control.socket)],
      stopTimeoutSeconds: Math.ceil(config.forwarder.drainTimeoutMs / 1000) + STOP_ROOM_SECONDS,
      ...instanceOf(config),
      ...(config.control.group ? { controlGroup: true } : {}),
    })
    return { file: { path: s.unitPath, text: s.unit }, install: s.install, uninstall: s.uninstall, afterUninstall: s.afterUninstall, status: s.status, makeDirs: [config.stateDir] }
  }
  if (process.platform === 'darwin') {
    const s = launchdService({ nodePath, cliPath, ...(configPath ? { configPath } : {}), ...instanceOf(config) })
    return { file: { path: s.plistPath, text: s.plist }, install: s.install, uninstall: s.uninstall, afterUninstall: [], status: s.status, makeDirs: [config.stateDir] }
  }
  throw new NgrokdError('NGROKD_ERR_SERVICE', `ngrokd service knows no service manager of ${process.platform}`, {
    hint: 'run `ngrokd run` under your service manager',
  })
}

/**
 * Windows: the service is registered with the Service Control Manager through its API (windows-service.ts: the
 * command line `node.exe <ngrokd> run --service --config FILE`, recovery actions, `ngrokd cleanup` after a third
 * failure); `sc.exe` starts, stops and shows it. --dry-run prints what would be registered.
 */
async function windowsServiceAction(action: ServiceAction, config: DaemonConfig, configPath: string | undefined, dryRun: boolean): Promise<number> {
  const plan = planWindowsService({ nodePath: process.execPath, cliPath: realpathSync(process.argv[1]!), ...(configPath ? { configPath } : {}), ...instanceOf(config) })
  const name = plan.name
  const sc = (...args: string[]): ServiceCommand => ['sc.exe', ...args]
  if (dryRun) {
    if (action === 'install') console.log(`# registered with the Service Control Manager\n${JSON.stringify(plan, null, 2)}\n$ ${sc('start', name).join(' ')}`)
    else console.log(action === 'uninstall' ? `$ ${sc('stop', name).join(' ')}\n# DeleteService ${name}` : `$ ${sc('query', name).join(' ')}`)
    return 0
  }
  if (action === 'status') return runStatus([sc('query', name)])
  const { loadScm } = await import('../service/windows-service-ffi.js')
  const scm = loadScm(process.env.SystemRoot ?? 'C:\\Windows')
  if (action === 'install') {
    await mkdir(config.stateDir, { recursive: true })
    installWindowsService(scm, plan)
    runAll([sc('start', name)])
    console.log(`registered the service ${name} and started it; \`ngrokd status\` shows the daemon`)
  } else {
    try {
      runAll([sc('stop', name)]) // its stop removes what it made
    } catch {
      // not running: nothing to stop
    }
    uninstallWindowsService(scm, name)
    console.log(`removed the service ${name}`)
  }
  return 0
}

/**
 * The service manager's own status command, its output shown as it is and its exit code passed on: systemctl
 * answers 3 for a stopped service and 4 for none, which are answers, not failures of this command.
 */
function runStatus(commands: readonly ServiceCommand[]): number {
  for (const [program, ...args] of commands) {
    try {
      execFileSync(program!, args, { stdio: 'inherit' })
    } catch (cause) {
      const status = (cause as { status?: number | null }).status
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

/** `ngrokd service ACTION`, its arguments checked: loaded only when that command runs. */
export async function runServiceAction(action: ServiceAction, values: { config?: string | undefined; instance?: string | undefined; 'dry-run'?: boolean | undefined }): Promise<number> {
  const loaded = await loadConfig({ configPath: values.config, ...(values.instance ? { instance: values.instance } : {}) })
  // the file this command read; none: the service reads what `ngrokd run` would (the default file once it exists)
  const source = values.config ?? loaded.source
  const configPath = source === undefined ? undefined : resolve(source)
  const defaultFile = loaded.config.instance ? instanceConfigPath(SYSTEM_CONFIG, loaded.config.instance) : SYSTEM_CONFIG
  if (process.platform === 'win32') return windowsServiceAction(action, loaded.config, configPath, values['dry-run'] ?? false)
  const plan = planFor(loaded.config, configPath)
  // systemd gives the service its own /tmp (PrivateTmp): a config there would not be found
  const inTmp = process.platform === 'linux' && configPath !== undefined && /^\/(var\/)?tmp\//.test(configPath)
  const noFile = `# no config file: the service runs on the defaults and the saved API key, and reads ${defaultFile} once it exists`
  if (values['dry-run']) {
    if (configPath === undefined) console.log(noFile)
    if (inTmp) console.log(`# warning: ${configPath} is under /tmp, which the service does not see (PrivateTmp); move it, e.g. to ${SYSTEM_CONFIG}`)
    if (action === 'install') console.log(`# ${plan.file.path}\n${plan.file.text}`)
    const commands = action === 'install' ? plan.install : action === 'uninstall' ? [...plan.uninstall, ['rm', plan.file.path], ...plan.afterUninstall] : plan.status
    for (const c of commands) console.log(`$ ${c.join(' ')}`)
    return 0
  }
  if (action === 'status') return runStatus(plan.status)
  if (process.getuid?.() !== 0) throw new NgrokdError('NGROKD_ERR_PERMISSION', `ngrokd service ${action} changes the system's services`, { hint: `run it with sudo, or see it first with --dry-run` })
  if (action === 'install') {
    if (inTmp) throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `the config ${configPath} is under /tmp, which the service does not see (systemd's PrivateTmp)`, { hint: `move it, e.g. to ${SYSTEM_CONFIG}, and pass that with --config` })
    // the service runs this node and this ngrokd as root at every start: neither may be another user's to change
    if (runsAsRoot()) {
      await assertTrustedPath(process.execPath, { what: 'node binary the service would run' })
      await assertTrustedPath(process.argv[1]!, { what: 'ngrokd program the service would run' })
    }
    for (const dir of plan.makeDirs) await mkdir(dir, { recursive: true, mode: 0o700 })
    await writeFileAtomic(plan.file.path, plan.file.text, { mode: 0o644 })
    runAll(plan.install)
    if (configPath === undefined) console.log(noFile.slice(2))
    console.log(`installed ${plan.file.path} and started it; \`ngrokd status\` shows the daemon`)
  } else {
    runAll(plan.uninstall)
    await unlink(plan.file.path).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : Promise.reject(e)))
    runAll(plan.afterUninstall)
    console.log(`removed ${plan.file.path}`)
  }
  return 0
}
