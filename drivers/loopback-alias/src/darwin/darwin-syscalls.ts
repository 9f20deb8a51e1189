/** One entry of getifaddrs(3), with the socket addresses copied out as raw bytes. */
export interface IfaddrsEntry {
  name: string
  flags: number
  /** struct sockaddr bytes (sa_len of them), or null. */
  addr: Buffer | null
  netmask: Buffer | null
}

/**
 * The few macOS system calls the lo0 alias code makes. The real one goes through koffi to
 * libSystem (`libsystem.ts`); tests pass a fake that checks the exact bytes.
 */
export interface DarwinSyscalls {
  /** socket(2): the descriptor, or throws a SyscallError. */
  socket(domain: number, type: number, protocol: number): number
  /** ioctl(2) with a pointer argument: 0, or the errno (the caller words the error). */
  ioctl(fd: number, request: number, arg: Buffer): number
  close(fd: number): void
  /** getifaddrs(3), copied out and freed; throws a SyscallError. */
  getifaddrs(): IfaddrsEntry[]
}

/** Symbolic names of the macOS errno values this driver can meet — <sys/errno.h>. */
export const DARWIN_ERRNO: Readonly<Record<number, string>> = {
  1: 'EPERM',
  6: 'ENXIO',
  9: 'EBADF',
  12: 'ENOMEM',
  13: 'EACCES',
  14: 'EFAULT',
  17: 'EEXIST',
  22: 'EINVAL',
  24: 'EMFILE',
  25: 'ENOTTY',
  47: 'EAFNOSUPPORT',
  48: 'EADDRINUSE',
  49: 'EADDRNOTAVAIL',
  102: 'EOPNOTSUPP',
}

export const EPERM = 1
export const EACCES = 13
export const EEXIST = 17
export const EADDRNOTAVAIL = 49

export function errnoName(errno: number): string {
  return DARWIN_ERRNO[errno] ?? `errno ${errno}`
}
