/**
 * `ngrokd service install` on Windows: what is registered with the Service Control Manager, as data (for
 * `--dry-run`), and the calls that register it (through `ScmApi`: koffi in windows-service-ffi.ts, a fake in tests).
 *
 * How ngrokd runs as a service: the registered command is `node.exe <ngrokd> run --service`; that process is its own
 * Win32 service (StartServiceCtrlDispatcherW on a koffi worker thread, the control handler answered on the main
 * thread), so no wrapper executable is needed. The alternatives were weighed: WinSW is kept up (2.x stable) but is
 * a .NET executable each user would have to download, since npm cannot ship it; NSSM's last release is from 2014
 * (2.24; a 2017 pre-release); node-windows wraps an old WinSW and its stable release is from 2017.
 *
 * Cleanup after stop: on SERVICE_CONTROL_STOP/SHUTDOWN the daemon reports STOP_PENDING, drains and removes what it
 * made (listeners, hosts block, addresses, adapter, NRPT rules), then reports STOPPED. When the process dies
 * instead, the SCM's failure actions restart it twice (a new start adopts and cleans the leftovers) and the third
 * failure within a day runs `ngrokd cleanup` (SC_ACTION_RUN_COMMAND). FailureActionsOnNonCrashFailures makes a
 * stop with a non-zero exit code count as a failure too.
 */
import { setTimeout as delay } from 'node:timers/promises'
import { NgrokdError, PermissionError } from '../errors/ngrokd-error.js'
import { checkServiceInstance } from './instance-name.js'

export const SERVICE_WIN32_OWN_PROCESS = 0x10 // winnt.h
export const SERVICE_AUTO_START = 0x2 // winnt.h
export const SERVICE_ERROR_NORMAL = 0x1 // winnt.h
export const SC_MANAGER_CONNECT = 0x1 // winsvc.h
export const SC_MANAGER_CREATE_SERVICE = 0x2 // winsvc.h
export const SERVICE_QUERY_STATUS = 0x4 // winsvc.h
export const SERVICE_CHANGE_CONFIG = 0x2 // winsvc.h
export const SERVICE_STOP = 0x20 // winsvc.h
export const SERVICE_START = 0x10 // winsvc.h
export const DELETE = 0x10000 // winnt.h
export const SERVICE_CONFIG_DESCRIPTION = 1 // winsvc.h
export const SERVICE_CONFIG_FAILURE_ACTIONS = 2 // winsvc.h
export const SERVICE_CONFIG_FAILURE_ACTIONS_FLAG = 4 // winsvc.h
export const SC_ACTION_NONE = 0 // winsvc.h SC_ACTION_TYPE
export const SC_ACTION_RESTART = 1 // winsvc.h
export const SC_ACTION_RUN_COMMAND = 3 // winsvc.h
export const SC_ACTION_SIZE = 8 // winsvc.h: SC_ACTION_TYPE Type; DWORD Delay
export const ERROR_SUCCESS = 0 // winerror.h
export const ERROR_ACCESS_DENIED = 5 // winerror.h
export const ERROR_SERVICE_EXISTS = 1073 // winerror.h
export const ERROR_SERVICE_DOES_NOT_EXIST = 1060 // winerror.h
export const ERROR_SERVICE_MARKED_FOR_DELETE = 1072 // winerror.h
export const ERROR_DUPLICATE_SERVICE_NAME = 1078 // winerror.h: the display name is another service's name or display name
export const ERROR_SERVICE_ALREADY_RUNNING = 1056 // winerror.h
export const ERROR_SERVICE_CANNOT_ACCEPT_CTRL = 1061 // winerror.h: a pending state (starting, stopping) takes no control
export const ERROR_SERVICE_NOT_ACTIVE = 1062 // winerror.h
export const SERVICE_STOPPED = 1 // winsvc.h SERVICE_STATUS.dwCurrentState
export const SERVICE_CONTROL_STOP = 0x1 // winsvc.h

