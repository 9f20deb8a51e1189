import type { Check } from './check.js'

export type EndpointProto = 'http' | 'https' | 'tcp' | 'tls'

/** What a local connection is forwarded to: the endpoint's bare hostname and its port. */
export interface ForwardTarget {
  hostname: string
  port: number
  proto: EndpointProto
}

export interface ListenOptions {
  address: string
  port: number
  target: ForwardTarget
  signal?: AbortSignal
}

export interface ListenerStatus {
  address: string
  port: number
  target: ForwardTarget
  openConnections: number
  totalConnections: number
  bytesIn: number
  bytesOut: number
  errors: Record<string, number>
}

/**
 * Accepts local connections and carries each one to the binding ingress.
 *
 * Rules:
 * - `listen()` on an address:port already listened on with the same target resolves (idempotent);
 *   with another target, new connections go to the new target.
 * - `unlisten()` stops accepting at once and lets open connections finish for up to `drainMs`
 *   (default 0: they are closed). Unlistening something not listened on resolves.
 * - `listeners()` reflects what is really listening.
 * - `close()` unlistens everything, may be called more than once.
 */
export interface Forwarder {
  readonly forwarder: string
  listen(options: ListenOptions): Promise<void>
  unlisten(options: { address: string; port: number; drainMs?: number }): Promise<void>
  listeners(): ListenerStatus[]
  close(): Promise<void>
  diagnose(): Promise<Check[]>
}
