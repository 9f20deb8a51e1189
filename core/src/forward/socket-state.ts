/**
 * What Node does not say about a TCP socket, read and set through getsockopt/setsockopt (koffi), Linux and macOS:
 * - whether an 'end' was a reset: libuv reports EOF on EPOLLHUP after a short read without reading the socket's
 *   error (uv__stream_io, src/unix/stream.c), so an RST behind data comes as a clean end; the kernel keeps it as the
 *   socket's pending error (SO_ERROR: ECONNRESET, set by tcp_reset() in net/ipv4/tcp_input.c, also once our own FIN
 *   is out), which a FIN never sets;
 * - closing with an RST (SO_LINGER 0) while our own shutdown is under way, which libuv's reset refuses.
 * The calls load at this module's import on the main thread, in the background; until they are there, and where they
 * cannot be (Windows, koffi missing, a worker thread: koffi loaded in the pool's workers beside the main thread's
 * crashed the process in one test run of three, `FATAL ERROR: napi_throw` at koffi.node's registration), each
 * function says it does not know.
 */
import type net from 'node:net'
import { endianness } from 'node:os'
import { isMainThread } from 'node:worker_threads'

/**
 * SOL_SOCKET, SO_ERROR, SO_LINGER: <asm-generic/socket.h> (Linux), <sys/socket.h> (macOS; socket-state-darwin.layouts.json
 * holds what a compiler read from Apple's headers, which a test compares).
 */
export const SOCKET_OPTIONS: Partial<Record<NodeJS.Platform, { SOL_SOCKET: number; SO_ERROR: number; SO_LINGER: number }>> = {
  linux: { SOL_SOCKET: 1, SO_ERROR: 4, SO_LINGER: 13 },
  darwin: { SOL_SOCKET: 0xffff, SO_ERROR: 0x1007, SO_LINGER: 0x80 },
}

/** struct linger { int l_onoff; int l_linger; } = { 1, 0 }, in host byte order: the next close sends an RST. */
export const LINGER_RESET = Buffer.from(new Int32Array([1, 0]).buffer)

type Calls = Pick<typeof import('../util/sockopt-ffi.js'), 'bindGetsockopt' | 'bindSetsockopt'>
let bound: { getsockopt: ReturnType<Calls['bindGetsockopt']>; setsockopt: ReturnType<Calls['bindSetsockopt']>; options: NonNullable<(typeof SOCKET_OPTIONS)['linux']> } | undefined

/** Binds the calls (done once at import; awaited by tests). Resolves false where they cannot be had. */
export const socketCallsLoaded: Promise<boolean> = (async () => {
  const options = SOCKET_OPTIONS[process.platform]
  if (!options || !isMainThread) return false
  try {
    const ffi = await import('../util/sockopt-ffi.js')
    const path = process.platform === 'darwin' ? ffi.LIBSYSTEM : undefined
    bound = { getsockopt: ffi.bindGetsockopt(path), setsockopt: ffi.bindSetsockopt(path), options }
    return true
  } catch {
    return false
  }
})()

/** The socket's file descriptor (a TLS socket's is its TCP socket's); undefined once closed, or on Windows. */
function fdOf(s: net.Socket): number | undefined {
  const fd = (s as unknown as { _handle?: { fd?: number } | null })._handle?.fd
  return typeof fd === 'number' && fd >= 0 ? fd : undefined
}

/**
 * The socket's pending error, read and cleared (SO_ERROR): 0 for none, an errno (ECONNRESET after an RST); undefined
 * when it cannot be read here.
 */
export function pendingSocketError(s: net.Socket): number | undefined {
  const fd = fdOf(s)
  if (!bound || fd === undefined) return undefined
  const value = Buffer.alloc(4)
  const { errno, length } = bound.getsockopt(fd, bound.options.SOL_SOCKET, bound.options.SO_ERROR, value)
  if (errno !== 0 || length !== 4) return undefined
  return endianness() === 'LE' ? value.readInt32LE(0) : value.readInt32BE(0)
}

/**
 * Closes `s` with an RST, so that its peer sees a failure, not a clean end (Go's crypto/tls reads a bare FIN on a record
 * boundary as io.EOF): Node's `resetAndDestroy()` on a TCP socket. A TLS socket Node cannot reset, so its handle's
 * close — which lib/_tls_wrap.js forwards to the TCP handle under it (`_parent`) — is made that handle's reset
 * (uv_tcp_close_reset: SO_LINGER 0, then close; no close_notify), in any thread. Only where the reset can be had:
 * connected, and no shutdown of ours under way (ended, not yet finished) — there libuv refuses it, and Node's TCP
 * handle, marked closing all the same, would never close. There SO_LINGER 0 through koffi where it is loaded (the
 * main thread), else a plain close: our close_notify is out then anyway.
 */
export function resetSocket(s: net.Socket): void {
  if (s.destroyed) return
  try {
    s.resetAndDestroy()
  } catch {
    const wrap = (s as unknown as { _handle?: TlsHandle | null })._handle
    const tcp = wrap?._parent
    const reset = tcp?.reset?.bind(tcp)
    const resettable = !s.pending && (!s.writableEnded || s.writableFinished)
    if (wrap && reset && resettable) {
      wrap.close = (onClose) => void reset(onClose)
    } else {
      const fd = fdOf(s)
      if (bound && fd !== undefined) bound.setsockopt(fd, bound.options.SOL_SOCKET, bound.options.SO_LINGER, LINGER_RESET)
    }
    s.destroy()
  }
  if (!s.destroyed) s.destroy()
}

/** A TLS socket's handle (TLSWrap) and the TCP handle it wraps, as lib/_tls_wrap.js makes them. */
interface TlsHandle {
  close: (onClose: () => void) => void
  _parent?: { reset?: (onClose: () => void) => number }
}
