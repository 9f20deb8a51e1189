// getsockopt(2) and setsockopt(2) through koffi, as <sys/socket.h> declares them, the same on macOS and Linux
// (socklen_t is uint32_t on both): the control socket's peer checks and the forwarder's socket state use them.
// Imported on first use (dynamic import), so that koffi loads only where they are needed.
import { koffi } from './koffi.js'
import { loadLibc } from './libc.js'

/** Where macOS's C library is. */
export const LIBSYSTEM = '/usr/lib/libSystem.B.dylib'

/** getsockopt(2): 0 or the errno, and the length the kernel wrote into `value`. */
export type Getsockopt = (fd: number, level: number, name: number, value: Buffer) => { errno: number; length: number }
/** setsockopt(2): 0 or the errno. */
export type Setsockopt = (fd: number, level: number, name: number, value: Buffer) => number

function library(path?: string): ReturnType<typeof koffi.load> {
  return path ? koffi.load(path) : loadLibc()
}

/** getsockopt from `path` (libSystem on macOS), or from the C library (Linux). */
export function bindGetsockopt(path?: string): Getsockopt {
  const getsockopt = library(path).func('int getsockopt(int fd, int level, int name, _Out_ void *value, _Inout_ uint32_t *value_len)')
  return (fd, level, name, value) => {
    const length = [value.length]
    if ((getsockopt(fd, level, name, value, length) as number) < 0) return { errno: koffi.errno(), length: 0 }
    return { errno: 0, length: length[0]! }
  }
}

/** setsockopt from `path` (libSystem on macOS), or from the C library (Linux). */
export function bindSetsockopt(path?: string): Setsockopt {
  const setsockopt = library(path).func('int setsockopt(int fd, int level, int name, const void *value, uint32_t value_len)')
  return (fd, level, name, value) => ((setsockopt(fd, level, name, value, value.length) as number) < 0 ? koffi.errno() : 0)
}
