/** One entry of getifaddrs(3), with the socket addresses copied out as raw bytes. */
export interface IfaddrsEntry {
  name: string
  flags: number
  /** struct sockaddr bytes (sa_len of them), or null. */
  addr: Buffer | null
  netmask: Buffer | null
  /** ifa_dstaddr: the far end of a point-to-point interface (the broadcast address otherwise), or null. */
  dstaddr?: Buffer | null
}

/** What `getsockopt` and `sysctl` report: 0 or an errno, and the length the kernel wrote (or wants). */
export interface LengthResult {
  errno: number
  length: number
}

/** A descriptor watched for readability; `close()` stops watching (the descriptor stays open). */
export interface ReadableWatch {
  close(): void
}

/**
 * The macOS system calls ngrokd makes, as thin as libSystem's own: every argument is the bytes the
 * kernel reads (built by the pure encoders), every result is the kernel's. The real one is
 * `libsystem.ts` (koffi); tests use a fake kernel that checks every byte.
 *
 * Conventions: calls that only succeed or fail return 0 or the errno; calls that return a value
 * return it (≥ 0) or the negated errno. `socket` and `getifaddrs` throw a `SyscallError`.
 */
export interface DarwinSyscalls {
  /** socket(2): the descriptor, or throws a SyscallError. */
  socket(domain: number, type: number, protocol: number): number
  /** close(2). */
  close(fd: number): void
  /** ioctl(2) with a pointer argument: 0, or the errno. The kernel may write into `arg`. */
  ioctl(fd: number, request: number, arg: Buffer): number
  /** getifaddrs(3), copied out and freed; throws a SyscallError. */
  getifaddrs(): IfaddrsEntry[]
  /** connect(2) to the sockaddr in `address` (its whole length): 0, or the errno. */
  connect(fd: number, address: Buffer): number
  /** getsockopt(2) into `value` (its whole length is offered). */
  getsockopt(fd: number, level: number, name: number, value: Buffer): LengthResult
  /** sysctl(3) read of `mib` into `out`; with `out` null, `length` is the size the kernel needs. */
  sysctl(mib: readonly number[], out: Buffer | null): LengthResult
  /** fcntl(2) with an int argument: the result, or the negated errno. */
  fcntl(fd: number, cmd: number, arg: number): number
  /** read(2) into `into`: bytes read, or the negated errno (-EAGAIN when nothing waits on a non-blocking descriptor). */
  read(fd: number, into: Buffer): number
  /** write(2) of all of `from`: bytes written, or the negated errno (a datagram is written whole or not at all). */
  write(fd: number, from: Buffer): number
  /** Calls `onReadable` from the event loop whenever `fd` is readable, without a thread or a busy loop. */
  watchReadable(fd: number, onReadable: () => void): ReadableWatch
}

/** The macOS errno values ngrokd can meet — <sys/errno.h> (where they differ from Linux, the comment says so). */
export const DARWIN_ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  ENXIO: 6,
  EBADF: 9,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  EMFILE: 24,
  ENOTTY: 25,
  EAGAIN: 35, // Linux 11; EWOULDBLOCK is the same value
  EDESTADDRREQ: 39, // Linux 89
  EMSGSIZE: 40, // Linux 90
  EPROTOTYPE: 41, // Linux 91
  ENOPROTOOPT: 42, // Linux 92
  EPROTONOSUPPORT: 43, // Linux 93
  EAFNOSUPPORT: 47, // Linux 97
  EADDRINUSE: 48, // Linux 98
  EADDRNOTAVAIL: 49, // Linux 99
  ENOBUFS: 55, // Linux 105
  EISCONN: 56, // Linux 106
  ENOTCONN: 57, // Linux 107
  ENOSYS: 78, // Linux 38
  EOPNOTSUPP: 102, // Linux 95
} as const

export const { EPERM, ENOENT, EACCES, EEXIST, EINVAL, EAGAIN, EBUSY, ENOMEM, EADDRNOTAVAIL, EINTR } = DARWIN_ERRNO

const NAMES: ReadonlyMap<number, string> = new Map(Object.entries(DARWIN_ERRNO).map(([name, value]) => [value, name]))

/** `EEXIST` for 17; `errno 1234` for a value not in the table. */
export function errnoName(errno: number): string {
  return NAMES.get(errno) ?? `errno ${errno}`
}
