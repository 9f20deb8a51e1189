import type net from 'node:net'
import type tls from 'node:tls'
import type { Logger } from '../contracts/logger.js'
import type { PlaintextReads } from './plaintext-reads.js'

/** A connected and handshaken TLS connection to the binding ingress that has not carried a ConnRequest. */
export interface IngressConnection {
  socket: tls.TLSSocket
  /** The socket that owns the TCP connection, tracked and destroyed by the pool: `socket` itself when the dialer made it. */
  raw: net.Socket
  /** How `socket` reads its plaintext (see `PlaintextReads`); unset = the stream's own reads. */
  reads?: PlaintextReads
  /** The TLS session offered in the handshake; it was resumed if `socket.isSessionReused()`. */
  session?: Buffer
}

/**
 * Opens one {@link IngressConnection}. Must honour `signal` (destroying what it opened) and hand every
 * TCP socket it creates to `track` at once, so that the pool can close it whatever state it is in.
 */
export type PredialOpen = (signal: AbortSignal, track: (raw: net.Socket) => void) => Promise<IngressConnection>

export interface PredialPoolOptions {
  /** Connections kept ready: 1–64. */
  size: number
  /** An unused connection is closed this long after its handshake. */
  maxAgeMs: number
  logger: Logger
  /** After a failed dial ahead, no new one for this long, doubled per failure in a row up to `backoffMaxMs`. Default 1 000. */
  backoffInitialMs?: number
  /** Default 60 000. */
  backoffMaxMs?: number
  now?: () => number
  random?: () => number
}

export interface PredialPoolStats {
  /** Ready connections. */
  idle: number
  /** Dials ahead in progress. */
  pending: number
  /** Dials ahead that failed in a row (0 after a success). */
  failures: number
}

interface Entry {
  conn: IngressConnection
  createdAt: number
  release(): void
}

/** The connections of one key (ingress host:port + client-credential fingerprint). */
interface Generation {
  key: string
  controller: AbortController
  pending: number
}

/**
 * A small bounded pool of TLS connections to the binding ingress, dialled ahead of demand
 * (PROTOCOL.md §4 allows it as long as each connection carries exactly one ConnRequest).
 *
 * - {@link take} hands out each connection once, and only one whose key matches: another key (a
 *   credential rotation, an endpoint change) closes every connection of the old one.
 * - The pool is filled only by {@link fill}, which the dialer calls after a dial the ingress answered
 *   (accepted or refused): an idle daemon keeps no connections open past `maxAgeMs`, and an
 *   unreachable ingress sees no dials ahead.
 * - A failed dial ahead blocks further ones for a backoff that doubles per failure (with jitter).
 * - A ready connection that the server closes, resets, or writes to (the ingress never speaks before
 *   the ConnRequest) is dropped; its errors never go unhandled. Ready connections do not keep the
 *   process alive.
 */
export class PredialPool {
  private readonly size: number
  private readonly maxAgeMs: number
  private readonly logger: Logger
  private readonly backoffInitialMs: number
  private readonly backoffMaxMs: number
  private readonly now: () => number
  private readonly random: () => number
  private generation?: Generation
  private idle: Entry[] = []
  /** Every TCP socket this pool owns (ready or being dialled), with a promise of its close. */
  private readonly owned = new Map<net.Socket, Promise<void>>()
  private readonly settling = new Set<Promise<void>>()
  private failures = 0
  private retryAt = 0
  private closed = false

  constructor(options: PredialPoolOptions) {
    this.size = options.size
    this.maxAgeMs = options.maxAgeMs
    this.logger = options.logger
    this.backoffInitialMs = options.backoffInitialMs ?? 1_000
    this.backoffMaxMs = options.backoffMaxMs ?? 60_000
    this.now = options.now ?? Date.now
    this.random = options.random ?? Math.random
  }

