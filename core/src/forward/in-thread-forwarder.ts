import net from 'node:net'
import type { Check } from '../contracts/check.js'
import type { Forwarder, ForwardTarget, ListenOptions, ListenerStatus } from '../contracts/forwarder.js'
import type { Logger } from '../contracts/logger.js'
import { NgrokdError, isNgrokdError } from '../errors/ngrokd-error.js'
import type { DialResult, Dialer } from './ingress-dialer.js'

export interface InThreadForwarderOptions {
  dialer: Dialer
  logger: Logger
  /** Close a forwarded connection after this many ms without a byte either way. 0 (default) = never. */
  idleTimeoutMs?: number
}

interface Conn {
  readonly client: net.Socket
  readonly target: ForwardTarget
  readonly abort: AbortController
  up?: net.Socket
  dialing: boolean
  clientClosed: boolean
  upClosed: boolean
  errorRecorded: boolean
  finished: boolean
}

interface Entry {
  readonly key: string
  readonly address: string
  readonly port: number
  readonly server: net.Server
  target: ForwardTarget
  readonly conns: Set<Conn>
  total: number
  closedBytesIn: number
  closedBytesOut: number
  readonly errors: Record<string, number>
  /** The latest failed dial, for `diagnose()`. */
  lastError?: NgrokdError
  /** When each error code was last logged at warn: repeats within {@link WARN_EVERY_MS} go to debug. */
  readonly warnedAt: Map<string, number>
  onEmpty?: () => void
}

const WARN_EVERY_MS = 10_000

/**
 * The in-thread {@link Forwarder}: every listener and every forwarded connection lives on the calling
 * thread. Correct on every OS; the baseline that worker-pool forwarders are measured against.
 *
 * Per accepted connection: the socket stays paused while the ingress is dialled; on success the bytes that
 * came with the ConnResponse are written first, then both directions are piped with backpressure (a slow
 * reader throttles the other side through TCP flow control) and half-close (when one side ends, the other
 * side's write half is ended and the other direction keeps flowing until it ends too).
 *
 * When the dial fails (refused, TLS, timeout, ...) the local connection is **reset** (RST, not FIN): a
 * client then sees "connection reset" instead of an empty answer it could take for a complete one.
 *
 * ```ts
 * const forwarder = new InThreadForwarder({ dialer: new IngressDialer({ ... }), logger })
 * await forwarder.listen({ address: '10.107.0.2', port: 80, target: { hostname: 'api.prod', port: 80, proto: 'http' } })
 * ```
 */
export class InThreadForwarder implements Forwarder {
  readonly forwarder = 'in-thread'
  private readonly dialer: Dialer
  private readonly logger: Logger
  private readonly idleTimeoutMs: number
  private readonly entries = new Map<string, Entry>()
  /** Listens that failed, by key, until a later listen or unlisten of the same address:port. */
  private readonly failed = new Map<string, NgrokdError>()
  private readonly queues = new Map<string, Promise<unknown>>()
  private closed = false

  constructor(options: InThreadForwarderOptions) {
    this.dialer = options.dialer
    this.logger = options.logger
    this.idleTimeoutMs = options.idleTimeoutMs ?? 0
  }

