// The only file of ngrokd's macOS code that touches koffi (lo0 aliases and darwin-utun both call
// through it). Loaded with import() on macOS only; see load-libsystem.ts.
import { createRequire } from 'node:module'
import type { LibraryHandle, node as koffiNode } from 'koffi'
import { SyscallError } from '@ngrokd/core/driver'
import { DARWIN_ERRNO, errnoName, type DarwinSyscalls, type IfaddrsEntry, type ReadableWatch } from './darwin-syscalls.js'
import { decodeIfaddrsNode, IFADDRS } from './structs.js'

// koffi by its CommonJS entry, as core loads it (core's util/commonjs.ts says why): one copy of its code in the process
const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi')

export const LIBSYSTEM = '/usr/lib/libSystem.B.dylib'

type KoffiFunction = ReturnType<LibraryHandle['func']>

/**
 * The C prototypes, as in the macOS headers (socklen_t is uint32_t, ssize_t intptr_t).
 *
 * `ioctl` and `fcntl` are declared variadic, as in <sys/ioctl.h> and <fcntl.h>: Apple's arm64 ABI
 * passes variadic arguments on the stack, so a non-variadic declaration would put the argument in
 * the wrong place.
 */
export const PROTOTYPES = {
  socket: 'int socket(int domain, int type, int protocol)',
  close: 'int close(int fd)',
  ioctl: 'int ioctl(int fd, unsigned long request, ...)',
  getifaddrs: 'int getifaddrs(_Out_ void **ifap)',
  freeifaddrs: 'void freeifaddrs(void *ifp)',
  connect: 'int connect(int fd, const void *address, uint32_t address_len)',
  getsockopt: 'int getsockopt(int fd, int level, int name, _Out_ void *value, _Inout_ uint32_t *value_len)',
  sysctl: 'int sysctl(const int *name, uint32_t namelen, _Out_ void *oldp, _Inout_ size_t *oldlenp, const void *newp, size_t newlen)',
  fcntl: 'int fcntl(int fd, int cmd, ...)',
  read: 'intptr_t read(int fd, _Out_ void *buf, size_t nbyte)',
  write: 'intptr_t write(int fd, const void *buf, size_t nbyte)',
} as const

export interface LoadLibSystemOptions {
  /**
   * Functions to leave unbound; calling one fails with ENOSYS. Only for the smoke test that binds
   * these declarations against Linux libc, which has no sysctl(3).
   */
  without?: ReadonlyArray<keyof typeof PROTOTYPES>
}

/**
 * DarwinSyscalls over libSystem through koffi. `path` exists for a smoke test of these declarations
 * against Linux libc (same prototypes and, on 64-bit Linux, the same struct ifaddrs layout).
 */
export function bindLibSystem(path = LIBSYSTEM, { without = [] }: LoadLibSystemOptions = {}): DarwinSyscalls {
  const lib = koffi.load(path)
  const bind = (name: keyof typeof PROTOTYPES): KoffiFunction => {
    if (!without.includes(name)) return lib.func(PROTOTYPES[name])
    return (() => {
      throw new SyscallError(name, DARWIN_ERRNO.ENOSYS, 'ENOSYS', { detail: '(not bound)' })
    }) as unknown as KoffiFunction
  }
  const c = {
    socket: bind('socket'),
    close: bind('close'),
    ioctl: bind('ioctl'),
    getifaddrs: bind('getifaddrs'),
    freeifaddrs: bind('freeifaddrs'),
    connect: bind('connect'),
    getsockopt: bind('getsockopt'),
    sysctl: bind('sysctl'),
    fcntl: bind('fcntl'),
    read: bind('read'),
    write: bind('write'),
  }

  /** Copies `length` bytes at a native address into a Buffer. */
  const copy = (address: bigint, length: number): Buffer => Buffer.from(Buffer.from(koffi.view(address, length)).subarray(0, length))

  /** A macOS sockaddr: sa_len bytes, sa_len being its first byte. */
  const sockaddr = (address: bigint): Buffer | null => {
    if (address === 0n) return null
    const len = copy(address, 1)[0]!
    return len === 0 ? Buffer.alloc(0) : copy(address, len)
  }

  return {
    socket(domain, type, protocol) {
      const fd = c.socket(domain, type, protocol) as number
      if (fd < 0) {
        const errno = koffi.errno()
        throw new SyscallError('socket', errno, errnoName(errno))
      }
      return fd
    },
    close(fd) {
      c.close(fd)
    },
    ioctl(fd, request, arg) {
      return (c.ioctl(fd, request, 'void *', arg) as number) < 0 ? koffi.errno() : 0
    },
    getifaddrs() {
      const out: unknown[] = [null]
      if ((c.getifaddrs(out) as number) < 0) {
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
            dstaddr: sockaddr(node.dstaddr),
          })
          at = node.next
        }
      } finally {
        if (head !== 0n) c.freeifaddrs(head)
      }
      return entries
    },
    connect(fd, address) {
      return (c.connect(fd, address, address.length) as number) < 0 ? koffi.errno() : 0
    },
    getsockopt(fd, level, name, value) {
      const length = [value.length]
      if ((c.getsockopt(fd, level, name, value, length) as number) < 0) return { errno: koffi.errno(), length: 0 }
      return { errno: 0, length: length[0]! }
    },
    sysctl(mib, out) {
      const length = [out?.length ?? 0]
      if ((c.sysctl(Int32Array.from(mib), mib.length, out, length, null, 0) as number) < 0) return { errno: koffi.errno(), length: Number(length[0]) }
      return { errno: 0, length: Number(length[0]) }
    },
    fcntl(fd, cmd, arg) {
      const r = c.fcntl(fd, cmd, 'int', arg) as number
      return r < 0 ? -koffi.errno() : r
    },
    read(fd, into) {
      const n = Number(c.read(fd, into, into.length))
      return n < 0 ? -koffi.errno() : n
    },
    write(fd, from) {
      const n = Number(c.write(fd, from, from.length))
      return n < 0 ? -koffi.errno() : n
    },
    watchReadable(fd, onReadable) {
      return watchReadable(fd, onReadable)
    },
  }
}

/**
 * A libuv poll handle on `fd` (kqueue on macOS: no thread, no busy loop). Like an open socket, it
 * keeps the process alive until closed. `koffi.node.poll` is undocumented: koffi 3.3.4 calls back with
 * (status, events) although its index.d.ts says (events), so both are accepted; a poll error also
 * counts as readable, and the read that follows reports it.
 */
function watchReadable(fd: number, onReadable: () => void): ReadableWatch {
  if (typeof koffi.node?.poll !== 'function') throw new SyscallError('koffi.node.poll', DARWIN_ERRNO.ENOSYS, 'ENOSYS', { detail: `(koffi ${koffi.version} has none: ngrokd needs koffi 3.3 or later)` })
  const onPoll = (a: unknown, b?: unknown) => {
    const status = typeof a === 'number' ? a : 0
    const events = (typeof a === 'object' ? a : b) as { readable?: boolean; disconnect?: boolean } | undefined
    if (status < 0 || events?.readable || events?.disconnect) onReadable()
  }
  const handle = koffi.node.poll(fd, { readable: true }, onPoll as (ev: koffiNode.PollEvents) => void)
  let open = true
  return {
    close() {
      if (!open) return
      open = false
      handle.stop()
      handle.close()
    },
  }
}

function toAddress(pointer: unknown): bigint {
  if (pointer === null || pointer === undefined) return 0n
  if (typeof pointer === 'bigint') return pointer
  return koffi.address(pointer)
}