const ERROR_NAMES: Readonly<Record<number, string>> = {
  [ERROR_ACCESS_DENIED]: 'ERROR_ACCESS_DENIED',
  [ERROR_SERVICE_EXISTS]: 'ERROR_SERVICE_EXISTS',
  [ERROR_SERVICE_DOES_NOT_EXIST]: 'ERROR_SERVICE_DOES_NOT_EXIST',
  [ERROR_SERVICE_MARKED_FOR_DELETE]: 'ERROR_SERVICE_MARKED_FOR_DELETE',
  [ERROR_DUPLICATE_SERVICE_NAME]: 'ERROR_DUPLICATE_SERVICE_NAME',
  [ERROR_SERVICE_ALREADY_RUNNING]: 'ERROR_SERVICE_ALREADY_RUNNING',
  [ERROR_SERVICE_CANNOT_ACCEPT_CTRL]: 'ERROR_SERVICE_CANNOT_ACCEPT_CTRL',
  [ERROR_SERVICE_NOT_ACTIVE]: 'ERROR_SERVICE_NOT_ACTIVE',
}

export interface RecoveryAction {
  type: 'restart' | 'run-command' | 'none'
  delayMs: number
}

/** Everything `ngrokd service install` registers: printed by `--dry-run`, performed by installWindowsService(). */
export interface WindowsServicePlan {
  name: string
  displayName: string
  description: string
  /** The service's command line (CreateServiceW lpBinaryPathName), every argument quoted as CommandLineToArgvW reads it. */
  binaryPath: string
  startType: 'auto'
  /** LocalSystem: adapters, addresses, the hosts file and NRPT need it. */
  account: 'LocalSystem'
  dependencies: string[]
  recovery: {
    /** Seconds without failure after which the failure count starts again. */
    resetPeriodSeconds: number
    actions: RecoveryAction[]
    /** Run by the run-command action. */
    command: string
    /** FailureActionsOnNonCrashFailures. */
    onNonCrashFailures: boolean
  }
  /** How the daemon's leftovers are removed after it stops, in words. */
  cleanupAfterStop: string
}

export interface WindowsServiceOptions {
  /** node.exe (process.execPath). */
  nodePath: string
  /** The ngrokd CLI entry (the bin script). */
  cliPath: string
  /** The config file the service runs with. */
  configPath?: string
  /** A named instance (`instance`): the service is `ngrokd-NAME` and runs `ngrokd … --instance NAME`. */
  instance?: string
}

/**
 * Quotes one argument so CommandLineToArgvW (and the C runtime) read it back unchanged: quotes when it holds a
 * space, tab or quote or is empty; backslashes are doubled only before a quote (shellapi / MSVC argv rules).
 */
