import type { Socket } from 'node:net'

/**
 * What a peer of the control socket may do, decided once per connection before a byte is read: every route
 * (`all`), the GET routes only (`read`), or nothing (false: the connection is closed).
 */
export type PeerAccess = 'all' | 'read' | false

export type PeerCheck = (socket: Socket) => PeerAccess

/**
 * The rule on every OS: root and the daemon's own user may change things; anyone else let in (a member of
 * `control.group`) may only read.
 */
export function accessOf(uid: number, ownUid: number | undefined = process.getuid?.()): 'all' | 'read' {
  return uid === 0 || uid === ownUid ? 'all' : 'read'
}

/** The descriptor of an accepted Unix-socket connection: net.Socket keeps it on its libuv handle. */
export function socketFd(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd
  return fd === undefined || fd < 0 ? undefined : fd
}
