// The only file of the control socket's peer checks that touches koffi; imported on first use by
// peer-cred-darwin.ts and peer-cred-linux.ts.
import { koffi } from '../util/koffi.js'
import { loadLibc } from '../util/libc.js'
import type { Getsockopt } from './peer-cred-darwin.js'

export const LIBSYSTEM = '/usr/lib/libSystem.B.dylib'

/**
 * getsockopt(2) as <sys/socket.h> declares it, the same on macOS and Linux (socklen_t is uint32_t on both),
 * from `path` (libSystem on macOS), or from the C library (Linux).
 */
export function bindGetsockopt(path?: string): Getsockopt {
  const getsockopt = (path ? koffi.load(path) : loadLibc()).func('int getsockopt(int fd, int level, int name, _Out_ void *value, _Inout_ uint32_t *value_len)')
  return (fd, level, name, value) => {
    const length = [value.length]
    if ((getsockopt(fd, level, name, value, length) as number) < 0) return { errno: koffi.errno(), length: 0 }
    return { errno: 0, length: length[0]! }
  }
}
