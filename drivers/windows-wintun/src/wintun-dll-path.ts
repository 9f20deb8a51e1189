import { win32 } from 'node:path'
import { NgrokdError } from '@ngrokd/core/driver'

/**
 * Where wintun.dll is loaded from: always an absolute path, never a bare name (the DLL search order would let a
 * wintun.dll in the current or PATH directories be loaded into an Administrator process).
 *
 * Default `%ProgramFiles%\ngrokd\wintun.dll`: only Administrators can write under Program Files, which matters
 * for a DLL loaded by a process running as Administrator or LocalSystem. Not next to node.exe: Node may live in a
 * user-writable folder (nvm-windows, a zip), and its folder belongs to another product. A 32-bit Node sees
 * `%ProgramFiles%` as `Program Files (x86)`, so the default follows the process's architecture, as the DLL must.
 */
export function resolveWintunDllPath(option: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (option === undefined || option === '') return defaultWintunDllPath(env)
  if (typeof option !== 'string' || !/^([A-Za-z]:[\\/]|\\\\)/.test(option)) {
    throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `windows-wintun: wintun_dll ${JSON.stringify(option)} is not an absolute path with a drive`, {
      hint: 'net.driver_options.wintun_dll: e.g. C:\\Program Files\\ngrokd\\wintun.dll',
    })
  }
  return win32.normalize(option)
}

export function defaultWintunDllPath(env: NodeJS.ProcessEnv = process.env): string {
  return win32.join(env.ProgramFiles ?? 'C:\\Program Files', 'ngrokd', 'wintun.dll')
}

/** `%SystemRoot%` (System32 DLLs are loaded from under it by absolute path too). */
export function systemRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.SystemRoot ?? env.windir ?? 'C:\\Windows'
}

/** True when `path` is under %ProgramFiles% or %SystemRoot%, whose default ACLs let only Administrators write. */
export function isAdminOnlyLocation(path: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const p = win32.normalize(path).toLowerCase()
  return [env.ProgramFiles, env['ProgramFiles(x86)'], systemRoot(env)]
    .filter((d): d is string => typeof d === 'string' && d.length > 0)
    .some((d) => p.startsWith(win32.normalize(d).toLowerCase().replace(/\\?$/, '\\')))
}
