/**
 * The only file of the worker pool that touches koffi: duplicating an accepted socket's fd for the
 * hand-off to a worker, and closing an fd that was never handed off with RST. Imported lazily (dynamic
 * import) by the pool, so that koffi is loaded only when the pool is used. Linux only.
 */
import { koffi } from '../../util/koffi.js'
import { NgrokdError } from '../../errors/ngrokd-error.js'
import { loadLibc } from '../../util/libc.js'
import { bindSetsockopt } from '../../util/sockopt-ffi.js'
import { LINGER_RESET } from '../socket-state.js'

const F_DUPFD_CLOEXEC = 1030 // <linux/fcntl.h>: F_LINUX_SPECIFIC_BASE (1024) + 6
const SOL_SOCKET = 1 // <asm-generic/socket.h>
const SO_LINGER = 13 // <asm-generic/socket.h>

const libc = loadLibc()
// fcntl is variadic: the third argument is passed with its type at each call
const fcntl = libc.func('int fcntl(int fd, int cmd, ...)') as (fd: number, cmd: number, ...args: unknown[]) => number
const setsockopt = bindSetsockopt()
const close = libc.func('int close(int fd)') as (fd: number) => number

/**
 * A second descriptor for the socket behind `fd`, close-on-exec (so a child process never inherits a
 * forwarded connection). The socket lives on until every descriptor of it is closed.
 */
export function dupSocketFd(fd: number): number {
  const copy = fcntl(fd, F_DUPFD_CLOEXEC, 'int', 0)
  if (copy < 0) {
    const errno = koffi.errno()
    throw new NgrokdError('NGROKD_ERR_SYSCALL', `worker pool: fcntl(F_DUPFD_CLOEXEC) on an accepted socket failed: errno ${errno}`, {
      hint: errno === 24 ? 'too many open files: raise the limit (ulimit -n, LimitNOFILE=) or lower forwarder.max_connections' : undefined,
    })
  }
  return copy
}

/** Closes `fd` with RST (SO_LINGER 0): the peer sees a reset, not a clean end. Errors are ignored. */
export function resetAndCloseFd(fd: number): void {
  setsockopt(fd, SOL_SOCKET, SO_LINGER, LINGER_RESET)
  close(fd)
}
