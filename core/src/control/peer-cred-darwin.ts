/**
 * Who is on the other end of a connection to the control socket, on macOS: getsockopt(fd,
 * SOL_LOCAL, LOCAL_PEERCRED) fills a struct xucred — <sys/un.h>, <sys/ucred.h>. The decoder is pure
 * Buffer code (testable on any OS); the call goes through util/sockopt-ffi.ts (koffi), loaded
 * on first use. Sizes and offsets are checked against a compiler's reading of the headers
 * (peer-cred-darwin.layouts.json, made by drivers/darwin-utun/scripts/probe-layouts.sh).
 */
import { accessOf, socketFd, type PeerCheck } from './peer-access.js'
import { NgrokdError, formatError } from '../errors/ngrokd-error.js'
import type { Getsockopt } from '../util/sockopt-ffi.js'

export const SOL_LOCAL = 0 // <sys/un.h>: options of the local (AF_UNIX) domain
export const LOCAL_PEERCRED = 1 // <sys/un.h>: "retrieve peer credentials"
export const XUCRED_VERSION = 0 // <sys/ucred.h>
export const NGROUPS = 16 // <sys/param.h>: NGROUPS_MAX of <sys/syslimits.h>
/** struct xucred — <sys/ucred.h>: u_int cr_version; uid_t cr_uid; short cr_ngroups; gid_t cr_groups[NGROUPS] (2 bytes of padding before it). */
export const XUCRED = { version: 0, uid: 4, ngroups: 8, groups: 12, size: 76 } as const

export interface PeerCredentials {
  /** Effective user id of the peer. */
  uid: number
  /** Its effective group id: cr_groups[0] (`#define cr_gid cr_groups[0]`). */
  gid: number
  /** Every group it is in, the effective one first (at most NGROUPS are reported). */
  groups: number[]
}

export type { Getsockopt }

/** The few errno values getsockopt(LOCAL_PEERCRED) can answer — <sys/errno.h> (macOS; compared with the layouts file). */
export const ERRNO_NAMES: Readonly<Record<number, string>> = { 9: 'EBADF', 14: 'EFAULT', 22: 'EINVAL', 38: 'ENOTSOCK', 42: 'ENOPROTOOPT', 57: 'ENOTCONN' }

/** Decodes the struct xucred a LOCAL_PEERCRED getsockopt wrote (`length` bytes of `b`). */
export function decodeXucred(b: Buffer, length: number): PeerCredentials {
  if (length !== XUCRED.size || b.length < XUCRED.size) throw controlError(`the kernel wrote ${length} bytes of struct xucred, not ${XUCRED.size}`)
  const version = b.readUInt32LE(XUCRED.version) // both macOS architectures are little-endian
  if (version !== XUCRED_VERSION) throw controlError(`struct xucred version ${version}, not ${XUCRED_VERSION}`)
  const ngroups = b.readInt16LE(XUCRED.ngroups)
  if (ngroups < 1 || ngroups > NGROUPS) throw controlError(`struct xucred has ${ngroups} groups (1 to ${NGROUPS} expected)`)
  const groups: number[] = []
  for (let i = 0; i < ngroups; i++) groups.push(b.readUInt32LE(XUCRED.groups + 4 * i))
  return { uid: b.readUInt32LE(XUCRED.uid), gid: groups[0]!, groups }
}

/**
 * The credentials of the peer of the connected AF_UNIX socket `fd`.
 *
 * ```ts
 * const getsockopt = await loadDarwinGetsockopt()
 * const { uid, groups } = readPeerCredDarwin(fd, getsockopt)
 * ```
 */
export function readPeerCredDarwin(fd: number, getsockopt: Getsockopt): PeerCredentials {
  const b = Buffer.alloc(XUCRED.size)
  const { errno, length } = getsockopt(fd, SOL_LOCAL, LOCAL_PEERCRED, b)
  if (errno !== 0) throw controlError(`getsockopt(LOCAL_PEERCRED) failed: ${ERRNO_NAMES[errno] ?? 'errno'} (${errno})`)
  return decodeXucred(b, length)
}

/**
 * The control socket's rule on macOS, checked on every connection before a byte is read: the peer
 * must be root (or the daemon's own user), or in `allowedGid` (control.group) when one is configured —
 * the same people the socket file's mode (0600, 0660 with the group) lets in; a member of the group may
 * only read (see {@link accessOf}). A peer that cannot be identified is refused. `refused` hears why (for the log).
 */
export function darwinPeerCheck(getsockopt: Getsockopt, allowedGid: number | undefined, refused: (why: string) => void, ownUid?: number): PeerCheck {
  return (socket) => {
    const fd = socketFd(socket)
    if (fd === undefined) {
      refused('the connection has no descriptor to ask the kernel about')
      return false
    }
    let peer: PeerCredentials
    try {
      peer = readPeerCredDarwin(fd, getsockopt)
    } catch (e) {
      refused(formatError(e))
      return false
    }
    const access = accessOf(peer.uid, ownUid)
    if (access === 'all' || (allowedGid !== undefined && peer.groups.includes(allowedGid))) return access
    refused(`uid ${peer.uid} (groups ${peer.groups.join(',')}) is neither root nor in control.group${allowedGid === undefined ? ' (none configured)' : ` (gid ${allowedGid})`}`)
    return false
  }
}

/** getsockopt from libSystem through koffi (imported on first use, so this module loads on every OS). */
export async function loadDarwinGetsockopt(): Promise<Getsockopt> {
  try {
    const ffi = await import('../util/sockopt-ffi.js')
    return ffi.bindGetsockopt(ffi.LIBSYSTEM)
  } catch (cause) {
    throw new NgrokdError('NGROKD_ERR_CONTROL', `control socket: cannot load libSystem through koffi: ${(cause as Error).message}`, {
      cause,
      hint: 'reinstall ngrokd without --omit=optional (koffi ships its binary as an optional dependency)',
    })
  }
}

function controlError(what: string): NgrokdError {
  return new NgrokdError('NGROKD_ERR_CONTROL', `control socket: cannot tell who connected: ${what}`, { hint: 'the connection is refused; if this repeats, report it with the macOS version' })
}
