/**
 * `ngrokd run --service`: the process the Service Control Manager starts answers it (winsvc.h). The
 * SCM calls ServiceMain once the dispatcher runs, then a handler per control; every state change is a
 * SetServiceStatus. This module is the state machine, as data; windows-service-ffi.ts makes the calls.
 *
 * - start: START_PENDING at once (the daemon's start may take seconds), RUNNING with STOP, SHUTDOWN and
 *   PRESHUTDOWN accepted once the daemon runs (PRESHUTDOWN comes before the shutdown's short limit for
 *   services, with the preshutdown timeout to drain in), or STOPPED with a service-specific exit code when it could not start
 *   (the recovery actions count that as a failure: FailureActionsOnNonCrashFailures).
 * - STOP / SHUTDOWN / PRESHUTDOWN: STOP_PENDING with a wait hint (drain timeout plus room), a new
 *   checkpoint while the stop runs so the SCM does not judge it hung, then STOPPED (exit code 0, or
 *   ERROR_SERVICE_SPECIFIC_ERROR with 1 when the cleanup failed).
 * - INTERROGATE: NO_ERROR; any other control: ERROR_CALL_NOT_IMPLEMENTED.
 */

import { NgrokdError } from '../errors/ngrokd-error.js'
import { SERVICE_CONTROL_STOP, SERVICE_STOPPED, SERVICE_WIN32_OWN_PROCESS } from './windows-service.js'

export { SERVICE_CONTROL_STOP, SERVICE_STOPPED } // winsvc.h; registration (windows-service.ts) stops a service too
export const SERVICE_START_PENDING = 2 // winsvc.h
export const SERVICE_STOP_PENDING = 3 // winsvc.h
export const SERVICE_RUNNING = 4 // winsvc.h
export const SERVICE_ACCEPT_STOP = 0x1 // winsvc.h
export const SERVICE_ACCEPT_SHUTDOWN = 0x4 // winsvc.h
export const SERVICE_ACCEPT_PRESHUTDOWN = 0x100 // winsvc.h
export const SERVICE_CONTROL_INTERROGATE = 0x4 // winsvc.h
export const SERVICE_CONTROL_SHUTDOWN = 0x5 // winsvc.h
export const SERVICE_CONTROL_PRESHUTDOWN = 0xf // winsvc.h
export const NO_ERROR = 0 // winerror.h
export const ERROR_CALL_NOT_IMPLEMENTED = 120 // winerror.h
export const ERROR_SERVICE_SPECIFIC_ERROR = 1066 // winerror.h
export const ERROR_FAILED_SERVICE_CONTROLLER_CONNECT = 1063 // winerror.h: not started by the SCM
/** Not a Win32 code: the dispatcher failed after ServiceMain ran, and its error was set on another thread. */
export const DISPATCHER_FAILED = -1

/** SERVICE_STATUS's fields in winsvc.h's order: each a DWORD. */
export const SERVICE_STATUS_FIELDS = ['dwServiceType', 'dwCurrentState', 'dwControlsAccepted', 'dwWin32ExitCode', 'dwServiceSpecificExitCode', 'dwCheckPoint', 'dwWaitHint'] as const

/** SERVICE_STATUS (winsvc.h), field for field, in order. */
export interface ServiceStatus {
  dwServiceType: number
  dwCurrentState: number
  dwControlsAccepted: number
  dwWin32ExitCode: number
  dwServiceSpecificExitCode: number
  dwCheckPoint: number
  dwWaitHint: number
}

/** How often a stop in progress tells the SCM it is still working (a new checkpoint). */
export const STOP_CHECKPOINT_EVERY_MS = 2_000

export interface ServiceControlOptions {
  /** SetServiceStatus on the handle RegisterServiceCtrlHandlerExW gave. */
  setStatus(status: ServiceStatus): void
  /** Starts the daemon; rejects when it cannot. */
  start(): Promise<void>
  /** Stops the daemon and removes what it made. */
  stop(): Promise<void>
  /** The longest a stop may take (drain timeout plus room): the wait hint. */
  stopWaitHintMs: number
  /** Called once STOPPED was reported: the dispatcher returns and the process may exit. */
  onStopped?: (exitCode: number) => void
}

/** One service's states, driven by ServiceMain and the control handler. */
export class ServiceControl {
  #state = SERVICE_STOPPED
  #checkPoint = 0
  #stopping?: Promise<void>

  constructor(private readonly options: ServiceControlOptions) {}

  get state(): number {
    return this.#state
  }

