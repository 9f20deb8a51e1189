import { randomUUID } from 'node:crypto'
import type net from 'node:net'
import { performance } from 'node:perf_hooks'
import { BroadcastChannel } from 'node:worker_threads'
import Tinypool from 'tinypool'
import type { Check } from '../../contracts/check.js'
import type { ForwardTarget, ListenerStatus } from '../../contracts/forwarder.js'
import type { Logger } from '../../contracts/logger.js'
import { errorCodes, type NgrokdErrorCode } from '../../errors/codes.js'
import { NgrokdError } from '../../errors/ngrokd-error.js'
import type { ConnectionLimitOptions } from '../connection-limits.js'
import { resetSocket } from '../socket-state.js'
import type { IngressCredentials, IngressDialerOptions } from '../ingress-dialer.js'
import { ListeningForwarder, errorKey, type ListenerEntry, type TrackedConnection } from '../listening-forwarder.js'
import type { LocalAddresses } from '../../util/local-addresses.js'
import {
  BUFFERED,
  BYTES_IN,
  CLIENT_CLOSED,
  BYTES_OUT,
  FD_HANDED,
  FD_RECLAIMED,
  HANDSHAKE_MS,
  OWNER,
  SHARED_BYTES,
  type PoolDialerSettings,
  type PoolTask,
  type PoolTaskError,
  type PoolTaskResult,
  type PoolWorkerData,
  type ToMain,
  type ToWorkers,
} from './pool-protocol.js'

type FdOps = typeof import('./fd-ffi.js')

export interface WorkerPoolForwarderOptions {
  logger: Logger
  /** Worker threads (≥ 1). */
  workers: number
  /**
   * How to reach the binding ingress. `credentials` and `endpoint` are called on this thread for every new
   * connection (a renewed certificate is sent to the workers once and used for new connections); the
   * other settings go to each worker's own IngressDialer. `lookup` cannot cross to a worker and is not
   * accepted: workers resolve with `dns.lookup`.
   */
  dialer: Omit<IngressDialerOptions, 'logger' | 'lookup'>
  /** Close a forwarded connection after this many ms without a byte either way. 0 (default) = never. */
  idleTimeoutMs?: number
  /** Close a forwarded connection on which no byte has passed either way after this many ms. 0 (default) = only the idle timeout. */
  firstByteTimeoutMs?: number
  limits?: ConnectionLimitOptions
  /** Each worker's young generation, MiB (`resourceLimits.maxYoungGenerationSizeMb`); 0 or unset = V8's default. */
  maxYoungGenerationMib?: number
  /** Each worker collects its young generation after this many MiB carried (`collectYoungGarbageEvery`); 0 or unset = V8 decides. */
  youngGcEveryMib?: number
  /** Which client sources are this machine (admission runs on this thread); see {@link ListeningForwarderOptions}. */
  localAddresses?: LocalAddresses
}

class PoolConn implements TrackedConnection {
  /** The main thread's socket until the fd is handed off. */
  client?: net.Socket
  fd = -1
  handshakeCounted = false
  cutRequested = false
  /** Int32 words 0 (OWNER) and 1 (CLIENT_CLOSED) of the shared memory. */
  readonly owner: Int32Array
  readonly f64: Float64Array
  constructor(
    readonly id: number,
    readonly target: ForwardTarget,
    readonly shared: SharedArrayBuffer,
    private readonly forwarder: WorkerPoolForwarder,
  ) {
    this.owner = new Int32Array(shared, 0, 2)
    this.f64 = new Float64Array(shared)
    this.f64[HANDSHAKE_MS] = -1
  }
  bytesIn(): number {
    return this.f64[BYTES_IN]!
  }
  bytesOut(): number {
    return this.f64[BYTES_OUT]!
  }
  cut(): void {
    this.forwarder.cutConnection(this)
  }
}

