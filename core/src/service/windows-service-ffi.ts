// Thin koffi file: the Service Control Manager calls behind ScmApi (windows-service.ts). Loaded with import() on Windows.
import { koffi } from '../util/koffi.js'
import { parseKoffiPrototypes } from '../util/win32-koffi.js'
import {
  encodeDependencies,
  scActionType,
  SERVICE_AUTO_START,
  SERVICE_CONFIG_DESCRIPTION,
  SERVICE_CONFIG_FAILURE_ACTIONS,
  SERVICE_CONFIG_FAILURE_ACTIONS_FLAG,
  SERVICE_CONTROL_STOP,
  SERVICE_ERROR_NORMAL,
  SERVICE_WIN32_OWN_PROCESS,
  type ScmApi,
} from './windows-service.js'
import { DISPATCHER_FAILED, ERROR_FAILED_SERVICE_CONTROLLER_CONNECT, SERVICE_STATUS_FIELDS, type ServiceDispatcher } from './windows-service-control.js'

export interface Prototype {
  dll: string
  header: string
  prototype: string
}

export const SCM_PROTOTYPES: readonly Prototype[] = [
  { dll: 'advapi32.dll', header: 'winsvc.h', prototype: 'SC_HANDLE __stdcall OpenSCManagerW(LPCWSTR lpMachineName, LPCWSTR lpDatabaseName, DWORD dwDesiredAccess)' },
  {
    dll: 'advapi32.dll',
    header: 'winsvc.h',
    prototype:
      'SC_HANDLE __stdcall CreateServiceW(SC_HANDLE hSCManager, LPCWSTR lpServiceName, LPCWSTR lpDisplayName, DWORD dwDesiredAccess, DWORD dwServiceType, DWORD dwStartType, DWORD dwErrorControl, LPCWSTR lpBinaryPathName, LPCWSTR lpLoadOrderGroup, DWORD *lpdwTagId, const WCHAR *lpDependencies, LPCWSTR lpServiceStartName, LPCWSTR lpPassword)',
  },
  { dll: 'advapi32.dll', header: 'winsvc.h', prototype: 'SC_HANDLE __stdcall OpenServiceW(SC_HANDLE hSCManager, LPCWSTR lpServiceName, DWORD dwDesiredAccess)' },
  {
    dll: 'advapi32.dll',
    header: 'winsvc.h',
    prototype:
      'BOOL __stdcall ChangeServiceConfigW(SC_HANDLE hService, DWORD dwServiceType, DWORD dwStartType, DWORD dwErrorControl, LPCWSTR lpBinaryPathName, LPCWSTR lpLoadOrderGroup, DWORD *lpdwTagId, const WCHAR *lpDependencies, LPCWSTR lpServiceStartName, LPCWSTR lpPassword, LPCWSTR lpDisplayName)',
  },
  { dll: 'advapi32.dll', header: 'winsvc.h', prototype: 'BOOL __stdcall ChangeServiceConfig2W(SC_HANDLE hService, DWORD dwInfoLevel, void *lpInfo)' },
  { dll: 'advapi32.dll', header: 'winsvc.h', prototype: 'BOOL __stdcall QueryServiceStatus(SC_HANDLE hService, _Out_ SERVICE_STATUS *lpServiceStatus)' },
  { dll: 'advapi32.dll', header: 'winsvc.h', prototype: 'BOOL __stdcall ControlService(SC_HANDLE hService, DWORD dwControl, _Out_ SERVICE_STATUS *lpServiceStatus)' },
  { dll: 'advapi32.dll', header: 'winsvc.h', prototype: 'BOOL __stdcall StartServiceW(SC_HANDLE hService, DWORD dwNumServiceArgs, LPCWSTR *lpServiceArgVectors)' },
  { dll: 'advapi32.dll', header: 'winsvc.h', prototype: 'BOOL __stdcall DeleteService(SC_HANDLE hService)' },
  { dll: 'advapi32.dll', header: 'winsvc.h', prototype: 'BOOL __stdcall CloseServiceHandle(SC_HANDLE hSCObject)' },
  { dll: 'kernel32.dll', header: 'errhandlingapi.h', prototype: 'DWORD __stdcall GetLastError()' },
]

