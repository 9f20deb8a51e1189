/**
 * Who may use the control API on Windows, enforced by the pipes' DACLs:
 *
 * - `\\.\pipe\ngrokd`: every route; `D:P(A;;GA;;;SY)(A;;GA;;;BA)`: only SYSTEM and Administrators can open it.
 * - `\\.\pipe\ngrokd-read` (only with `control.group`): the GET routes only, behind a second HTTP server that has no
 *   other route; its DACL adds the group with read and write of data (so it can send a request) but without
 *   FILE_CREATE_PIPE_INSTANCE, so a member cannot create an instance of the pipe and take other clients' connections.
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

export const PIPE_PREFIX = '\\\\.\\pipe\\'

export const FILE_READ_DATA = 0x0001 // winnt.h
export const FILE_WRITE_DATA = 0x0002 // winnt.h
export const FILE_APPEND_DATA = 0x0004 // winnt.h; on a pipe it is FILE_CREATE_PIPE_INSTANCE
export const FILE_GENERIC_READ = 0x120089 // winnt.h
export const FILE_GENERIC_WRITE = 0x120116 // winnt.h
/** What the reader group gets: read and write of data and attributes, but not FILE_CREATE_PIPE_INSTANCE. */
export const PIPE_CLIENT_RIGHTS = (FILE_GENERIC_READ | FILE_GENERIC_WRITE) & ~FILE_APPEND_DATA

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
 * default `/run/ngrokd.sock`, an instance's `/run/ngrokd-work.sock`) by its file name without `.sock`.
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