  /** ServiceMain: START_PENDING now, RUNNING when the daemon runs, STOPPED with an error when it cannot. */
  async serviceMain(): Promise<void> {
    this.#report(SERVICE_START_PENDING, { waitHint: this.options.stopWaitHintMs })
    try {
      await this.options.start()
    } catch {
      this.#stopped(1)
      return
    }
    if (this.#state === SERVICE_START_PENDING) this.#report(SERVICE_RUNNING)
  }

  /** HandlerEx: what the SCM asked; the answer is the handler's return value. */
  control(code: number): number {
    switch (code) {
      case SERVICE_CONTROL_STOP:
      case SERVICE_CONTROL_SHUTDOWN:
      case SERVICE_CONTROL_PRESHUTDOWN:
        void this.#stop()
        return NO_ERROR
      case SERVICE_CONTROL_INTERROGATE:
        return NO_ERROR
      default:
        return ERROR_CALL_NOT_IMPLEMENTED
    }
  }

  #stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#report(SERVICE_STOP_PENDING, { waitHint: this.options.stopWaitHintMs })
      const ticker = setInterval(() => this.#report(SERVICE_STOP_PENDING, { waitHint: this.options.stopWaitHintMs }), STOP_CHECKPOINT_EVERY_MS)
      let failed = false
      try {
        await this.options.stop()
      } catch {
        failed = true
      } finally {
        clearInterval(ticker)
      }
      this.#stopped(failed ? 1 : 0)
    })()
    return this.#stopping
  }

  #stopped(serviceExitCode: number): void {
    this.#report(SERVICE_STOPPED, { serviceExitCode })
    this.options.onStopped?.(serviceExitCode)
  }

  #report(state: number, { waitHint = 0, serviceExitCode = 0 }: { waitHint?: number; serviceExitCode?: number } = {}): void {
    const pending = state === SERVICE_START_PENDING || state === SERVICE_STOP_PENDING
    this.#checkPoint = pending ? this.#checkPoint + 1 : 0
    this.#state = state
    this.options.setStatus({
      dwServiceType: SERVICE_WIN32_OWN_PROCESS,
      dwCurrentState: state,
      // no control while starting or stopping (winsvc.h: a pending service accepts none)
      dwControlsAccepted: state === SERVICE_RUNNING ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN | SERVICE_ACCEPT_PRESHUTDOWN : 0,
      dwWin32ExitCode: serviceExitCode ? ERROR_SERVICE_SPECIFIC_ERROR : NO_ERROR,
      dwServiceSpecificExitCode: serviceExitCode,
      dwCheckPoint: this.#checkPoint,
      dwWaitHint: pending ? waitHint : 0,
    })
  }
}

/** The SCM's side, as ngrokd uses it: koffi in windows-service-ffi.ts, a stand-in in tests. */
export interface ServiceDispatcher {
  /**
   * StartServiceCtrlDispatcherW with one service, `name`: the SCM then calls `main` (ServiceMain, given
   * SetServiceStatus on the handle of the registered handler) and `control` for each control. Resolves when the
   * dispatcher returns: 0 once the service reported STOPPED, 1063 when the process was not started by the SCM,
   * DISPATCHER_FAILED when it failed after ServiceMain ran (its Win32 error is the worker thread's, unreadable).
   */
  dispatch(name: string, service: { main: (setStatus: (status: ServiceStatus) => void) => void; control: (code: number) => number }): Promise<number>
}

/**
 * `ngrokd run --service`: hands the daemon's start and stop to the SCM and resolves the service's exit code
 * once it reported STOPPED. A process that the SCM did not start is told how to run instead.
 */
export async function runAsWindowsService(
  dispatcher: ServiceDispatcher,
  name: string,
  daemon: Pick<ServiceControlOptions, 'start' | 'stop' | 'stopWaitHintMs'>,
): Promise<number> {
  let exitCode = 0
  let service: ServiceControl | undefined
  const error = await dispatcher.dispatch(name, {
    main: (setStatus) => {
      service = new ServiceControl({ ...daemon, setStatus, onStopped: (code) => (exitCode = code) })
      void service.serviceMain() // ServiceMain returns at once: the daemon starts on the main thread's event loop
    },
    control: (code) => service?.control(code) ?? ERROR_CALL_NOT_IMPLEMENTED,
  })
  if (error === ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) {
    throw new NgrokdError('NGROKD_ERR_SERVICE', 'ngrokd run --service is what the Service Control Manager runs; it was started from a prompt', {
      hint: `start the service with \`sc start ${name}\` (after ngrokd service install), or run ngrokd run without --service`,
    })
  }
  if (error === DISPATCHER_FAILED) {
    // GetLastError is per thread: the dispatcher ran on a koffi worker, so its code is not readable here
    throw new NgrokdError('NGROKD_ERR_SERVICE', 'StartServiceCtrlDispatcherW failed after the service had started; its Win32 error was set on the thread that made the call and cannot be read', {
      hint: `the System event log (source Service Control Manager) has the service's last error; \`sc query ${name}\` shows its state`,
    })
  }
  if (error !== 0) throw new NgrokdError('NGROKD_ERR_SERVICE', `StartServiceCtrlDispatcherW failed: Win32 error ${error}`)
  return exitCode
}
