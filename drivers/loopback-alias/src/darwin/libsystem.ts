// The only file that touches koffi. Loaded with import() on macOS only.
import koffi from 'koffi'
import { SyscallError } from '@ngrokd/core/driver'
import { errnoName, type DarwinSyscalls, type IfaddrsEntry } from './darwin-syscalls.js'
import { decodeIfaddrsNode, IFADDRS } from './structs.js'

export const LIBSYSTEM = '/usr/lib/libSystem.B.dylib'

/**
 * DarwinSyscalls over libSystem through koffi.
 *
 * `ioctl` is declared variadic, as in <sys/ioctl.h>: Apple's arm64 ABI passes variadic arguments
 * on the stack, so a non-variadic declaration would put the pointer in the wrong place.
 * `path` exists for a smoke test of these declarations against Linux libc (same prototypes and the
 * same struct ifaddrs layout on x86_64).
 */
export function loadLibSystem(path = LIBSYSTEM): DarwinSyscalls {
  const lib = koffi.load(path)
  const socket = lib.func('int socket(int domain, int type, int protocol)')
  const ioctl = lib.func('int ioctl(int fd, unsigned long request, ...)')
  const close = lib.func('int close(int fd)')
  const getifaddrs = lib.func('int getifaddrs(_Out_ void **ifap)')
  const freeifaddrs = lib.func('void freeifaddrs(void *ifp)')

  /** Copies `length` bytes at a native address into a Buffer. */
  const read = (address: bigint, length: number): Buffer => Buffer.from(koffi.view(address, length)).subarray(0, length)
  const copy = (address: bigint, length: number): Buffer => Buffer.from(read(address, length))

  /** A macOS sockaddr: sa_len bytes, sa_len being its first byte. */
  const sockaddr = (address: bigint): Buffer | null => {
    if (address === 0n) return null
    const len = read(address, 1)[0]!
    return len === 0 ? Buffer.alloc(0) : copy(address, len)
  }

  return {
    socket(domain, type, protocol) {
      const fd = socket(domain, type, protocol) as number
      if (fd < 0) {
        const errno = koffi.errno()
        throw new SyscallError('socket', errno, errnoName(errno))
      }
      return fd
    },
    ioctl(fd, request, arg) {
      return (ioctl(fd, request, 'void *', arg) as number) < 0 ? koffi.errno() : 0
    },
    close(fd) {
      close(fd)
    },
    getifaddrs() {
      const out: unknown[] = [null]
      if ((getifaddrs(out) as number) < 0) {
        const errno = koffi.errno()
        throw new SyscallError('getifaddrs', errno, errnoName(errno))
      }
      const head = toAddress(out[0])
      const entries: IfaddrsEntry[] = []
      try {
        // bounded: a corrupt list must not spin forever
        for (let at = head, n = 0; at !== 0n && n < 100_000; n++) {
          const node = decodeIfaddrsNode(copy(at, IFADDRS.size))
          entries.push({
            name: node.name === 0n ? '' : (koffi.decode(node.name, 'char', -1) as string),
            flags: node.flags,
            addr: sockaddr(node.addr),
            netmask: sockaddr(node.netmask),
          })
          at = node.next
        }
      } finally {
        if (head !== 0n) freeifaddrs(head)
      }
      return entries
    },
  }
}

function toAddress(pointer: unknown): bigint {
  if (pointer === null || pointer === undefined) return 0n
  if (typeof pointer === 'bigint') return pointer
  return koffi.address(pointer)
}
