import { isNgrokdError, PermissionError, SyscallError } from '@ngrokd/core/driver'
import { errnoName, LINUX_ERRNO } from './errno.js'

/**
 * A failed system call or netlink request as a coded error:
 * `linux-netlink: RTM_NEWADDR 10.107.0.2 on ngrokd0 failed: EEXIST (17)`.
 * EPERM/EACCES become a `PermissionError` (hint: root or CAP_NET_ADMIN) whose cause is the
 * `SyscallError`; use {@link errnoOf} to read the errno back from either.
 */
export function netlinkError(
  operation: string,
  errno: number,
  { detail, kernelMessage }: { detail?: string; kernelMessage?: string } = {},
): SyscallError | PermissionError {
  const name = errnoName(errno)
  const fullDetail = [detail, kernelMessage ? `(kernel: ${kernelMessage})` : undefined].filter(Boolean).join(' ')
  const error = new SyscallError(`linux-netlink: ${operation}`, errno, name, fullDetail ? { detail: fullDetail } : {})
  if (errno === LINUX_ERRNO.EPERM || errno === LINUX_ERRNO.EACCES) {
    return new PermissionError(`linux-netlink: ${operation}${fullDetail ? ` ${fullDetail}` : ''} not permitted: ${name} (${errno})`, {
      cause: error,
    })
  }
  return error
}

/** The errno behind an error from {@link netlinkError} (or its cause), else undefined. */
export function errnoOf(e: unknown): number | undefined {
  for (let cur = e, depth = 0; typeof cur === 'object' && cur !== null && depth < 3; cur = (cur as Error).cause, depth++) {
    if (isNgrokdError(cur, 'NGROKD_ERR_SYSCALL') && typeof (cur as SyscallError).errno === 'number') return (cur as SyscallError).errno
  }
  return undefined
}
