import type net from 'node:net'
import { getSystemErrorName } from 'node:util'
import type { Logger } from '../contracts/logger.js'
import { performance } from 'node:perf_hooks'
import { createHostRewriter, type HostRewriter } from './http-host-rewriter.js'
import { pump, pumpPlaintext } from './pump.js'
import { pendingSocketError, resetSocket } from './socket-state.js'
import type { DialResult, Dialer } from './ingress-dialer.js'

export interface CarryOptions {
  /** The accepted local connection, paused (`pauseOnConnect`), `allowHalfOpen: true`. */
  client: net.Socket
  dialer: Dialer
  /** The endpoint: bare hostname and port for the ConnRequest. */
  hostname: string
  port: number
  /** Close the connection after this many ms without a byte either way. 0 = never. */
  idleTimeoutMs: number
  /**
   * Until the first byte passes either way (the client's request, or a server-first protocol's
   * greeting), the connection is closed after this many ms instead. 0 or unset = the idle timeout only.
   */
  firstByteTimeoutMs?: number
  /** Network mode, `http` endpoints: the Host header of every request is rewritten to this ({@link createHostRewriter}). */
  rewriteHost?: string
  /** For the host rewriter's notes (debug, and its head-size cap at warn). */
  logger?: Logger
  /** When the connection was accepted, `performance.now()` time base of this thread; default now. */
  acceptedAt?: number
  /** Called once the ConnResponse accepted the connection, with the ms since `acceptedAt`. */
  onHandshake?: (ms: number) => void
}

/** Which side an error came from: the dial (refused, TLS, timeout...), the local client, or the ingress mid-stream. */
export type CarryErrorSide = 'dial' | 'client' | 'ingress'

export interface CarryOutcome {
  /** Bytes read from / written to the local client. */
  bytesIn: number
  bytesOut: number
  /** Accept → ConnResponse, when the dial succeeded. */
  handshakeMs?: number
  /** The first error, unless the connection was cut on purpose (`cut()`, idle timeout). */
  error?: unknown
  side?: CarryErrorSide
}

/**
 * Carries one local connection to the binding ingress and back: the one copy of the hot path, used by the
 * in-thread forwarder on the main thread and by the worker pool inside its workers.
 *
 * Rules:
 * - The client is read while the ingress is dialled, into its socket's own buffer (at most its high-water mark, then
 *   TCP flow control holds the rest), and passed on once the ConnResponse came: a client that resets meanwhile aborts
 *   the dial at once; its end (FIN) waits in the buffer, a half-close, not a leave. A reset is seen later, when the dial
 *   is over, where the socket is not read then: behind a full buffer, or told as an end after bytes (`resetUnderEnd`).
 * - The bytes that came with the ConnResponse are written first, then both directions are pumped ({@link pump}) with
 *   backpressure (a slow reader throttles the other side through TCP flow control) and half-close (one side's end ends
 *   the other side's write half; the other direction keeps flowing until it ends too).
 * - A failed dial and an ingress that breaks off mid-stream **reset** the client (RST, not FIN): it sees
 *   "connection reset" instead of an empty answer it could take for a complete one. That includes an ingress
 *   reset that Node reports as a plain 'end' ({@link resetUnderEnd}), counted as `ECONNRESET` on the ingress side.
 *   The other way too: a client that resets mid-stream resets the ingress connection (not close_notify and a FIN),
 *   so that a cut-off upload is never taken for a whole one.
 * - `done` resolves exactly once, after both sockets have closed; it never rejects.
 *
 * ```ts
 * const carried = new CarriedConnection({ client, dialer, hostname: 'api.prod', port: 80, idleTimeoutMs: 0 })
 * const { bytesIn, bytesOut, error } = await carried.done
 * ```
 */
