/**
 * Who is on the other end of a connection to the control socket, on Linux: getsockopt(fd, SOL_SOCKET,
 * SO_PEERCRED) fills a struct ucred. The decoder is pure Buffer code; the call goes through util/sockopt-ffi.ts
 * (koffi), loaded on first use. The numbers are checked against a C compiler's reading of the headers
 * (peer-cred-linux.test.ts).
 */
import { NgrokdError, formatError } from '../errors/ngrokd-error.js'
import { accessOf, socketFd, type PeerCheck } from './peer-access.js'
import type { Getsockopt } from './peer-cred-darwin.js'

export const SOL_SOCKET = 1 // <asm-generic/socket.h>
export const SO_PEERCRED = 17 // <asm-generic/socket.h> (x86-64, arm64; powerpc, mips and sparc number it otherwise)
/** struct ucred — <bits/socket.h> (glibc; <linux/socket.h>'s twin): pid_t pid; uid_t uid; gid_t gid. */
export const UCRED = { pid: 0, uid: 4, gid: 8, size: 12 } as const

export interface LinuxPeerCredentials {
  pid: number
  uid: number
  gid: number
}

/** Decodes the struct ucred a SO_PEERCRED getsockopt wrote (`length` bytes of `b`, in the machine's byte order). */
export function decodeUcred(b: Buffer, length: number): LinuxPeerCredentials {
  if (length !== UCRED.size || b.length < UCRED.size) throw controlError(`the kernel wrote ${length} bytes of struct ucred, not ${UCRED.size}`)
  const le = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1
  const u32 = (at: number) => (le ? b.readUInt32LE(at) : b.readUInt32BE(at))
  return { pid: le ? b.readInt32LE(UCRED.pid) : b.readInt32BE(UCRED.pid), uid: u32(UCRED.uid), gid: u32(UCRED.gid) }
}

/**
 * The control socket's rule on Linux, checked on every connection before a byte is read. The socket file's
 * mode (0600, or 0660 with `control.group`) already let in only root, the daemon's user and the group; the
 * peer's uid then decides what it may do (see {@link accessOf}): a member of control.group reads, it never
 * changes the daemon. A peer that cannot be identified is refused; `refused` hears why (for the log).
 */
export function linuxPeerCheck(getsockopt: Getsockopt, refused: (why: string) => void, ownUid?: number): PeerCheck {
  const ucred = Buffer.alloc(UCRED.size)
  return (socket) => {
    const fd = socketFd(socket)
    if (fd === undefined) {
      refused('the connection has no descriptor to ask the kernel about')
      return false
    }
    try {
      const { errno, length } = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, ucred)
      if (errno !== 0) throw controlError(`getsockopt(SO_PEERCRED) failed: errno ${errno}`)
      return accessOf(decodeUcred(ucred, length).uid, ownUid)
    } catch (e) {
      refused(formatError(e))
      return false
    }
  }
}

/** getsockopt from the C library through koffi (imported on first use). */
export async function loadLinuxGetsockopt(): Promise<Getsockopt> {
  try {
    return (await import('../util/sockopt-ffi.js')).bindGetsockopt()
  } catch (cause) {
    throw new NgrokdError('NGROKD_ERR_CONTROL', `control socket: cannot load the C library's getsockopt through koffi: ${(cause as Error).message}`, {
      cause,
      hint: 'reinstall ngrokd without --omit=optional (koffi ships its binary as an optional dependency)',
    })
  }
}

function controlError(what: string): NgrokdError {
  return new NgrokdError('NGROKD_ERR_CONTROL', `control socket: cannot tell who connected: ${what}`, { hint: 'the connection is refused; if this repeats, report it with the kernel version' })
}