/** What `ngrokd run --service` calls to be the service the SCM started (windows-service-control.ts). */
export const SERVICE_DISPATCH_PROTOTYPES: readonly Prototype[] = [
  { dll: 'advapi32.dll', header: 'winsvc.h', prototype: 'BOOL __stdcall StartServiceCtrlDispatcherW(const SERVICE_TABLE_ENTRYW *lpServiceStartTable)' },
  { dll: 'advapi32.dll', header: 'winsvc.h', prototype: 'SERVICE_STATUS_HANDLE __stdcall RegisterServiceCtrlHandlerExW(LPCWSTR lpServiceName, LPHANDLER_FUNCTION_EX lpHandlerProc, void *lpContext)' },
  { dll: 'advapi32.dll', header: 'winsvc.h', prototype: 'BOOL __stdcall SetServiceStatus(SERVICE_STATUS_HANDLE hServiceStatus, SERVICE_STATUS *lpServiceStatus)' },
]

/** The callbacks the SCM calls (winsvc.h LPSERVICE_MAIN_FUNCTIONW, LPHANDLER_FUNCTION_EX); koffi runs them on the main thread. */
const SERVICE_CALLBACK_TYPES = [
  'void __stdcall SERVICE_MAIN_FUNCTIONW(DWORD dwNumServicesArgs, LPWSTR *lpServiceArgVectors)',
  'DWORD __stdcall HANDLER_FUNCTION_EX(DWORD dwControl, DWORD dwEventType, void *lpEventData, void *lpContext)',
] as const

/** winsvc.h; service/windows-abi.json holds mingw-w64's value, which a test compares. */
export const SERVICE_ALL_ACCESS = 0xf01ff

let declared = false
function declareTypes(): void {
  if (declared) return
  declared = true
  const tryDeclare = (fn: () => unknown) => {
    try {
      fn()
    } catch {
      // declared by another ngrokd module with the same meaning
    }
  }
  for (const [name, type] of [['DWORD', 'uint32_t'], ['BOOL', 'int32_t'], ['LPCWSTR', 'str16'], ['LPWSTR', 'char16_t *'], ['WCHAR', 'char16_t']] as const) tryDeclare(() => koffi.alias(name, type))
  tryDeclare(() => koffi.pointer('SC_HANDLE', koffi.opaque('SC_HANDLE__')))
  tryDeclare(() => koffi.struct('SC_ACTION', { Type: 'int32_t', Delay: 'uint32_t' })) // winsvc.h
  // winsvc.h: the pointers are LPWSTR and SC_ACTION *; koffi marshals them from JS values
  tryDeclare(() => koffi.struct('SERVICE_FAILURE_ACTIONSW', { dwResetPeriod: 'uint32_t', lpRebootMsg: 'str16', lpCommand: 'str16', cActions: 'uint32_t', lpsaActions: 'SC_ACTION *' }))
  tryDeclare(() => koffi.struct('SERVICE_DESCRIPTIONW', { lpDescription: 'str16' }))
  tryDeclare(() => koffi.struct('SERVICE_FAILURE_ACTIONS_FLAG', { fFailureActionsOnNonCrashFailures: 'int32_t' }))
  // winsvc.h: SERVICE_STATUS is seven DWORDs; SERVICE_TABLE_ENTRYW a name and ServiceMain, the table ends with two NULLs
  tryDeclare(() => koffi.struct('SERVICE_STATUS', Object.fromEntries(SERVICE_STATUS_FIELDS.map((f) => [f, 'uint32_t']))))
  tryDeclare(() => koffi.pointer('SERVICE_STATUS_HANDLE', koffi.opaque('SERVICE_STATUS_HANDLE__')))
  for (const type of SERVICE_CALLBACK_TYPES) tryDeclare(() => koffi.proto(type))
  tryDeclare(() => koffi.alias('LPSERVICE_MAIN_FUNCTIONW', koffi.pointer('SERVICE_MAIN_FUNCTIONW')))
  tryDeclare(() => koffi.alias('LPHANDLER_FUNCTION_EX', koffi.pointer('HANDLER_FUNCTION_EX')))
  tryDeclare(() => koffi.struct('SERVICE_TABLE_ENTRYW', { lpServiceName: 'str16', lpServiceProc: 'LPSERVICE_MAIN_FUNCTIONW' }))
}