export class CarriedConnection {
  readonly done: Promise<CarryOutcome>
  private readonly client: net.Socket
  /** Aborts the dial; dropped once the dial is over, so that an open connection does not keep it. */
  private dialAbort?: AbortController = new AbortController()
  private up?: net.Socket
  private dialing = true
  private clientClosed = false
  private upClosed = false
  private settled = false
  private error?: unknown
  private side?: CarryErrorSide
  private handshakeMs?: number
  /** The Host rewriter between client and ingress, client → ingress direction (it reads the answers to Upgrades). */
  private readonly transform?: HostRewriter
  private resolve!: (outcome: CarryOutcome) => void

  constructor(private readonly options: CarryOptions) {
    this.client = options.client
    this.done = new Promise((resolve) => (this.resolve = resolve))
    const acceptedAt = options.acceptedAt ?? performance.now()
    const { client } = this
    client.on('error', (err: Error) => this.fail(err, 'client'))
    client.once('close', () => {
      this.clientClosed = true
      if (this.dialing) this.dialAbort?.abort()
      else if (this.up && !cleanlyDone(client)) resetSocket(this.up)
      this.maybeFinish()
    })
    const { hostname, port } = options
    if (options.rewriteHost !== undefined) {
      try {
        this.transform = createHostRewriter(options.rewriteHost, { logger: options.logger })
      } catch (err) {
        this.dialing = false
        this.error = err
        this.side = 'dial'
        resetSocket(client)
        return
      }
      this.transform.on('error', (err: Error) => this.fail(err, 'client'))
    }
    options.dialer.dial({ hostname, port, signal: this.dialAbort!.signal }).then(
      (result) => {
        this.dialing = false
        this.dialAbort = undefined
        if (client.destroyed) {
          result.socket.destroy()
          this.maybeFinish()
          return
        }
        this.handshakeMs = performance.now() - acceptedAt
        options.onHandshake?.(this.handshakeMs)
        this.wire(result)
      },
      (err: unknown) => {
        this.dialing = false
        const aborted = this.dialAbort?.signal.aborted === true
        this.dialAbort = undefined
        if (!aborted && this.error === undefined) {
          this.error = err
          this.side = 'dial'
        }
        resetSocket(client)
        this.maybeFinish()
      },
    )
    // start reading (a paused socket's handle is not read, so its reset would wait for the dial to end)
    client.read(0)
  }

  /** The ingress socket, once the dial succeeded. */
  get upstream(): net.Socket | undefined {
    return this.up
  }

  /** Bytes held in user space by this connection (socket read and write buffers, both sides). */
  bufferedBytes(): number {
    let n = this.client.writableLength + this.client.readableLength
    if (this.up) n += this.up.writableLength + this.up.readableLength
    const t = this.transform
    if (t) n += t.writableLength + t.readableLength
    return n
  }

  /**
   * Cuts the connection now: a reset both ways, so that neither the client nor the ingress takes what was cut off for a
   * whole upload or answer (ngrok's Go ingress reads a FIN without close_notify as a clean end). `done` still resolves
   * once both sockets closed.
   */
  cut(): void {
    this.dialAbort?.abort()
    if (this.up) resetSocket(this.up)
    resetSocket(this.client)
  }

