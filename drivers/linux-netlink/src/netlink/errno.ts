/**
 * Linux errno numbers that matter to this driver, from <asm-generic/errno-base.h> and
 * <asm-generic/errno.h> (the values of every architecture koffi ships for; MIPS, SPARC and Alpha
 * differ and are not supported). Pure data: netlink replies carry these numbers on any host.
 */
export const LINUX_ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOSPC: 28,
  ERANGE: 34,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ENOTSOCK: 88,
  EMSGSIZE: 90,
  EPROTONOSUPPORT: 93,
  EOPNOTSUPP: 95,
  EPFNOSUPPORT: 96,
  EAFNOSUPPORT: 97,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ENETDOWN: 100,
  ENOBUFS: 105,
  ETIMEDOUT: 110,
} as const

export type LinuxErrnoName = keyof typeof LINUX_ERRNO

const NAMES = new Map<number, string>(Object.entries(LINUX_ERRNO).map(([name, value]) => [value, name]))

/** `17` → `EEXIST`; unknown numbers → `errno 123`. */
export function errnoName(errno: number): string {
  return NAMES.get(errno) ?? `errno ${errno}`
}
