import { win32 } from 'node:path'
import { assertTrustedPath, NgrokdError, type TrustedPathOptions } from '@ngrokd/core/driver'

/**
 * Where wintun.dll is loaded from: always an absolute path, never a bare name (the DLL search order would let a
 * wintun.dll in the current or PATH directories be loaded into an Administrator process).
 *
 * Default `%ProgramFiles%\ngrokd\wintun.dll`: only Administrators can write under Program Files, which matters
 * for a DLL loaded by a process running as Administrator or LocalSystem (the driver judges the file by the
 * trusted-path rule before it loads it, wherever it is). Not next to node.exe: Node may live in a
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

/**
 * `load` of wintun.dll at `dllPath`, judged first by the trusted-path rule (as code: its folders may not let others add
 * files either): the DLL runs with the daemon's rights (LocalSystem as a service), so one another user could change
 * is refused, never loaded. A DLL that is not there is left to `load`, which says so.
 */
export async function trustedWintunLoader<T>(dllPath: string, load: () => T, rule: Pick<TrustedPathOptions, 'platform' | 'readSddl'> = {}): Promise<() => T> {
  const refusal = await assertTrustedPath(dllPath, { what: 'wintun.dll', code: true, ...rule }).then(
    () => undefined,
    (e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : e),
  )
  return () => {
    if (refusal) throw refusal
    return load()
  }
}