export function quoteWindowsArg(arg: string): string {
  if (arg !== '' && !/[\s"]/.test(arg)) return arg
  let out = '"'
  for (let i = 0; i < arg.length; i++) {
    let slashes = 0
    while (arg[i] === '\\') {
      slashes++
      i++
    }
    if (i === arg.length) {
      out += '\\'.repeat(slashes * 2)
      break
    }
    if (arg[i] === '"') out += '\\'.repeat(slashes * 2 + 1) + '"'
    else out += '\\'.repeat(slashes) + arg[i]
  }
  return out + '"'
}

export function windowsCommandLine(args: readonly string[]): string {
  return args.map(quoteWindowsArg).join(' ')
}

/**
 * The registration. Paths are always quoted: an unquoted path with spaces lets Windows try `C:\Program.exe` first,
 * a known way to run someone else's program as LocalSystem.
 */
export function planWindowsService(options: WindowsServiceOptions): WindowsServicePlan {
  checkServiceInstance('service', options.instance)
  const name = options.instance ? `ngrokd-${options.instance}` : 'ngrokd'
  for (const [what, path] of [['node', options.nodePath], ['ngrokd', options.cliPath], ['config', options.configPath]] as const) {
    if (path !== undefined && !/^([A-Za-z]:\\|\\\\)/.test(path)) {
      throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `service: the ${what} path ${JSON.stringify(path)} is not absolute`, { hint: 'give a full path with a drive, e.g. C:\\...' })
    }
  }
  const config = [...(options.configPath ? ['--config', options.configPath] : []), ...(options.instance ? ['--instance', options.instance] : [])]
  const command = windowsCommandLine([options.nodePath, options.cliPath, 'cleanup', ...config])
  return {
    name,
    // display names are unique among services too (CreateServiceW: ERROR_DUPLICATE_SERVICE_NAME): an instance's is its own
    displayName: options.instance ? `ngrokd (${options.instance})` : 'ngrokd',
    description: 'Reaches ngrok kubernetes-bound endpoints from this machine by their hostnames.',
    binaryPath: windowsCommandLine([options.nodePath, options.cliPath, 'run', '--service', ...config]),
    startType: 'auto',
    account: 'LocalSystem',
    dependencies: ['Tcpip', 'Dnscache'],
    recovery: {
      resetPeriodSeconds: 24 * 60 * 60,
      actions: [
        { type: 'restart', delayMs: 5_000 },
        { type: 'restart', delayMs: 30_000 },
        { type: 'run-command', delayMs: 0 },
      ],
      command,
      onNonCrashFailures: true,
    },
    cleanupAfterStop:
      'a stop (SERVICE_CONTROL_STOP or SHUTDOWN) drains connections and removes listeners, the hosts block, addresses, the adapter and NRPT rules before the service reports STOPPED; ' +
      `after a crash the SCM restarts it (5 s, then 30 s; a start adopts and cleans leftovers) and a third failure within a day runs: ${command}`,
  }
}

/** SC_ACTION_TYPE of a plan's action. */
export function scActionType(action: RecoveryAction): number {
  return action.type === 'restart' ? SC_ACTION_RESTART : action.type === 'run-command' ? SC_ACTION_RUN_COMMAND : SC_ACTION_NONE
}

/** The SC_ACTION array (lpsaActions) as bytes: Type, Delay (ms), little-endian DWORDs — winsvc.h. */
export function encodeScActions(actions: readonly RecoveryAction[]): Buffer {
  const b = Buffer.alloc(actions.length * SC_ACTION_SIZE)
  actions.forEach((a, i) => {
    b.writeUInt32LE(scActionType(a), i * SC_ACTION_SIZE)
    b.writeUInt32LE(a.delayMs, i * SC_ACTION_SIZE + 4)
  })
  return b
}

/** lpDependencies: a double-NUL-terminated list (winsvc.h CreateServiceW), as UTF-16LE. */
export function encodeDependencies(names: readonly string[]): Buffer {
  return Buffer.from(names.map((n) => `${n}\0`).join('') + '\0', 'utf16le')
}

/** The Service Control Manager calls, by what they do. Handles are opaque; results are Win32 error codes. */
export interface ScmApi {
  openManager(access: number): { handle: bigint; error: number }
  createService(manager: bigint, plan: WindowsServicePlan): { handle: bigint; error: number }
  openService(manager: bigint, name: string, access: number): { handle: bigint; error: number }
  /**
   * ChangeServiceConfigW with what CreateServiceW sets from the plan: own process, auto start, normal error
   * control, binary path, dependencies, LocalSystem, display name.
   */
  changeConfig(service: bigint, plan: WindowsServicePlan): number
  /** ChangeServiceConfig2W(SERVICE_CONFIG_DESCRIPTION). */
  setDescription(service: bigint, description: string): number
  /** ChangeServiceConfig2W(SERVICE_CONFIG_FAILURE_ACTIONS) with SERVICE_FAILURE_ACTIONSW built from the plan. */
  setFailureActions(service: bigint, recovery: WindowsServicePlan['recovery']): number
  /** ChangeServiceConfig2W(SERVICE_CONFIG_FAILURE_ACTIONS_FLAG). */
  setFailureActionsOnNonCrashFailures(service: bigint, enabled: boolean): number
  /** QueryServiceStatus: SERVICE_STATUS.dwCurrentState. */
  queryState(service: bigint): { state: number; error: number }
  /** ControlService(SERVICE_CONTROL_STOP). */
  stopService(service: bigint): number
  /** StartServiceW with no arguments (the registered command line has them). */
  startService(service: bigint): number
  deleteService(service: bigint): number
  closeServiceHandle(handle: bigint): void
}

export interface InstallWindowsServiceOptions {
  /** The longest a running service may take to stop before a second install gives up (its stop wait hint). */
  stopTimeoutMs: number
  /** How often the stop is polled (QueryServiceStatus). */
  pollMs?: number
}

/**
 * Registers the plan and starts the service: CreateServiceW, then the description, failure actions and their
 * flag, then StartServiceW. A second install replaces the first (the README's promise, as on systemd and launchd):
 * on ERROR_SERVICE_EXISTS the service is opened, ChangeServiceConfigW and the ChangeServiceConfig2W settings are
 * applied again, and the service is stopped (when it runs) and started on its new configuration.
 */
export async function installWindowsService(scm: ScmApi, plan: WindowsServicePlan, options: InstallWindowsServiceOptions): Promise<'created' | 'replaced'> {
  const manager = scm.openManager(SC_MANAGER_CONNECT | SC_MANAGER_CREATE_SERVICE)
  if (manager.handle === 0n) throw scmError('OpenSCManagerW', manager.error, 'the Service Control Manager')
  try {
    const created = scm.createService(manager.handle, plan)
    if (created.handle === 0n && created.error !== ERROR_SERVICE_EXISTS) throw scmError('CreateServiceW', created.error, plan.name)
    const replacing = created.handle === 0n
    const service = replacing ? scm.openService(manager.handle, plan.name, SERVICE_CHANGE_CONFIG | SERVICE_QUERY_STATUS | SERVICE_STOP | SERVICE_START) : created
    if (service.handle === 0n) throw scmError('OpenServiceW', service.error, plan.name)
    try {
      const steps: Array<[string, () => number]> = [
        ...(replacing ? [['ChangeServiceConfigW', () => scm.changeConfig(service.handle, plan)] as [string, () => number]] : []),
        ['ChangeServiceConfig2W(SERVICE_CONFIG_DESCRIPTION)', () => scm.setDescription(service.handle, plan.description)],
        ['ChangeServiceConfig2W(SERVICE_CONFIG_FAILURE_ACTIONS)', () => scm.setFailureActions(service.handle, plan.recovery)],
        ['ChangeServiceConfig2W(SERVICE_CONFIG_FAILURE_ACTIONS_FLAG)', () => scm.setFailureActionsOnNonCrashFailures(service.handle, plan.recovery.onNonCrashFailures)],
      ]
      for (const [call, step] of steps) {
        const error = step()
        if (error !== ERROR_SUCCESS) {
          // no half-configured service left behind; one installed before stays (with what was changed) and runs on
          if (!replacing) scm.deleteService(service.handle)
          throw scmError(call, error, plan.name, replacing ? 'the service installed before is left as it was, or partly changed: ngrokd service install again, or ngrokd service uninstall' : undefined)
        }
      }
      if (replacing) await stopAndWait(scm, service.handle, plan.name, options)
      const error = scm.startService(service.handle)
      // ALREADY_RUNNING: its recovery actions restarted it meanwhile, on the new configuration
      if (error !== ERROR_SUCCESS && error !== ERROR_SERVICE_ALREADY_RUNNING) {
        throw scmError('StartServiceW', error, plan.name, `the service is registered but did not start: \`sc query ${plan.name}\` and the System event log (source Service Control Manager) say why`)
      }
      return replacing ? 'replaced' : 'created'
    } finally {
      scm.closeServiceHandle(service.handle)
    }
  } finally {
    scm.closeServiceHandle(manager.handle)
  }
}

/**
 * Stops a running service and waits, at most `stopTimeoutMs`, until it reports STOPPED. A service that is starting
 * takes no control yet (ERROR_SERVICE_CANNOT_ACCEPT_CTRL): the stop is asked again at the next poll.
 */
async function stopAndWait(scm: ScmApi, service: bigint, name: string, { stopTimeoutMs, pollMs = 250 }: InstallWindowsServiceOptions, timedOut = `its new configuration is registered but not running`, hint = `wait until \`sc query ${name}\` shows STOPPED, then \`sc start ${name}\` (or ngrokd service install again)`): Promise<void> {
  const deadline = Date.now() + stopTimeoutMs
  let asked = false
  for (;;) {
    const { state, error } = scm.queryState(service)
    if (error !== ERROR_SUCCESS) throw scmError('QueryServiceStatus', error, name)
    if (state === SERVICE_STOPPED) return
    if (!asked) {
      const stop = scm.stopService(service)
      if (stop === ERROR_SUCCESS) asked = true
      else if (stop === ERROR_SERVICE_NOT_ACTIVE) return
      else if (stop !== ERROR_SERVICE_CANNOT_ACCEPT_CTRL) throw scmError('ControlService(SERVICE_CONTROL_STOP)', stop, name)
    }
    if (Date.now() >= deadline) {
      throw new NgrokdError('NGROKD_ERR_SERVICE', `service: ${name} did not stop within ${Math.ceil(stopTimeoutMs / 1000)} s; ${timedOut}`, { hint })
    }
    await delay(pollMs)
  }
}

/** Whether the service `name` is registered with the Service Control Manager (OpenServiceW). */
export function windowsServiceInstalled(scm: ScmApi, name: string): boolean {
  const manager = scm.openManager(SC_MANAGER_CONNECT)
  if (manager.handle === 0n) throw scmError('OpenSCManagerW', manager.error, 'the Service Control Manager')
  try {
    const service = scm.openService(manager.handle, name, SERVICE_QUERY_STATUS)
    if (service.handle === 0n) {
      if (service.error === ERROR_SERVICE_DOES_NOT_EXIST) return false
      throw scmError('OpenServiceW', service.error, name)
    }
    scm.closeServiceHandle(service.handle)
    return true
  } finally {
    scm.closeServiceHandle(manager.handle)
  }
}

/**
 * Stops the service, waiting at most `stopTimeoutMs` (its stop removes what it made: done when this returns, for an
 * `ngrokd uninstall` right after), and deletes it; an absent service is fine. One that does not stop in time is marked
 * for deletion all the same (Windows deletes it once it has stopped), and that is said.
 */
export async function uninstallWindowsService(scm: ScmApi, name: string, options: InstallWindowsServiceOptions): Promise<void> {
  const manager = scm.openManager(SC_MANAGER_CONNECT)
  if (manager.handle === 0n) throw scmError('OpenSCManagerW', manager.error, 'the Service Control Manager')
  try {
    const service = scm.openService(manager.handle, name, DELETE | SERVICE_STOP | SERVICE_QUERY_STATUS)
    if (service.handle === 0n) {
      if (service.error === ERROR_SERVICE_DOES_NOT_EXIST) return
      throw scmError('OpenServiceW', service.error, name)
    }
    try {
      let stopping: unknown
      await stopAndWait(scm, service.handle, name, options, 'it is removed once it has stopped', `wait until \`sc query ${name}\` shows it gone; \`ngrokd cleanup\` removes what a stop that did not finish left`).catch((e: unknown) => (stopping = e))
      const error = scm.deleteService(service.handle)
      if (error !== ERROR_SUCCESS && error !== ERROR_SERVICE_MARKED_FOR_DELETE) throw scmError('DeleteService', error, name)
      if (stopping !== undefined) throw stopping
    } finally {
      scm.closeServiceHandle(service.handle)
    }
  } finally {
    scm.closeServiceHandle(manager.handle)
  }
}

function scmError(call: string, error: number, what: string, hint?: string): NgrokdError {
  const name = ERROR_NAMES[error] ?? `Win32 error ${error}`
  if (error === ERROR_ACCESS_DENIED) return new PermissionError(`service: ${call} ${what} refused: ${name} (${error})`, { hint: 'run ngrokd service install from an elevated prompt (Run as Administrator)' })
  return new NgrokdError('NGROKD_ERR_SERVICE', `service: ${call} ${what} failed: ${name} (${error})`, {
    hint:
      hint ??
      (error === ERROR_SERVICE_MARKED_FOR_DELETE
        ? 'an earlier uninstall waits for the service to stop and for Services (services.msc) to be closed'
        : error === ERROR_DUPLICATE_SERVICE_NAME
          ? `another service is named or shown as "${what}": uninstall it, or install ngrokd as a named instance (--instance NAME)`
          : 'see the Windows error code'),
  })
}