export function parseScmPrototypes(): number {
  declareTypes()
  return parseKoffiPrototypes(koffi, [...SCM_PROTOTYPES, ...SERVICE_DISPATCH_PROTOTYPES])
}

/** The koffi layouts, for the smoke test to compare with the mingw-w64 numbers. */
export function scmStructLayouts(): Record<string, number> {
  declareTypes()
  return {
    'sizeof SC_ACTION': koffi.sizeof('SC_ACTION'),
    'SC_ACTION.Delay': koffi.offsetof('SC_ACTION', 'Delay'),
    'sizeof SERVICE_FAILURE_ACTIONSW': koffi.sizeof('SERVICE_FAILURE_ACTIONSW'),
    'SERVICE_FAILURE_ACTIONSW.dwResetPeriod': koffi.offsetof('SERVICE_FAILURE_ACTIONSW', 'dwResetPeriod'),
    'SERVICE_FAILURE_ACTIONSW.lpRebootMsg': koffi.offsetof('SERVICE_FAILURE_ACTIONSW', 'lpRebootMsg'),
    'SERVICE_FAILURE_ACTIONSW.lpCommand': koffi.offsetof('SERVICE_FAILURE_ACTIONSW', 'lpCommand'),
    'SERVICE_FAILURE_ACTIONSW.cActions': koffi.offsetof('SERVICE_FAILURE_ACTIONSW', 'cActions'),
    'SERVICE_FAILURE_ACTIONSW.lpsaActions': koffi.offsetof('SERVICE_FAILURE_ACTIONSW', 'lpsaActions'),
    'sizeof SERVICE_FAILURE_ACTIONS_FLAG': koffi.sizeof('SERVICE_FAILURE_ACTIONS_FLAG'),
    'sizeof SERVICE_DESCRIPTIONW': koffi.sizeof('SERVICE_DESCRIPTIONW'),
    'sizeof SERVICE_STATUS': koffi.sizeof('SERVICE_STATUS'),
    'sizeof SERVICE_TABLE_ENTRYW': koffi.sizeof('SERVICE_TABLE_ENTRYW'),
  }
}

/**
 * The dispatcher of the SCM (ServiceDispatcher in windows-service-control.ts): StartServiceCtrlDispatcherW runs on
 * a koffi worker thread (it returns only when the service has stopped), and the SCM's calls of ServiceMain and of
 * the control handler come back to the main thread, which keeps its event loop running meanwhile.
 *
 * Its failure cannot be read with GetLastError: Win32 keeps the last error per thread, and the call ran on the
 * worker. What it means is told by whether ServiceMain ran: a FALSE before it is the SCM refusing the connection
 * (ERROR_FAILED_SERVICE_CONTROLLER_CONNECT, a process not started by the SCM: the table is ngrokd's own and well
 * formed, so ERROR_INVALID_DATA cannot come, nor ERROR_SERVICE_ALREADY_RUNNING from the one call per process);
 * a FALSE after it is DISPATCHER_FAILED.
 */
