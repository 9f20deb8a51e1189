/**
 * Who may use the control API on Windows, enforced by the pipes' DACLs:
 *
 * - `\\.\pipe\ngrokd`: every route; `D:P(A;;GA;;;SY)(A;;GA;;;BA)`: only SYSTEM and Administrators can open it.
 * - `\\.\pipe\ngrokd-read` (only with `control.group`): the GET routes only, behind a second HTTP server that has no
 *   other route; its DACL adds the group with FILE_GENERIC_READ | FILE_GENERIC_WRITE. That is what a Node client's open
 *   asks for (libuv's CreateFileW(GENERIC_READ | GENERIC_WRITE); without FILE_APPEND_DATA libuv falls back to a
 *   read-only open and the request cannot be written). On a pipe FILE_APPEND_DATA is FILE_CREATE_PIPE_INSTANCE, so a
 *   member can create instances of the read pipe, and so answer other members' reads: never of the full pipe, which
 *   administrators use, and never with another owner.
 *
 * Who owns a pipe decides who made it, whatever its DACL says: the daemon makes Administrators the owner of both (the
 * service's SYSTEM token and an elevated administrator's both hold that group as an owner), and a client reads the
 * owner before it sends a byte (`checkPipeOwner`). A pipe any user made while no daemon ran (the name is free to all)
 * has that user as its owner, and gets nothing: not the API key, not a request.
 *
 * Why two pipes: Node creates its pipes through libuv with the default security descriptor and gives no handle, so
 * the server can neither pass a SECURITY_ATTRIBUTES nor learn who connected (GetNamedPipeClientProcessId,
 * ImpersonateNamedPipeClient need the server end's handle). What it can do is open its own pipe once, as its creator
 * (who holds WRITE_DAC), and replace the DACL with SetSecurityInfo: a named pipe keeps one security descriptor for all
 * its instances (the NPFS file control block), checked at every open. Until then the default DACL applies, which
 * already limits everyone but SYSTEM, Administrators and the creator to reading, and a reader cannot send a request.
 * libuv creates the first instance with FILE_FLAG_FIRST_PIPE_INSTANCE, so a pipe squatted before the daemon starts
 * makes listen() fail instead of being shared.
 */

import { NgrokdError } from '../errors/ngrokd-error.js'

export const PIPE_PREFIX = '\\\\.\\pipe\\'

export const FILE_READ_DATA = 0x0001 // winnt.h
export const FILE_WRITE_DATA = 0x0002 // winnt.h
export const FILE_APPEND_DATA = 0x0004 // winnt.h; on a pipe it is FILE_CREATE_PIPE_INSTANCE
export const FILE_GENERIC_READ = 0x120089 // winnt.h
export const FILE_GENERIC_WRITE = 0x120116 // winnt.h
/** What the reader group gets: what libuv's duplex client open asks for (see above). */
export const PIPE_CLIENT_RIGHTS = FILE_GENERIC_READ | FILE_GENERIC_WRITE

/** BUILTIN\Administrators (winnt.h DOMAIN_ALIAS_RID_ADMINS): the owner the daemon gives its pipes. */
export const ADMINISTRATORS_SID = 'S-1-5-32-544'
/** LocalSystem (winnt.h SECURITY_LOCAL_SYSTEM_RID): the service's own account. */
export const LOCAL_SYSTEM_SID = 'S-1-5-18'
/** How long a client waits for a free instance of a busy pipe before it gives up. */
export const PIPE_BUSY_WAIT_MS = 10_000

export interface ControlPipe {
  /** `\\.\pipe\<name>` */
  path: string
  /** The DACL applied after listen(), as SDDL. */
  sddl: string
  /** `all`: every route; `read`: the GET routes only. */
  routes: 'all' | 'read'
}

/**
 * The pipe name of `control.socket` on Windows: a `\\.\pipe\<name>` path or a bare name as given; a POSIX path (the
 * default `/run/ngrokd/ngrokd.sock`, an instance's `/run/ngrokd/ngrokd-work.sock`) by its file name without `.sock`.
 */