  private wire({ socket: up, early, reads }: DialResult): void {
    const { client } = this
    this.up = up
    up.on('error', (err: Error) => this.fail(err, 'ingress'))
    up.once('close', () => {
      this.upClosed = true
      if (!cleanlyDone(up)) resetSocket(client)
      this.maybeFinish()
    })
    if (early.length > 0) client.write(early)
    // the timer restarts on every read and write of the client socket, so it measures both directions
    const idle = this.options.idleTimeoutMs
    const firstByte = this.options.firstByteTimeoutMs ?? 0
    // a connection timed out is cut, as cut() does: a reset both ways, never a clean end
    const onTimeout = (): void => {
      resetSocket(up)
      resetSocket(client)
    }
    let begun: (() => void) | undefined
    if (firstByte > 0 && early.length === 0) {
      client.setTimeout(firstByte, onTimeout)
      const onBegun = (): void => {
        begun = undefined
        client.off('data', onBegun)
        if (!reads) up.off('data', onBegun)
        client.setTimeout(idle) // 0 turns the timer off
      }
      begun = onBegun
      client.once('data', onBegun)
      if (!reads) up.once('data', onBegun)
    } else if (idle > 0) client.setTimeout(idle, onTimeout)
    // pump() pauses the source while the destination holds too much (backpressure) and ends the
    // destination's write half when the source ends (half-close; allowHalfOpen on both).
    // each side's end reaches the other as a FIN only when it was one: a reset told as an end resets the other side
    const endedCleanly = (s: net.Socket, side: 'client' | 'ingress') => (): boolean => {
      const reset = resetUnderEnd(s, side === 'client' ? 'the client' : 'the ingress')
      if (reset === undefined) return true
      this.fail(reset, side)
      return false
    }
    const t = this.transform
    if (t) {
      pump(client, t, endedCleanly(client, 'client'))
      pump(t, up)
    } else pump(client, up, endedCleanly(client, 'client'))
    const upEndedCleanly = endedCleanly(up, 'ingress')
    if (reads) pumpPlaintext(reads, up, client, t ? (chunk) => (begun?.(), t.observeResponse(chunk)) : () => begun?.(), upEndedCleanly)
    else {
      if (t) up.on('data', (chunk: Buffer) => t.observeResponse(chunk))
      pump(up, client, upEndedCleanly)
    }
  }

  private fail(err: Error, side: 'client' | 'ingress'): void {
    if (this.error === undefined) {
      this.error = err
      this.side = side
    }
    this.dialAbort?.abort()
    this.transform?.destroy()
    if (side === 'ingress') {
      this.up?.destroy()
      resetSocket(this.client)
    } else {
      // the ingress must not take a client's failure for a complete request: it sees a reset, not close_notify and a FIN
      if (this.up) resetSocket(this.up)
      this.client.destroy()
    }
  }

  private maybeFinish(): void {
    if (this.settled || this.dialing || !this.clientClosed) return
    if (this.up && !this.upClosed) return
    this.settled = true
    this.transform?.destroy()
    this.resolve({
      bytesIn: this.client.bytesRead,
      bytesOut: this.client.bytesWritten,
      handshakeMs: this.handshakeMs,
      error: this.error,
      side: this.side,
    })
  }
}

/**
 * The reset behind an 'end' of `s` (`who`: "the ingress", "the client"), if it was one. libuv reports EOF on EPOLLHUP
 * after a short read without reading the socket's error, and a TLSSocket passes that on as 'end' (no close_notify
 * either, but Node does not say whether one came): an RST mid-stream comes as a clean end, and no ECONNRESET follows.
 * The kernel keeps it as the socket's pending error ({@link pendingSocketError}), also after our own FIN. Where that
 * cannot be read: a FIN leaves the socket in CLOSE_WAIT, which has a peer, an RST in CLOSE, which has none
 * (getpeername → ENOTCONN, inet_getname() in net/ipv4/af_inet.c) — which holds only while our own FIN is not out
 * (the peer's FIN then takes the socket through TIME_WAIT to CLOSE as well). One syscall, once per connection. [ran] Linux.
 */
export function resetUnderEnd(s: net.Socket, who = 'the ingress'): Error | undefined {
  const pending = pendingSocketError(s)
  let why: string
  if (pending !== undefined) {
    if (pending === 0) return undefined
    why = `its end came with the socket error ${getSystemErrorName(-pending)}`
  } else {
    if (s.writableFinished) return undefined
    const handle = (s as unknown as { _handle?: { getpeername?: (out: object) => number } | null })._handle
    const errno = handle?.getpeername?.({}) ?? 0
    if (errno === 0) return undefined
    why = `its end came without a peer: getpeername ${getSystemErrorName(errno)}`
  }
  return Object.assign(new Error(`${who} reset the connection mid-stream (${why})`), { code: 'ECONNRESET', syscall: 'read' })
}

/** Both halves shut down in order: nothing was cut off. */
function cleanlyDone(s: net.Socket): boolean {
  return s.readableEnded && s.writableFinished
}