export function loadServiceDispatcher(systemRoot: string): ServiceDispatcher {
  declareTypes()
  const adv = koffi.load(`${systemRoot}\\System32\\advapi32.dll`)
  const fn = Object.fromEntries(SERVICE_DISPATCH_PROTOTYPES.map((p) => [/(\w+)\(/.exec(p.prototype)![1]!, adv.func(p.prototype)]))
  return {
    dispatch(name, { main, control }) {
      return new Promise<number>((resolve, reject) => {
        let mainRan = false
        const handler = koffi.register((code: number) => control(code), 'LPHANDLER_FUNCTION_EX')
        const serviceMain = koffi.register(() => {
          mainRan = true
          const handle = fn.RegisterServiceCtrlHandlerExW!(name, handler, null)
          main((status) => void fn.SetServiceStatus!(handle, status))
        }, 'LPSERVICE_MAIN_FUNCTIONW')
        const table = [
          { lpServiceName: name, lpServiceProc: serviceMain },
          { lpServiceName: null, lpServiceProc: null },
        ]
        fn.StartServiceCtrlDispatcherW!.async(table, (err: unknown, ok: number) => {
          koffi.unregister(serviceMain)
          koffi.unregister(handler)
          if (err) reject(err)
          else resolve(ok ? 0 : mainRan ? DISPATCHER_FAILED : ERROR_FAILED_SERVICE_CONTROLLER_CONNECT)
        })
      })
    },
  }
}

export function loadScm(systemRoot: string): ScmApi {
  declareTypes()
  const adv = koffi.load(`${systemRoot}\\System32\\advapi32.dll`)
  const k32 = koffi.load(`${systemRoot}\\System32\\kernel32.dll`)
  const fn = Object.fromEntries(SCM_PROTOTYPES.map((p) => [/(\w+)\(/.exec(p.prototype)![1]!, (p.dll === 'kernel32.dll' ? k32 : adv).func(p.prototype)]))
  const lastError = () => fn.GetLastError!() as number
  const handle = (h: unknown) => (h === null ? 0n : koffi.address(h))
  const ok = (r: unknown) => ((r as number) !== 0 ? 0 : lastError())
  return {
    openManager(access) {
      const h = handle(fn.OpenSCManagerW!(null, null, access))
      return { handle: h, error: h === 0n ? lastError() : 0 }
    },
    createService(manager, plan) {
      const h = handle(
        fn.CreateServiceW!(
          manager,
          plan.name,
          plan.displayName,
          SERVICE_ALL_ACCESS,
          SERVICE_WIN32_OWN_PROCESS,
          SERVICE_AUTO_START,
          SERVICE_ERROR_NORMAL,
          plan.binaryPath,
          null,
          null,
          encodeDependencies(plan.dependencies),
          null, // LocalSystem
          null,
        ),
      )
      return { handle: h, error: h === 0n ? lastError() : 0 }
    },
    openService(manager, name, access) {
      const h = handle(fn.OpenServiceW!(manager, name, access))
      return { handle: h, error: h === 0n ? lastError() : 0 }
    },
    changeConfig: (service, plan) =>
      ok(
        fn.ChangeServiceConfigW!(
          service,
          SERVICE_WIN32_OWN_PROCESS,
          SERVICE_AUTO_START,
          SERVICE_ERROR_NORMAL,
          plan.binaryPath,
          null, // load order group: unchanged (none was set)
          null,
          encodeDependencies(plan.dependencies),
          // NULL would keep the account; LocalSystem is named, and its password is empty (winsvc.h ChangeServiceConfigW)
          plan.account,
          '',
          plan.displayName,
        ),
      ),
    queryState(service) {
      const status: Record<string, number> = {}
      const error = ok(fn.QueryServiceStatus!(service, status))
      return { state: error === 0 ? status.dwCurrentState! : 0, error }
    },
    stopService: (service) => ok(fn.ControlService!(service, SERVICE_CONTROL_STOP, {})),
    startService: (service) => ok(fn.StartServiceW!(service, 0, null)),
    setDescription: (service, description) => ok(fn.ChangeServiceConfig2W!(service, SERVICE_CONFIG_DESCRIPTION, koffi.as({ lpDescription: description }, 'SERVICE_DESCRIPTIONW *'))),
    setFailureActions(service, recovery) {
      const info = {
        dwResetPeriod: recovery.resetPeriodSeconds,
        lpRebootMsg: null,
        lpCommand: recovery.command,
        cActions: recovery.actions.length,
        lpsaActions: recovery.actions.map((a) => ({ Type: scActionType(a), Delay: a.delayMs })),
      }
      return ok(fn.ChangeServiceConfig2W!(service, SERVICE_CONFIG_FAILURE_ACTIONS, koffi.as(info, 'SERVICE_FAILURE_ACTIONSW *')))
    },
    setFailureActionsOnNonCrashFailures: (service, enabled) =>
      ok(fn.ChangeServiceConfig2W!(service, SERVICE_CONFIG_FAILURE_ACTIONS_FLAG, koffi.as({ fFailureActionsOnNonCrashFailures: enabled ? 1 : 0 }, 'SERVICE_FAILURE_ACTIONS_FLAG *'))),
    deleteService: (service) => ok(fn.DeleteService!(service)),
    closeServiceHandle(h) {
      fn.CloseServiceHandle!(h)
    },
  }
}