export function windowsPipeName(socket: string): string {
  if (socket.toLowerCase().startsWith(PIPE_PREFIX)) return socket
  return (socket.split(/[\\/]/).pop() ?? socket).replace(/\.sock$/, '') || 'ngrokd'
}

/** A string SID, `S-1-5-32-544` style (sddl.h's ConvertSidToStringSidW form). */
export function isSidString(sid: string): boolean {
  return /^S-1-(\d+|0x[0-9A-Fa-f]{12})(-\d+){1,15}$/.test(sid)
}

/** The SDDL of a control pipe: SYSTEM and Administrators full control, protected from inheritance; a reader SID may send requests. */
export function controlPipeSddl(readerSid?: string): string {
  const base = 'D:P(A;;GA;;;SY)(A;;GA;;;BA)'
  if (readerSid === undefined) return base
  if (!isSidString(readerSid)) throw new RangeError(`not a string SID: ${JSON.stringify(readerSid)}`)
  return `${base}(A;;0x${PIPE_CLIENT_RIGHTS.toString(16)};;;${readerSid})`
}

/**
 * The pipes the control server listens on, from `control.socket` (a pipe path, or a bare name) and the SID of
 * `control.group` (resolved with lookupAccountSid in windows-pipe-security-ffi.ts).
 */
export function controlPipes({ socket = 'ngrokd', readerSid }: { socket?: string; readerSid?: string }): ControlPipe[] {
  const name = socket.toLowerCase().startsWith(PIPE_PREFIX) ? socket.slice(PIPE_PREFIX.length) : socket
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/.test(name)) throw new RangeError(`not a pipe name: ${JSON.stringify(socket)}`)
  const pipes: ControlPipe[] = [{ path: `${PIPE_PREFIX}${name}`, sddl: controlPipeSddl(), routes: 'all' }]
  if (readerSid !== undefined) pipes.push({ path: `${PIPE_PREFIX}${name}-read`, sddl: controlPipeSddl(readerSid), routes: 'read' })
  return pipes
}

/** Who owns a pipe, as a client sees it before it sends a byte: a string SID, or why it could not be read. */
export type PipeOwner = { sid: string } | { unreadable: 'missing' | 'denied' | 'busy' }

/**
 * A client's check of a pipe before it sends a byte: owned by Administrators or SYSTEM, or a coded error naming the
 * owner. A pipe that is missing or refuses this user is left to the request, which reports it as before (the daemon
 * is not running; try the read pipe).
 */
export function checkPipeOwner(pipe: string, owner: PipeOwner): void {
  if ('sid' in owner) {
    if (owner.sid === ADMINISTRATORS_SID || owner.sid === LOCAL_SYSTEM_SID) return
    throw new NgrokdError('NGROKD_ERR_CONTROL', `${pipe} is owned by ${owner.sid}, not by Administrators or SYSTEM: it is not ngrokd's control pipe, and nothing was sent to it`, {
      hint: 'another program made the pipe while ngrokd was not running: find the program that holds it and stop it, then start ngrokd again',
    })
  }
  if (owner.unreadable === 'busy') {
    throw new NgrokdError('NGROKD_ERR_CONTROL', `${pipe} stayed busy for ${PIPE_BUSY_WAIT_MS / 1000} s: every instance is taken`, { hint: 'try again when the clients holding it are done' })
  }
}

/** The routes a `read` pipe serves: the GET ones. */
export function readOnlyRoutes<R extends object>(routes: R): Partial<R> {
  return Object.fromEntries(Object.entries(routes).filter(([route]) => route.startsWith('GET '))) as Partial<R>
}

/**
 * What a client tries, in order, for a request on `control.socket`: the full pipe; for a GET, then the read pipe
 * (a member of the reader group is refused the first with EPERM/EACCES; without `control.group` there is none,
 * and the first refusal is what the client reports).
 */
export function clientPipePaths(socket: string, method: 'GET' | 'POST'): string[] {
  const [full] = controlPipes({ socket: windowsPipeName(socket) })
  return method === 'GET' ? [full!.path, `${full!.path}-read`] : [full!.path]
}
