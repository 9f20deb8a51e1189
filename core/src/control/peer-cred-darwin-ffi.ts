// The only file of the macOS control-socket code that touches koffi; imported on first use by
// peer-cred-darwin.ts.
import { koffi } from '../util/koffi.js'
import type { Getsockopt } from './peer-cred-darwin.js'

export const LIBSYSTEM = '/usr/lib/libSystem.B.dylib'

/**
 * getsockopt(2) as <sys/socket.h> declares it (socklen_t is uint32_t on macOS). `path` exists for a
 * smoke test of the declaration against Linux libc, which has the same prototype.
 */
export function bindGetsockopt(path = LIBSYSTEM): Getsockopt {
  const getsockopt = koffi.load(path).func('int getsockopt(int fd, int level, int name, _Out_ void *value, _Inout_ uint32_t *value_len)')
  return (fd, level, name, value) => {
    const length = [value.length]
    if ((getsockopt(fd, level, name, value, length) as number) < 0) return { errno: koffi.errno(), length: 0 }
    return { errno: 0, length: length[0]! }
  }
}
