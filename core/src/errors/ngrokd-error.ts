import type { NgrokdErrorCode } from './codes.js'

const BRAND = Symbol.for('ngrokd.error')

export interface NgrokdErrorOptions extends ErrorOptions {
  /** One sentence telling the user how to fix it. Printed by the CLI and `ngrokd doctor`. */
  hint?: string
}

/**
 * Base of every error ngrokd raises. Compare codes with {@link isNgrokdError}, never `instanceof`:
 * a driver may carry its own copy of core.
 */
export class NgrokdError<C extends NgrokdErrorCode = NgrokdErrorCode> extends Error {
  readonly [BRAND] = true
  override name = 'NgrokdError'
  readonly hint?: string
  constructor(
    readonly code: C,
    message: string,
    options: NgrokdErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    if (options.hint) this.hint = options.hint
  }
}

export function isNgrokdError<C extends NgrokdErrorCode>(e: unknown, code?: C): e is NgrokdError<C> {
  return (
    typeof e === 'object' &&
    e !== null &&
    (e as Record<symbol, unknown>)[BRAND] === true &&
    (code === undefined || (e as { code?: unknown }).code === code)
  )
}

/** A failed system call. `errnoName` is the symbolic name (`EEXIST`). */
export class SyscallError extends NgrokdError<'NGROKD_ERR_SYSCALL'> {
  override name = 'SyscallError'
  constructor(
    readonly syscall: string,
    readonly errno: number,
    readonly errnoName: string,
    options: NgrokdErrorOptions & { detail?: string } = {},
  ) {
    super('NGROKD_ERR_SYSCALL', `${syscall}${options.detail ? ` ${options.detail}` : ''} failed: ${errnoName} (${errno})`, options)
  }
}

/** EPERM/EACCES and friends: the hint says how to get the privilege. */
export class PermissionError extends NgrokdError<'NGROKD_ERR_PERMISSION'> {
  override name = 'PermissionError'
  constructor(message: string, options: NgrokdErrorOptions = {}) {
    super('NGROKD_ERR_PERMISSION', message, {
      hint: 'run ngrokd as root (sudo) or grant it CAP_NET_ADMIN (setcap cap_net_admin+ep $(readlink -f $(which node)))',
      ...options,
    })
  }
}

/** A human-readable one-paragraph rendering: `message (CODE)` + hint + causes. */
export function formatError(e: unknown): string {
  if (!(e instanceof Error)) return String(e)
  const parts = [isNgrokdError(e) ? `${e.message} (${e.code})` : e.message]
  if (isNgrokdError(e) && e.hint) parts.push(`  hint: ${e.hint}`)
  let cause = e.cause
  for (let depth = 0; cause instanceof Error && depth < 4; depth++, cause = cause.cause) {
    parts.push(`  cause: ${cause.message}`)
  }
  return parts.join('\n')
}