/**
 * The worker-pool {@link Forwarder} (Linux): listeners and limits live on this thread; the bytes of each
 * connection move in a tinypool worker thread. One task = one forwarded connection.
 *
 * Per accepted connection (paused, `pauseOnConnect`): the limits are checked, the socket's fd is
 * duplicated (`fcntl(F_DUPFD_CLOEXEC)` through koffi), this thread's socket is destroyed (the
 * connection lives on in the duplicate), and the duplicate's number goes to a task that wraps it in a
 * `net.Socket` in the worker and carries it exactly as the in-thread forwarder does
 * (`CarriedConnection`: backpressure, half-close, RST on failures, idle timeout, `rewriteHost`).
 *
 * The duplicate is closed exactly once: a per-task word in shared memory says who owns it (see
 * pool-protocol.ts); the worker closes it through its socket, or this thread takes it back with a
 * compare-and-swap and closes it (with RST) when the task failed or was cut before the worker got to it.
 *
 * ```ts
 * const forwarder = await WorkerPoolForwarder.create({ logger, workers: 2, dialer: { credentials, endpoint: () => 'ingress:443' } })
 * await forwarder.listen({ address: '10.107.0.2', port: 80, target: { hostname: 'api.prod', port: 80, proto: 'http' } })
 * ```
 */
export class WorkerPoolForwarder extends ListeningForwarder<PoolConn> {
  readonly forwarder = 'worker-pool'
  readonly workers: number
  private readonly pool: Tinypool
  private readonly channel: BroadcastChannel
  private readonly credentialsFn: () => IngressCredentials | Promise<IngressCredentials>
  private readonly endpointFn: () => string
  private credentials?: { version: number; value: IngressCredentials }
  private nextId = 1
  private pendingCuts: number[] = []
  private workerFailures = 0
  private destroyed?: Promise<void>
  private closing = false
  /** Workers whose exit is watched, and those that already failed with an error. */
  private readonly watched = new WeakSet<object>()
  private readonly errored = new WeakSet<object>()

  /** Whether this platform can hand accepted sockets to worker threads (Linux: verified; elsewhere: no). */
  static supported(platform: NodeJS.Platform = process.platform): { ok: true } | { ok: false; reason: string } {
    // Windows and macOS: the in-thread forwarder (no descriptor hand-off to threads there)
    if (platform !== 'linux') return { ok: false, reason: `handing sockets to worker threads is implemented for Linux only, not ${platform}` }
    return { ok: true }
  }

