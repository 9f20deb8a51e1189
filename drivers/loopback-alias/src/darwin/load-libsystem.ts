import { NgrokdError } from '@ngrokd/core/driver'
import type { DarwinSyscalls } from './darwin-syscalls.js'

/**
 * Imports libsystem.ts (and so koffi) and binds libSystem. Fails with a coded error when koffi's
 * prebuilt binary is missing (an install with `--omit=optional`) or libSystem cannot be bound.
 * `driver` names the caller in the message.
 */
export async function loadLibSystem(driver: string): Promise<DarwinSyscalls> {
  try {
    const libsystem = await import('./libsystem.js')
    return libsystem.bindLibSystem()
  } catch (cause) {
    throw new NgrokdError('NGROKD_ERR_SYSCALL', `${driver}: cannot load libSystem through koffi: ${(cause as Error).message}`, {
      cause,
      hint: 'reinstall ngrokd without --omit=optional (koffi ships its binary as an optional dependency)',
    })
  }
}