  listen({ address, port, target, signal }: ListenOptions): Promise<void> {
    const where = hostPort(address, port)
    if (net.isIP(address) === 0) {
      return Promise.reject(new NgrokdError('NGROKD_ERR_LISTEN', `in-thread forwarder: cannot listen on ${JSON.stringify(address)}: not an IP address`))
    }
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      return Promise.reject(new NgrokdError('NGROKD_ERR_LISTEN', `in-thread forwarder: cannot listen on ${where}: port not in 1-65535`))
    }
    const key = where
    return this.serialize(key, async () => {
      if (this.closed) throw new NgrokdError('NGROKD_ERR_LISTEN', `in-thread forwarder: cannot listen on ${where}: the forwarder is closed`)
      if (signal?.aborted) throw new NgrokdError('NGROKD_ERR_ABORTED', `in-thread forwarder: listen on ${where} aborted`, { cause: signal.reason })
      const existing = this.entries.get(key)
      if (existing) {
        if (!sameTarget(existing.target, target)) {
          this.logger.info({ listener: where, from: existing.target, to: target }, `${where}: new connections now go to ${target.hostname}:${target.port}`)
          existing.target = { ...target }
        }
        return
      }
      const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true })
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject)
          // exactly the address given: never a wildcard that was not asked for
          server.listen({ host: address, port, exclusive: true }, () => {
            server.off('error', reject)
            resolve()
          })
        })
      } catch (cause) {
        server.close()
        const error = listenError(where, address, port, cause as NodeJS.ErrnoException)
        this.failed.set(key, error)
        throw error
      }
      if (signal?.aborted) {
        server.close()
        throw new NgrokdError('NGROKD_ERR_ABORTED', `in-thread forwarder: listen on ${where} aborted`, { cause: signal.reason })
      }
      const entry: Entry = {
        key,
        address,
        port,
        server,
        target: { ...target },
        conns: new Set(),
        total: 0,
        closedBytesIn: 0,
        closedBytesOut: 0,
        errors: {},
        warnedAt: new Map(),
      }
      server.on('connection', (socket: net.Socket) => this.accept(entry, socket))
      // after listen, 'error' means a failed accept (EMFILE, ENFILE): the server keeps listening
      server.on('error', (err: NodeJS.ErrnoException) => {
        count(entry, err.code ?? 'accept')
        this.warn(entry, err.code ?? 'accept', { listener: where, err: err.message }, `${where}: accept failed: ${err.message}`)
      })
      this.entries.set(key, entry)
      this.failed.delete(key)
      this.logger.debug({ listener: where, target }, `listening on ${where} for ${target.hostname}:${target.port}`)
    })
  }

  unlisten({ address, port, drainMs = 0 }: { address: string; port: number; drainMs?: number }): Promise<void> {
    const key = hostPort(address, port)
    return this.serialize(key, async () => {
      this.failed.delete(key)
      const entry = this.entries.get(key)
      if (!entry) return
      this.entries.delete(key)
      entry.server.close() // stops accepting at once; open connections are ours to drain
      if (entry.conns.size > 0) {
        let timer: NodeJS.Timeout | undefined
        await new Promise<void>((resolve) => {
          entry.onEmpty = resolve
          if (drainMs > 0) timer = setTimeout(() => destroyAll(entry), drainMs)
          else destroyAll(entry)
        })
        clearTimeout(timer)
      }
      this.logger.debug({ listener: key, total: entry.total }, `stopped listening on ${key}`)
    })
  }

  listeners(): ListenerStatus[] {
    const out: ListenerStatus[] = []
    for (const e of this.entries.values()) {
      if (!e.server.listening) continue
      let bytesIn = e.closedBytesIn
      let bytesOut = e.closedBytesOut
      for (const c of e.conns) {
        bytesIn += c.client.bytesRead
        bytesOut += c.client.bytesWritten
      }
      out.push({
        address: e.address,
        port: e.port,
        target: { ...e.target },
        openConnections: e.conns.size,
        totalConnections: e.total,
        bytesIn,
        bytesOut,
        errors: { ...e.errors },
      })
    }
    return out
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
        n += c.client.writableLength + c.client.readableLength
        if (c.up) n += c.up.writableLength + c.up.readableLength
      }
    }
    return n
  }

  async close(): Promise<void> {
    this.closed = true
    await Promise.all([...this.entries.values()].map((e) => this.unlisten({ address: e.address, port: e.port, drainMs: 0 })))
    this.failed.clear()
  }

  async diagnose(): Promise<Check[]> {
    const checks: Check[] = []
    for (const error of this.failed.values()) {
      checks.push({ id: 'forwarder.listen', status: 'fail', summary: error.message, hint: error.hint, code: error.code })
    }
    const ls = this.listeners()
    const open = ls.reduce((n, l) => n + l.openConnections, 0)
    const total = ls.reduce((n, l) => n + l.totalConnections, 0)
    const failed = ls.reduce((n, l) => n + Object.values(l.errors).reduce((a, b) => a + b, 0), 0)
    const last = [...this.entries.values()].map((e) => e.lastError).filter((e) => e !== undefined).at(-1)
    const summary = `in-thread forwarder: ${ls.length} listeners, ${open} open connections, ${total} since start, ${failed} failed`
    checks.push(
      last
        ? { id: 'forwarder.connections', status: 'warn', summary: `${summary}; latest: ${last.message}`, hint: last.hint, code: last.code }
        : { id: 'forwarder.connections', status: 'ok', summary },
    )
    return checks
  }

  private accept(entry: Entry, client: net.Socket): void {
    const conn: Conn = {
      client,
      target: entry.target,
      abort: new AbortController(),
      dialing: true,
      clientClosed: false,
      upClosed: false,
      errorRecorded: false,
      finished: false,
    }
    entry.conns.add(conn)
    entry.total++
    client.on('error', (err: Error) => this.failConn(entry, conn, err, 'client'))
    client.once('close', () => {
      conn.clientClosed = true
      if (conn.dialing) conn.abort.abort()
      else if (conn.up && !cleanlyDone(client)) conn.up.destroy()
      this.maybeFinish(entry, conn)
    })
    const { hostname, port } = conn.target
    this.dialer.dial({ hostname, port, signal: conn.abort.signal }).then(
      (result) => {
        conn.dialing = false
        if (client.destroyed) {
          result.socket.destroy()
          this.maybeFinish(entry, conn)
          return
        }
        this.wire(entry, conn, result)
      },
      (err: unknown) => {
        conn.dialing = false
        if (!conn.abort.signal.aborted) {
          const key = errorKey(err)
          count(entry, key)
          conn.errorRecorded = true
          if (isNgrokdError(err)) entry.lastError = err
          const ngrokCode = (err as { ngrokCode?: string }).ngrokCode
          this.warn(
            entry,
            key,
            { listener: entry.key, hostname, port, code: isNgrokdError(err) ? err.code : undefined, ngrokCode, hint: (err as NgrokdError).hint },
            `${hostname}:${port}: ${(err as Error).message}`,
          )
        }
        reset(client)
        this.maybeFinish(entry, conn)
      },
    )
  }

  private wire(entry: Entry, conn: Conn, { socket: up, early }: DialResult): void {
    const { client } = conn
    conn.up = up
    up.on('error', (err: Error) => this.failConn(entry, conn, err, 'ingress'))
    up.once('close', () => {
      conn.upClosed = true
      if (!cleanlyDone(up)) reset(client)
      this.maybeFinish(entry, conn)
    })
    if (early.length > 0) client.write(early)
    // pipe() pauses the source while the destination's buffer is over its high-water mark (backpressure)
    // and ends the destination's write half when the source ends (half-close; allowHalfOpen on both).
    client.pipe(up)
    up.pipe(client)
    if (this.idleTimeoutMs > 0) {
      // the timer restarts on every read and write of the client socket, so it measures both directions
      client.setTimeout(this.idleTimeoutMs, () => {
        this.logger.debug({ listener: entry.key, hostname: conn.target.hostname }, `closing ${entry.key} connection idle for ${this.idleTimeoutMs} ms`)
        up.destroy()
        client.destroy()
      })
    }
  }

  private failConn(entry: Entry, conn: Conn, err: Error, side: 'client' | 'ingress'): void {
    if (!conn.errorRecorded) {
      conn.errorRecorded = true
      count(entry, errorKey(err))
    }
    this.logger.debug({ listener: entry.key, hostname: conn.target.hostname, side, err: err.message }, `${entry.key}: ${side} connection error`)
    conn.abort.abort()
    conn.up?.destroy()
    if (side === 'ingress') reset(conn.client)
    else conn.client.destroy()
  }

  private maybeFinish(entry: Entry, conn: Conn): void {
    if (conn.finished || conn.dialing || !conn.clientClosed) return
    if (conn.up && !conn.upClosed) return
    conn.finished = true
    entry.conns.delete(conn)
    entry.closedBytesIn += conn.client.bytesRead
    entry.closedBytesOut += conn.client.bytesWritten
    if (entry.conns.size === 0) entry.onEmpty?.()
  }

  private warn(entry: Entry, key: string, obj: object, msg: string): void {
    const now = Date.now()
    const last = entry.warnedAt.get(key)
    if (last !== undefined && now - last < WARN_EVERY_MS) {
      this.logger.debug(obj, msg)
      return
    }
    entry.warnedAt.set(key, now)
    this.logger.warn(obj, msg)
  }

  /** Runs listen/unlisten of one address:port one after another, in call order. */
  private serialize<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(key) ?? Promise.resolve()
    const next = prev.then(fn)
    const tail = next.then(
      () => undefined,
      () => undefined,
    )
    this.queues.set(key, tail)
    void tail.then(() => {
      if (this.queues.get(key) === tail) this.queues.delete(key)
    })
    return next
  }
}

