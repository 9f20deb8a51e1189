import { isNgrokdError, type Check } from '@ngrokd/core/driver'
import { AF_INET, ERROR_FILE_NOT_FOUND, ERROR_SUCCESS, win32ErrorName } from './abi/constants.js'
import { decodeAddressTable, findLoopbackLuid } from './abi/structs.js'
import type { WindowsNetApi, WintunApi } from './windows-net-api.js'

/** Where the addresses go: a Wintun adapter, or the loopback pseudo-interface when wintun.dll is not there. */
export type WindowsWintunMode = 'auto' | 'wintun' | 'loopback'

export interface DiagnoseInput {
  mode: WindowsWintunMode
  wintunDllPath: string
  net: WindowsNetApi
  /** Loads wintun.dll (throws a coded error when it cannot). */
  loadWintun: () => WintunApi
  opened?: { mode: 'wintun' | 'loopback'; name: string; dropped: number }
}

/** Checks for `ngrokd doctor`. Loads wintun.dll and asks; changes nothing. */
export function diagnoseWindowsWintun(input: DiagnoseInput): Check[] {
  const checks: Check[] = []
  const admin = safely(() => input.net.isAdministrator())
  checks.push(
    admin === true
      ? { id: 'windows-wintun.administrator', status: 'ok', summary: 'running as Administrator (elevated)' }
      : {
          id: 'windows-wintun.administrator',
          status: 'fail',
          summary: admin === false ? 'not running as Administrator: adding addresses will be refused' : `cannot tell whether this is Administrator: ${String(admin)}`,
          hint: 'run ngrokd from an elevated prompt, or install it as a service (ngrokd service install)',
          code: 'NGROKD_ERR_PERMISSION',
        },
  )

  let wintun: WintunApi | undefined
  if (input.mode === 'loopback') {
    checks.push({ id: 'windows-wintun.wintun-dll', status: 'skip', summary: 'mode: loopback, wintun.dll is not used' })
  } else {
    try {
      wintun = input.loadWintun()
      checks.push({ id: 'windows-wintun.wintun-dll', status: 'ok', summary: `wintun.dll loads from ${input.wintunDllPath}` })
    } catch (e) {
      const message = isNgrokdError(e) ? e.message : String(e)
      const untrusted = isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED')
      checks.push({
        id: 'windows-wintun.wintun-dll',
        status: input.mode === 'wintun' ? 'fail' : 'warn',
        summary: input.mode === 'wintun' ? message : `${message}; addresses go on the loopback pseudo-interface instead`,
        hint: untrusted ? e.hint! : 'download wintun.dll for this architecture from https://www.wintun.net and put it at that path (or set net.driver_options.wintun_dll)',
        code: untrusted ? e.code : 'NGROKD_ERR_DRIVER_LIBRARY',
      })
    }
  }

  if (wintun) {
    const { version, error } = wintun.runningDriverVersion()
    if (version !== 0) {
      checks.push({ id: 'windows-wintun.driver-version', status: 'ok', summary: `Wintun driver ${version >>> 16}.${version & 0xffff} is running` })
    } else if (error === ERROR_FILE_NOT_FOUND) {
      checks.push({ id: 'windows-wintun.driver-version', status: 'ok', summary: 'Wintun driver not loaded yet; the first adapter installs it' })
    } else {
      checks.push({
        id: 'windows-wintun.driver-version',
        status: 'warn',
        summary: `WintunGetRunningDriverVersion failed: ${win32ErrorName(error)} (${error})`,
        hint: 'reinstall wintun.dll from https://www.wintun.net',
        code: 'NGROKD_ERR_SYSCALL',
      })
    }
  } else {
    const table = safely(() => input.net.getUnicastIpAddressTable(AF_INET))
    const luid = typeof table === 'object' && table.status === ERROR_SUCCESS ? findLoopbackLuid(decodeAddressTable(table.rows)) : undefined
    checks.push(
      luid !== undefined
        ? { id: 'windows-wintun.loopback-interface', status: 'ok', summary: `loopback pseudo-interface found (LUID 0x${luid.toString(16)})` }
        : {
            id: 'windows-wintun.loopback-interface',
            status: 'fail',
            summary: 'no loopback pseudo-interface holds 127.0.0.1',
            hint: 'check the TCP/IP stack (netsh interface ipv4 show addresses), or install wintun.dll',
            code: 'NGROKD_ERR_SYSCALL',
          },
    )
  }
  if (input.opened?.mode === 'wintun' && input.opened.dropped > 0) {
    checks.push({ id: 'windows-wintun.dropped-packets', status: 'ok', summary: `${input.opened.dropped} packet(s) routed into ${input.opened.name} were dropped (nothing should be)` })
  }
  return checks
}

function safely<T>(fn: () => T): T | string {
  try {
    return fn()
  } catch (e) {
    return (e as Error)?.message ?? String(e)
  }
}
