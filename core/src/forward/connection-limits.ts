import { readFileSync } from 'node:fs'
import type net from 'node:net'
import { NgrokdError } from '../errors/ngrokd-error.js'
import { resetSocket } from './socket-state.js'

export interface ConnectionLimitOptions {
  /** Open forwarded connections across every listener of one forwarder (`forwarder.max_connections`). Default: no limit. */
  maxConnections?: number
  /** Open forwarded connections per listener (`forwarder.max_connections_per_endpoint`). Default: no limit. */
  maxConnectionsPerEndpoint?: number
}

/** Which limit refused a connection, or `undefined` when it was admitted. */
export type LimitHit = 'max_connections' | 'max_connections_per_endpoint'

/**
 * The global and per-listener connection limits that every forwarder enforces the same way.
 *
 * Rules:
 * - `admit(listenerOpen)` takes a slot when both limits allow one more connection and returns
 *   `undefined`; otherwise it takes nothing and names the limit that was hit.
 * - Every admitted connection gives its slot back with exactly one `release()`, whenever it ends.
 * - A refused connection is closed at once with {@link refuseConnection} (RST) and counted by the caller.
 *
 * ```ts
 * const limits = new ConnectionLimits({ maxConnections: 10_000, maxConnectionsPerEndpoint: 1_000 })
 * const hit = limits.admit(entry.conns.size)
 * if (hit) refuseConnection(socket)
 * else socket.once('close', () => limits.release())
 * ```
 */
export class ConnectionLimits {
  readonly maxConnections: number
  readonly maxConnectionsPerEndpoint: number
  private openCount = 0

  constructor(options: ConnectionLimitOptions = {}) {
    this.maxConnections = positiveOrInfinity(options.maxConnections, 'maxConnections')
    this.maxConnectionsPerEndpoint = positiveOrInfinity(options.maxConnectionsPerEndpoint, 'maxConnectionsPerEndpoint')
  }

  /** Open connections across all listeners (admitted and not yet released). */
  get open(): number {
    return this.openCount
  }

  /** `listenerOpen`: the listener's open connections before this one. */
  admit(listenerOpen: number): LimitHit | undefined {
    if (this.openCount >= this.maxConnections) return 'max_connections'
    if (listenerOpen >= this.maxConnectionsPerEndpoint) return 'max_connections_per_endpoint'
    this.openCount++
    return undefined
  }

  release(): void {
    if (this.openCount > 0) this.openCount--
  }

  /** The limit's value, for log messages. */
  limitOf(hit: LimitHit): number {
    return hit === 'max_connections' ? this.maxConnections : this.maxConnectionsPerEndpoint
  }
}

/**
 * Closes an over-limit connection at once with RST (SO_LINGER 0) before a byte is read: the client sees
 * "connection reset" right away instead of an empty answer it could take for a complete one, and the
 * kernel frees the socket without TIME_WAIT. Nothing is dialled for it.
 */
export function refuseConnection(socket: net.Socket): void {
  resetSocket(socket)
}


function positiveOrInfinity(n: number | undefined, name: string): number {
  if (n === undefined) return Infinity
  if (!(Number.isInteger(n) && n >= 1) && n !== Infinity) {
    throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `connection limits: ${name} must be a positive integer, not ${n}`, {
      hint: 'forwarder.max_connections and forwarder.max_connections_per_endpoint take whole numbers of at least 1',
    })
  }
  return n
}

/** Descriptors a daemon holds besides its forwarded connections (logs, the control socket, netlink, state files, TLS). */
const FD_RESERVE = 256

/**
 * A process's limit of open files (RLIMIT_NOFILE, which Node raises to the hard limit at start), from /proc: this one's,
 * or the process `pid`'s (root may read any); undefined elsewhere, or where it cannot be read.
 */
export function openFilesLimit(pid: number | 'self' = 'self', limits = (): string => readFileSync(`/proc/${pid}/limits`, 'utf8')): number | undefined {
  try {
    const soft = /^Max open files\s+(\d+|unlimited)\s/m.exec(limits())?.[1]
    return soft === undefined || soft === 'unlimited' ? undefined : Number(soft)
  } catch {
    return undefined
  }
}

/**
 * Why `forwarder.max_connections` cannot be reached under the open-files limit, or undefined: each forwarded
 * connection holds two descriptors (the client's and the ingress's). Past the limit the kernel refuses the accept, and
 * libuv closes such connections itself, uncounted and unlogged: better said at start than found under load.
 */
export function openFilesIssue(maxConnections: number, limit = openFilesLimit(), who = 'this process'): { message: string; hint: string } | undefined {
  if (limit === undefined || !Number.isFinite(maxConnections)) return undefined
  const needed = 2 * maxConnections + FD_RESERVE
  if (needed <= limit) return undefined
  return {
    message: `forwarder.max_connections ${maxConnections} needs about ${needed} open files (two per connection, and the daemon's own), and ${who} may open ${limit} (RLIMIT_NOFILE): connections past about ${Math.max(0, Math.floor((limit - FD_RESERVE) / 2))} would be dropped unseen`,
    hint: `raise the limit (LimitNOFILE= in the service unit, ulimit -n before ngrokd run) or set forwarder.max_connections to at most ${Math.max(1, Math.floor((limit - FD_RESERVE) / 2))}`,
  }
}
