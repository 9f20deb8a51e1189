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
  firstByteTimeoutMs: 30_000,
  handshakeTimeoutMs: 10_000,
  connRequestTimeoutMs: 10_000,
  drainTimeoutMs: 5_000,
  maxYoungGenerationMib: 16,
  youngGcEveryMib: 8,
})

/** Most worker threads `auto` picks (not measured above 2 cores: a conservative cap). */
export const AUTO_MAX_WORKERS = 4
/** Up to this many cores, `auto` forwards on the main thread (measured: the pool gains nothing there). */
export const AUTO_IN_THREAD_MAX_CORES = 2

/**
 * The number of worker threads for `forwarder.workers`: a number is taken as it is. `auto` is 0 (the
 * in-thread forwarder) on machines of up to {@link AUTO_IN_THREAD_MAX_CORES} cores, else one worker per
 * core but one (the main thread keeps accepting and runs the control plane), at most
 * {@link AUTO_MAX_WORKERS}.
 *
 * Measured on 2 cores (Node 20.20 and 24.21; `node test/dist-test/bench/measure-pool.js`: fake ingress
 * and load in another process, 256 MiB down one connection, 5,000 short connections 64 at a time, three
 * runs each on a machine shared with other work, so ranges): one download ran at 357-677 MiB/s in-thread,
 * 268-550 with 1 worker, 297-558 with 2; 1.3-1.8 CPU s/GiB for all three; connections/s 645-1,420
 * in-thread, 666-1,611 with 1 worker, 569-1,412 with 2; CPU per connection 680-850 µs in-thread, 660-910
 * with 1 worker, 800-1,230 with 2 (the fd hand-off and a second TLS stack per worker). The main thread's
 * event-loop delay (p99) during the download was 8-14 ms in every variant. No gain within the noise on 2
 * cores, a CPU cost per connection with 2 workers: so in-thread there. Above 2 cores the pool spreads TLS
 * work over cores the main thread cannot use; that was not measured here.
 */
export function resolveWorkerCount(workers: number | 'auto', cores: number = availableCores()): number {
  if (workers !== 'auto') return workers
  if (cores <= AUTO_IN_THREAD_MAX_CORES) return 0
  return Math.min(AUTO_MAX_WORKERS, cores - 1)
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

/** Where connections are carried: in worker threads, or on the main thread and why (shown by `ngrokd status`). */
export type ForwarderMode = { kind: 'worker-pool'; workers: number } | { kind: 'in-thread'; reason: string }

/** What {@link createForwarder} returns: either forwarder, with its mode and the buffer figure the benchmarks read. */
export type CreatedForwarder = Forwarder & { bufferedBytes(): number; readonly mode: ForwarderMode }

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
  let reason = `forwarder.workers is ${String(s.workers)}`
  if (workers > 0) {
    const { WorkerPoolForwarder } = await import('./pool/worker-pool-forwarder.js')
    const supported = WorkerPoolForwarder.supported()
    if (!supported.ok) {
      reason = supported.reason
    } else if (dialer.lookup !== undefined) {
      reason = 'a custom host lookup cannot run in worker threads'
    } else {
      try {
        const pool = await WorkerPoolForwarder.create({ logger, workers, dialer, idleTimeoutMs: s.idleTimeoutMs, firstByteTimeoutMs: s.firstByteTimeoutMs, limits, maxYoungGenerationMib: s.maxYoungGenerationMib, youngGcEveryMib: s.youngGcEveryMib })
        logger.debug({ workers }, `forwarding in ${workers} worker threads`)
        return Object.assign(pool, { mode: { kind: 'worker-pool', workers } as const })
      } catch (e) {
        reason = `the worker pool did not start: ${formatError(e)}`
        logger.warn({ err: e, workers }, `forwarding on the main thread: ${reason}`)
      }
    }
    if (!reason.startsWith('the worker pool')) logger.info({ workers }, `forwarding on the main thread: ${reason}`)
  }
  const inThread = new InThreadForwarder({ dialer: new IngressDialer({ logger, ...dialer }), logger, idleTimeoutMs: s.idleTimeoutMs, firstByteTimeoutMs: s.firstByteTimeoutMs, limits, ownsDialer: true })
  return Object.assign(inThread, { mode: { kind: 'in-thread', reason } as const })
}

function availableCores(): number {
  // availableParallelism() is Node ≥ 18.14; the cgroup/affinity-aware figure where it exists
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length
}