  /**
   * A ready connection for `key`, removed from the pool, paused, or undefined. The caller owns it from
   * here: it must attach its own listeners and resume it.
   */
  take(key: string): IngressConnection | undefined {
    if (this.closed) return undefined
    if (key !== this.generation?.key) {
      this.reset(key)
      return undefined
    }
    for (let entry = this.idle.shift(); entry; entry = this.idle.shift()) {
      const { socket, raw } = entry.conn
      entry.release()
      if (!socket.destroyed && socket.readable && socket.writable && this.now() - entry.createdAt < this.maxAgeMs) {
        this.owned.delete(raw)
        return entry.conn
      }
      socket.destroy()
      raw.destroy()
    }
    return undefined
  }

  /** Starts dials ahead for `key` in the background until the pool holds `size`, unless backing off. */
  fill(key: string, open: PredialOpen): void {
    if (this.closed) return
    if (key !== this.generation?.key) this.reset(key)
    const generation = this.generation!
    if (this.now() < this.retryAt) return
    for (let missing = this.size - this.idle.length - generation.pending; missing > 0; missing--) this.openOne(generation, open)
  }

  stats(): PredialPoolStats {
    return { idle: this.idle.length, pending: this.generation?.pending ?? 0, failures: this.failures }
  }

  /** Closes every connection, ready or being dialled, and resolves once all are closed. Final. */
  async close(): Promise<void> {
    this.closed = true
    this.reset(undefined)
    while (this.settling.size > 0) await Promise.all([...this.settling])
    await Promise.all([...this.owned.values()])
  }

  /** Closes everything of the current key (aborting its dials in progress) and switches to `key`. */
  private reset(key: string | undefined): void {
    this.generation?.controller.abort()
    this.generation = key === undefined ? undefined : { key, controller: new AbortController(), pending: 0 }
    const idle = this.idle
    this.idle = []
    for (const entry of idle) {
      entry.release()
      entry.conn.socket.destroy()
      entry.conn.raw.destroy()
    }
  }

  private openOne(generation: Generation, open: PredialOpen): void {
    const { signal } = generation.controller
    generation.pending++
    const track = (raw: net.Socket): void => {
      raw.unref()
      this.owned.set(raw, new Promise<void>((resolve) => raw.once('close', () => resolve())))
      raw.once('close', () => this.owned.delete(raw))
      if (signal.aborted) raw.destroy()
    }
    const settled = open(signal, track).then(
      (conn) => {
        generation.pending--
        if (signal.aborted || this.closed) {
          conn.socket.destroy()
          conn.raw.destroy()
          return
        }
        this.failures = 0
        this.retryAt = 0
        this.add(conn)
      },
      (err: unknown) => {
        generation.pending--
        if (signal.aborted || this.closed) return
        this.failures++
        const base = Math.min(this.backoffMaxMs, this.backoffInitialMs * 2 ** (this.failures - 1))
        const delay = Math.round(base * (0.5 + this.random() / 2))
        this.retryAt = this.now() + delay
        const message = err instanceof Error ? err.message : String(err)
        const obj = { err: message, failures: this.failures, retryInMs: delay }
        if (this.failures === 1) this.logger.warn(obj, `binding ingress: dialling ahead failed, no new try for ${delay} ms: ${message}`)
        else this.logger.debug(obj, 'binding ingress: dialling ahead failed again')
      },
    )
    const done = settled.finally(() => this.settling.delete(done))
    this.settling.add(done)
  }

  private add(conn: IngressConnection): void {
    const { socket, raw } = conn
    const entry: Entry = { conn, createdAt: this.now(), release: () => {} }
    const drop = (): void => {
      const i = this.idle.indexOf(entry)
      if (i >= 0) this.idle.splice(i, 1)
      entry.release()
      socket.destroy()
      raw.destroy()
    }
    const timer = setTimeout(drop, this.maxAgeMs)
    timer.unref()
    // any byte before our ConnRequest is a protocol violation; 'end', 'close' and errors: the server let go
    socket.on('data', drop).on('end', drop).on('close', drop).on('error', drop)
    raw.on('error', drop)
    entry.release = () => {
      clearTimeout(timer)
      socket.off('data', drop).off('end', drop).off('close', drop).off('error', drop)
      raw.off('error', drop)
      socket.pause()
      raw.ref()
      entry.release = () => {}
    }
    // flowing, so that a close by the server (and TLS 1.3 session tickets) are read while it waits
    socket.resume()
    this.idle.push(entry)
  }
}
