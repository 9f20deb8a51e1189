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
  /**
   * Network mode, `http` endpoints only: rewrite the Host header of every request on the
   * connection to this value (bodies untouched). Unset: bytes pass through unchanged.
   */
  rewriteHost?: string
  /**
   * Admit clients from other machines too (network mode's listeners). Default false: only clients
   * on this machine (loopback, or one of its own addresses) are admitted; others are refused (RST)
   * and counted under `refused` and `errors.NON_LOCAL_CLIENT`.
   */
  remoteClients?: boolean
  signal?: AbortSignal
}

/** The error key a connection from another machine is counted under (no network mode on its listener). */
export const NON_LOCAL_CLIENT = 'NON_LOCAL_CLIENT'

/** A listener's figures, or the sum of several listeners' ({@link Forwarder.unlistened}). */
export interface ListenerFigures {
  openConnections: number
  totalConnections: number
  bytesIn: number
  bytesOut: number
  /** Failed connections by ngrok error code (`ERR_NGROK_3200`) or NgrokdError code. */
  errors: Record<string, number>
  /** Connections refused: a connection limit was reached, or (also under `errors.NON_LOCAL_CLIENT`) the client was another machine's. */
  refused?: number
  /** Time from accept to the ConnResponse, over the connections so far (ms). */
  handshake?: { count: number; totalMs: number; maxMs: number }
}

export interface ListenerStatus extends ListenerFigures {
  address: string
  port: number
  target: ForwardTarget
}

/**
 * Accepts local connections and carries each one to the binding ingress.
 *
 * Rules:
 * - `listen()` on an address:port already listened on with the same target resolves (idempotent);
 *   with another target, new connections go to the new target.
 * - `unlisten()` stops accepting at once and lets open connections finish for up to `drainMs`
 *   (default 0: they are closed); it resolves when they have. Unlistening something not listened on resolves.
 *   A caller need not wait for the drain (the reconciler does not, between polls).
 * - `listeners()` reflects what is really listening: a listener unlistened leaves it once closed, draining or not.
 * - `unlistened()`, when there, sums the figures of listeners no longer in `listeners()`: the connections still
 *   draining (`openConnections`) and the counters of those gone, so that totals never go backwards. Its error
 *   keys stay as bounded as one listener's.
 * - `close()` unlistens everything, may be called more than once.
 * - `endDrains()` closes now the connections that unlistens are draining (a second stop signal), and those of every
 *   later unlisten at once: those unlistens resolve.
 */
export interface Forwarder {
  readonly forwarder: string
  listen(options: ListenOptions): Promise<void>
  unlisten(options: { address: string; port: number; drainMs?: number }): Promise<void>
  listeners(): ListenerStatus[]
  unlistened?(): ListenerFigures
  close(): Promise<void>
  diagnose(): Promise<Check[]>
  endDrains?(): void
}
