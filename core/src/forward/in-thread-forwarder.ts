import type net from 'node:net'
import type { ForwardTarget } from '../contracts/forwarder.js'
import type { Logger } from '../contracts/logger.js'
import type { ConnectionLimitOptions } from './connection-limits.js'
import { CarriedConnection } from './carry-connection.js'
import type { Dialer } from './ingress-dialer.js'
import { ListeningForwarder, errorKey, type ListenerEntry, type TrackedConnection } from './listening-forwarder.js'
import type { LocalAddresses } from '../util/local-addresses.js'

export interface InThreadForwarderOptions {
  /** Its handshake and ConnResponse deadlines (`forwarder.handshake_timeout`, `forwarder.conn_request_timeout`) apply. */
  dialer: Dialer
  logger: Logger
  /** Close a forwarded connection after this many ms without a byte either way. 0 (default) = never. */
  idleTimeoutMs?: number
  /** Close a forwarded connection on which no byte has passed either way after this many ms. 0 (default) = only the idle timeout. */
  firstByteTimeoutMs?: number
  /** `forwarder.max_connections` and `forwarder.max_connections_per_endpoint`. Default: no limits. */
  limits?: ConnectionLimitOptions
  /** `close()` closes the dialer too (its connections dialled ahead). Default false: the dialer is the caller's. */
  ownsDialer?: boolean
  /** Which client sources are this machine; see {@link ListeningForwarderOptions}. */
  localAddresses?: LocalAddresses
}

class Conn implements TrackedConnection {
  constructor(
    readonly client: net.Socket,
    readonly target: ForwardTarget,
    readonly carried: CarriedConnection,
  ) {}
  bytesIn(): number {
    return this.client.bytesRead
  }
  bytesOut(): number {
    return this.client.bytesWritten
  }
  cut(): void {
    this.carried.cut()
  }
}

/**
 * The in-thread {@link Forwarder}: every listener and every forwarded connection lives on the calling
 * thread. Correct on every OS; the baseline that worker-pool forwarders are measured against.
 *
 * Per accepted connection: what the client sends while the ingress is dialled waits in its socket's buffer (a reset
 * meanwhile aborts the dial); on success the bytes that
 * came with the ConnResponse are written first, then both directions are pumped with backpressure (a slow
 * reader throttles the other side through TCP flow control) and half-close (when one side ends, the other
 * side's write half is ended and the other direction keeps flowing until it ends too).
 *
 * When the dial fails (refused, TLS, timeout, ...) the local connection is **reset** (RST, not FIN): a
 * client then sees "connection reset" instead of an empty answer it could take for a complete one.
 * Connections over a limit are reset at once (see `connection-limits.ts`).
 *
 * ```ts
 * const forwarder = new InThreadForwarder({ dialer: new IngressDialer({ ... }), logger, limits: { maxConnections: 10_000 } })
 * await forwarder.listen({ address: '10.107.0.2', port: 80, target: { hostname: 'api.prod', port: 80, proto: 'http' } })
 * ```
 */
export class InThreadForwarder extends ListeningForwarder<Conn> {
  readonly forwarder = 'in-thread'
  private readonly dialer: Dialer
  private readonly idleTimeoutMs: number
  private readonly firstByteTimeoutMs: number
  private readonly ownsDialer: boolean

  constructor(options: InThreadForwarderOptions) {
    super({ logger: options.logger, limits: options.limits, localAddresses: options.localAddresses })
    this.dialer = options.dialer
    this.idleTimeoutMs = options.idleTimeoutMs ?? 0
    this.firstByteTimeoutMs = options.firstByteTimeoutMs ?? 0
    this.ownsDialer = options.ownsDialer ?? false
  }

  override async close(): Promise<void> {
    await super.close()
    if (this.ownsDialer) await (this.dialer as { close?: () => Promise<void> }).close?.()
  }

  /**
   * Bytes held in user space by all open connections (socket read and write buffers, both sides).
   * Stays near a few socket high-water marks per connection however slow a reader is: the memory
   * figure behind the backpressure guarantee.
   */
  bufferedBytes(): number {
    let n = 0
    for (const e of this.entries.values()) {
      for (const c of e.conns) {
        n += c.carried.bufferedBytes()
      }
    }
    return n
  }

  protected accept(entry: ListenerEntry<Conn>, client: net.Socket): void {
    const target = entry.target
    const carried = new CarriedConnection({
      client,
      dialer: this.dialer,
      hostname: target.hostname,
      port: target.port,
      idleTimeoutMs: this.idleTimeoutMs,
      firstByteTimeoutMs: this.firstByteTimeoutMs,
      rewriteHost: entry.rewriteHost,
      logger: this.logger,
      onHandshake: (ms) => this.recordHandshake(entry, ms),
    })
    const conn = new Conn(client, target, carried)
    this.track(entry, conn)
    void carried.done.then(({ bytesIn, bytesOut, error, side }) => {
      if (side === 'dial') this.recordFailure(entry, error, target)
      else if (side) {
        this.countError(entry, errorKey(error))
        this.logger.debug({ listener: entry.key, hostname: target.hostname, side, err: (error as Error).message }, `${entry.key}: ${side} connection error`)
      }
      this.untrack(entry, conn, bytesIn, bytesOut)
    })
  }
}