  /** Loads koffi (for fcntl) and starts the worker threads. */
  static async create(options: WorkerPoolForwarderOptions): Promise<WorkerPoolForwarder> {
    const supported = WorkerPoolForwarder.supported()
    if (!supported.ok) throw new NgrokdError('NGROKD_ERR_DRIVER_UNSUPPORTED_PLATFORM', `worker pool forwarder: ${supported.reason}`, { hint: 'set forwarder.workers: 0' })
    if (!Number.isInteger(options.workers) || options.workers < 1) {
      throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `worker pool forwarder: workers must be a whole number ≥ 1, not ${options.workers}`, {
        hint: 'forwarder.workers takes a number (0 = no pool) or "auto"',
      })
    }
    let fd: FdOps
    try {
      fd = await import('./fd-ffi.js')
    } catch (cause) {
      throw new NgrokdError('NGROKD_ERR_DRIVER_UNSUPPORTED_PLATFORM', 'worker pool forwarder: the koffi FFI module did not load', {
        cause,
        hint: `reinstall without --omit=optional so koffi's prebuilt binary (@koromix/koffi-linux-${process.arch}) is installed, or set forwarder.workers: 0`,
      })
    }
    return new WorkerPoolForwarder(options, fd)
  }

  private constructor(
    options: WorkerPoolForwarderOptions,
    private readonly fd: FdOps,
  ) {
    super({ logger: options.logger, limits: options.limits, localAddresses: options.localAddresses })
    this.workers = options.workers
    const { credentials, endpoint, ...rest } = options.dialer
    if ((rest as { lookup?: unknown }).lookup !== undefined) throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', 'worker pool forwarder: a custom lookup cannot be used in worker threads')
    this.credentialsFn = credentials
    this.endpointFn = endpoint
    // connections dialled ahead are per dialer, and each worker has its own: share the number out
    const predial = rest.predial ? Math.ceil(rest.predial / options.workers) : rest.predial
    const dialer: PoolDialerSettings = { ...rest, ca: caText(rest.ca), predial }
    const workerData: PoolWorkerData = {
      channel: `ngrokd-pool-${randomUUID()}`,
      dialer,
      idleTimeoutMs: options.idleTimeoutMs ?? 0,
      firstByteTimeoutMs: options.firstByteTimeoutMs ?? 0,
      youngGcEveryMib: options.youngGcEveryMib ?? 0,
    }
    this.channel = new BroadcastChannel(workerData.channel)
    this.channel.unref()
    this.channel.onmessage = (event) => this.onWorkerMessage((event as { data: ToMain }).data)
    this.pool = new Tinypool({
      filename: import.meta.resolve('#pool-worker'), // package.json "imports": dist/ is bundled
      minThreads: options.workers,
      maxThreads: options.workers,
      // tasks are whole connections that wait on I/O: a worker runs as many at once as it is given
      concurrentTasksPerWorker: Number.MAX_SAFE_INTEGER,
      // with atomics an idle worker blocks its event loop in Atomics.wait, and workers here have timers and sockets
      useAtomics: false,
      idleTimeout: Infinity,
      workerData,
      ...(options.maxYoungGenerationMib ? { resourceLimits: { maxYoungGenerationSizeMb: options.maxYoungGenerationMib } } : {}),
    })
    // a worker that fails while it has no task (at start-up, say): its tasks' failures are handled per task
    this.pool.on('error', (err: Error) => {
      this.workerFailures++
      this.logger.error({ err: err.message }, `worker pool: a worker thread failed: ${err.message}`)
    })
    this.watchWorkers() // from their creation: a thread may exit before it is given a connection
  }

  /**
   * Bytes held in user space by open connections, as the workers last published them (every
   * PUBLISH_EVERY_MS): the memory figure behind the backpressure guarantee.
   */
  bufferedBytes(): number {
    let n = 0
    for (const e of this.entries.values()) for (const c of e.conns) n += c.f64[BUFFERED]!
    return n
  }

  override listeners(): ListenerStatus[] {
    // handshakes of connections still open, published by the workers as they happen
    for (const e of this.entries.values()) {
      for (const c of e.conns) {
        const ms = c.f64[HANDSHAKE_MS]!
        if (!c.handshakeCounted && ms >= 0) {
          c.handshakeCounted = true
          this.recordHandshake(e, ms)
        }
      }
    }
    return super.listeners()
  }

  override async diagnose(): Promise<Check[]> {
    const checks = await super.diagnose()
    const threads = this.pool.threads.length
    checks.push(
      this.workerFailures > 0
        ? {
            id: 'forwarder.pool',
            status: 'warn',
            summary: `worker pool: ${threads} of ${this.workers} worker threads; ${this.workerFailures} connections lost to failed tasks`,
            hint: 'see the log for the worker errors; forwarder.workers: 0 carries connections on the main thread instead',
          }
        : { id: 'forwarder.pool', status: 'ok', summary: `worker pool: ${threads} of ${this.workers} worker threads` },
    )
    return checks
  }

  override async close(): Promise<void> {
    await super.close() // cuts every connection and waits until each task has ended
    this.closing = true
    this.destroyed ??= (async () => {
      await this.pool.destroy()
      this.channel.close()
    })()
    await this.destroyed
  }

  protected accept(entry: ListenerEntry<PoolConn>, client: net.Socket): void {
    const acceptedAt = performance.timeOrigin + performance.now()
    const conn = new PoolConn(this.nextId++, entry.target, new SharedArrayBuffer(SHARED_BYTES), this)
    conn.client = client
    this.track(entry, conn)
    client.on('error', () => {}) // paused and about to be handed off: its errors show in the worker
    let creds: IngressCredentials | Promise<IngressCredentials>
    try {
      creds = this.credentialsFn()
    } catch (err) {
      this.failBeforeHandOff(entry, conn, err)
      return
    }
    if (creds instanceof Promise) {
      creds.then(
        (c) => this.handOff(entry, conn, c, acceptedAt),
        (err: unknown) => this.failBeforeHandOff(entry, conn, err),
      )
    } else {
      this.handOff(entry, conn, creds, acceptedAt)
    }
  }

  /** Called by a connection's `cut()`: RST now, wherever the connection is. */
  cutConnection(conn: PoolConn): void {
    conn.cutRequested = true
    if (conn.client) {
      resetSocket(conn.client) // not handed off yet: handOff() sees it destroyed
      return
    }
    if (conn.fd < 0) return
    if (Atomics.compareExchange(conn.owner, OWNER, FD_HANDED, FD_RECLAIMED) === FD_HANDED) {
      this.fd.resetAndCloseFd(conn.fd) // the worker will find it reclaimed and return at once
      return
    }
    // the worker owns it: ask it (batched per event-loop turn)
    if (this.pendingCuts.push(conn.id) === 1) {
      queueMicrotask(() => {
        const ids = this.pendingCuts
        this.pendingCuts = []
        this.post({ t: 'cut', ids })
      })
    }
  }

  private handOff(entry: ListenerEntry<PoolConn>, conn: PoolConn, creds: IngressCredentials, acceptedAt: number): void {
    const client = conn.client!
    const rawFd = (client as unknown as { _handle?: { fd?: number } })._handle?.fd
    if (client.destroyed || conn.cutRequested || rawFd === undefined || rawFd < 0) {
      conn.client = undefined
      resetSocket(client)
      this.untrack(entry, conn, 0, 0)
      return
    }
    let endpoint: string
    try {
      endpoint = this.endpointFn()
      conn.fd = this.fd.dupSocketFd(rawFd)
    } catch (err) {
      this.failBeforeHandOff(entry, conn, err)
      return
    }
    conn.client = undefined
    client.destroy() // closes this thread's fd only: the connection lives on in the duplicate
    this.watchWorkers()
    const task: PoolTask = {
      id: conn.id,
      fd: conn.fd,
      shared: conn.shared,
      hostname: conn.target.hostname,
      port: conn.target.port,
      endpoint,
      credentialsVersion: this.versionOf(creds),
      rewriteHost: entry.rewriteHost,
      acceptedAt,
    }
    ;(this.pool.run(task) as Promise<PoolTaskResult>).then(
      (result) => this.finish(entry, conn, result),
      (err: unknown) => {
        // the task never ran, or its worker died: whoever owns the fd closes it
        if (Atomics.compareExchange(conn.owner, OWNER, FD_HANDED, FD_RECLAIMED) === FD_HANDED) this.fd.resetAndCloseFd(conn.fd)
        // else the worker had claimed it: its socket was closed with the worker's event loop
        if (!this.closed || !conn.cutRequested) {
          this.workerFailures++
          this.countError(entry, 'worker')
          this.warn(entry, 'worker', { listener: entry.key, err: (err as Error)?.message }, `${entry.key}: a worker task failed: ${(err as Error)?.message}`)
        }
        this.untrack(entry, conn, conn.f64[BYTES_IN]!, conn.f64[BYTES_OUT]!)
      },
    )
  }

  /**
   * tinypool fails the tasks of a worker that fails with an error, and replaces it; a worker thread that
   * exits without one (terminated, `process.exit()` in it) would leave its tasks pending and stay in the
   * pool. Such an exit is turned into that error here.
   *
   * Every thread is watched from its creation, before it can have exited ('exit' is not sent again to a
   * listener added later): the pool's first threads in the constructor, and each replacement, which
   * tinypool makes in its own 'error' listener of the thread it replaces, in the listener below (added
   * after tinypool's, so it runs after it). Called at each hand-off too, should tinypool add a thread
   * another way.
   */
  private watchWorkers(): void {
    for (const w of this.pool.threads) {
      if (this.watched.has(w)) continue
      this.watched.add(w)
      w.once('error', () => {
        this.errored.add(w)
        this.watchWorkers()
      })
      w.once('exit', (code: number) => {
        if (!this.closing && !this.errored.has(w)) w.emit('error', new Error(`worker thread exited unexpectedly (exit code ${code})`))
      })
    }
  }

  private finish(entry: ListenerEntry<PoolConn>, conn: PoolConn, result: PoolTaskResult): void {
    if (!conn.handshakeCounted && result.handshakeMs !== undefined) {
      conn.handshakeCounted = true
      this.recordHandshake(entry, result.handshakeMs)
    }
    const e = result.error
    if (e) {
      if (e.side === 'dial') this.recordFailure(entry, revive(e), conn.target)
      else {
        this.countError(entry, errorKey(e))
        this.logger.debug({ listener: entry.key, hostname: conn.target.hostname, side: e.side, err: e.message }, `${entry.key}: ${e.side} connection error`)
      }
    }
    this.untrack(entry, conn, result.bytesIn, result.bytesOut)
  }

  /** The worker flags a connection whose client closed before its task's result comes back: its slot is free now. */
  protected override releaseEnded(): boolean {
    let released = false
    for (const entry of this.entries.values()) {
      for (const conn of [...entry.conns]) {
        if (Atomics.load(conn.owner, CLIENT_CLOSED) !== 1) continue
        this.untrack(entry, conn, conn.f64[BYTES_IN]!, conn.f64[BYTES_OUT]!) // finish() finds it untracked already
        released = true
      }
    }
    return released
  }

  private failBeforeHandOff(entry: ListenerEntry<PoolConn>, conn: PoolConn, err: unknown): void {
    const client = conn.client
    conn.client = undefined
    if (client) resetSocket(client)
    if (!conn.cutRequested) this.recordFailure(entry, err, conn.target)
    this.untrack(entry, conn, 0, 0)
  }

  /** A version number per distinct certificate and key; the PEMs go to the workers when they ask. */
  private versionOf(creds: IngressCredentials): number {
    const c = this.credentials
    if (c && (c.value === creds || (c.value.certPem === creds.certPem && c.value.keyPem === creds.keyPem))) return c.version
    const version = (c?.version ?? 0) + 1
    this.credentials = { version, value: { certPem: creds.certPem, keyPem: creds.keyPem } }
    return version
  }

  private onWorkerMessage(message: ToMain): void {
    if (message.t === 'need-credentials') {
      const c = this.credentials
      if (c) this.post({ t: 'credentials', version: c.version, certPem: c.value.certPem, keyPem: c.value.keyPem })
    } else if (message.t === 'log') {
      this.logger[message.level](message.obj, message.msg)
    }
  }

  private post(message: ToWorkers): void {
    this.channel.postMessage(message)
  }
}

/** An error from a worker as an NgrokdError again (code, hint and ngrok code kept), for counting and `diagnose()`. */
function revive(e: PoolTaskError): Error {
  const error: Error & { ngrokCode?: string; code?: string } = isCode(e.code)
    ? new NgrokdError(e.code, e.message, { hint: e.hint })
    : Object.assign(new Error(e.message), { code: e.code })
  if (e.ngrokCode !== undefined) error.ngrokCode = e.ngrokCode
  return error
}

function isCode(code: string | undefined): code is NgrokdErrorCode {
  return code !== undefined && Object.hasOwn(errorCodes, code)
}

function caText(ca: IngressDialerOptions['ca']): string | string[] | undefined {
  if (ca === undefined) return undefined
  return Array.isArray(ca) ? ca.map((c) => c.toString()) : ca.toString()
}
