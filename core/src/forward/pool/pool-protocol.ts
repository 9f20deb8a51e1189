/**
 * What the main thread and the pool's workers exchange: the task of one forwarded connection, its
 * result, the per-connection shared memory, and the messages on the pool's BroadcastChannel.
 */
import type { IngressDialerOptions } from '../ingress-dialer.js'

/**
 * Per-connection shared memory (one SharedArrayBuffer of {@link SHARED_BYTES} per task).
 * Int32 index 0 is the fd's owner, changed only with Atomics.compareExchange:
 * HANDED → CLAIMED by the worker when it takes the fd (and from then on closes it), or
 * HANDED → RECLAIMED by the main thread when it takes the fd back (and closes it itself). Exactly one
 * of the two wins, so the fd is closed exactly once whatever happens to the task.
 * Int32 index 1 is set to 1 by the worker once the client's socket has closed (its byte counts final in Float64 1-2):
 * the main thread may then give the connection's limit slot back before the task's result arrives.
 * Float64 indexes 1-4 are written by the worker, read by the main thread for `listeners()`.
 */
export const SHARED_BYTES = 40
export const OWNER = 0
export const FD_HANDED = 0
export const FD_CLAIMED = 1
export const FD_RECLAIMED = 2
/** Int32 index: the client's socket has closed (1). */
export const CLIENT_CLOSED = 1
/** Float64Array indexes. */
export const BYTES_IN = 1
export const BYTES_OUT = 2
/** Accept → ConnResponse in ms; -1 until the ConnResponse came. */
export const HANDSHAKE_MS = 3
export const BUFFERED = 4

/** How often a worker publishes the byte counts of its open connections to shared memory (ms). */
export const PUBLISH_EVERY_MS = 100

/** IngressDialer options that can cross to a worker (no functions: credentials and endpoint come by message). */
export type PoolDialerSettings = Omit<IngressDialerOptions, 'logger' | 'credentials' | 'endpoint' | 'lookup' | 'ca'> & {
  ca?: string | string[]
}

export interface PoolWorkerData {
  /** Name of the pool's BroadcastChannel. */
  channel: string
  dialer: PoolDialerSettings
  idleTimeoutMs: number
  firstByteTimeoutMs: number
  /** See `collectYoungGarbageEvery`; 0 = V8 decides. */
  youngGcEveryMib: number
}

/** One forwarded connection. */
export interface PoolTask {
  id: number
  /** The dup'd descriptor of the accepted socket; see {@link SHARED_BYTES} for who closes it. */
  fd: number
  shared: SharedArrayBuffer
  hostname: string
  port: number
  /** `host:port` of the binding ingress for this connection. */
  endpoint: string
  /** The credentials version to dial with (or a newer one). */
  credentialsVersion: number
  rewriteHost?: string
  /** Accept time, ms since the epoch (performance.timeOrigin + performance.now()). */
  acceptedAt: number
}

export interface PoolTaskError {
  message: string
  code?: string
  ngrokCode?: string
  hint?: string
  side: 'dial' | 'client' | 'ingress'
}

export interface PoolTaskResult {
  /** False: the main thread had taken the fd back before the worker got to it; nothing was done. */
  claimed: boolean
  bytesIn: number
  bytesOut: number
  handshakeMs?: number
  error?: PoolTaskError
}

/** Main thread → workers. */
export type ToWorkers =
  | { t: 'credentials'; version: number; certPem: string; keyPem: string }
  /** Cut these connections (RST) now: drain time ran out, or the forwarder closes. */
  | { t: 'cut'; ids: number[] }

/** Workers → main thread. */
export type ToMain =
  | { t: 'need-credentials'; version: number }
  | { t: 'log'; level: 'info' | 'warn' | 'error' | 'fatal'; obj: object; msg: string }