/** Cuts every open connection: reset, since whatever was in flight is lost. */
function destroyAll(entry: Entry): void {
  for (const c of entry.conns) {
    c.abort.abort()
    c.up?.destroy()
    reset(c.client)
  }
}

function count(entry: Entry, key: string): void {
  entry.errors[key] = (entry.errors[key] ?? 0) + 1
}

/** ngrok's code for a refusal, else the NgrokdError code, else the errno code. */
function errorKey(err: unknown): string {
  const e = err as { ngrokCode?: string; code?: unknown }
  if (typeof e?.ngrokCode === 'string' && e.ngrokCode) return e.ngrokCode
  if (typeof e?.code === 'string' && e.code) return e.code
  return 'UNKNOWN'
}

/** Both halves shut down in order: nothing was cut off. */
function cleanlyDone(s: net.Socket): boolean {
  return s.readableEnded && s.writableFinished
}

/** Closes with RST (SO_LINGER 0) so the peer sees a failure, not a clean end. */
function reset(s: net.Socket): void {
  if (s.destroyed) return
  try {
    s.resetAndDestroy()
  } catch {
    s.destroy()
  }
  if (!s.destroyed) s.destroy()
}

function sameTarget(a: ForwardTarget, b: ForwardTarget): boolean {
  return a.hostname === b.hostname && a.port === b.port && a.proto === b.proto
}

function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`
}

function listenError(where: string, address: string, port: number, err: NodeJS.ErrnoException): NgrokdError {
  const code = err.code ?? 'UNKNOWN'
  const hint =
    code === 'EADDRINUSE'
      ? `another program already listens on ${where}; find it with \`ss -ltnp 'sport = :${port}'\` and stop it`
      : code === 'EACCES'
        ? 'ports below 1024 need root or CAP_NET_BIND_SERVICE (setcap cap_net_bind_service+ep $(readlink -f $(which node)))'
        : code === 'EADDRNOTAVAIL'
          ? `${address} is not an address of this machine: the interface driver has to add it first (ngrokd doctor)`
          : undefined
  return new NgrokdError('NGROKD_ERR_LISTEN', `in-thread forwarder: cannot listen on ${where}: ${code}`, { cause: err, hint })
}
