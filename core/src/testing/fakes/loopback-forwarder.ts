import { createConnection, createServer, type Server, type Socket } from 'node:net'
import type { Check } from '../../contracts/check.js'
import type { Forwarder, ForwardTarget, ListenerStatus, ListenOptions } from '../../contracts/forwarder.js'
import { silentLogger, type Logger } from '../../contracts/logger.js'
import { NgrokdError, PermissionError } from '../../errors/ngrokd-error.js'
import { isIpv4 } from '../../util/ipv4.js'

/** A plain TCP address each forwarded connection is piped to. */
export interface LoopbackUpstream {
  host: string
  port: number
}

export interface LoopbackForwarderOptions {
  /** Where connections go instead of the binding ingress: fixed, or chosen per target. */
  upstream: LoopbackUpstream | ((target: ForwardTarget) => LoopbackUpstream)
  logger?: Logger
}

interface Listener {
  server: Server
  status: ListenerStatus
  sockets: Set<Socket>
}

/**
 * A Forwarder that really listens (on loopback or any local address) and pipes each accepted
 * connection to a plain local TCP server instead of the binding ingress: no TLS, no ConnRequest.
 * Keeps the Forwarder contract's rules, so the daemon can run end to end without a cloud.
 *
 * ```ts
 * const fwd = new LoopbackForwarder({ upstream: { host: '127.0.0.1', port: echoPort } })
 * await fwd.listen({ address: '127.0.0.1', port: 18080, target: { hostname: 'api.prod', port: 80, proto: 'http' } })
 * ```
 */
export class LoopbackForwarder implements Forwarder {
  readonly forwarder = 'loopback'
  readonly #upstream: LoopbackForwarderOptions['upstream']
  readonly #logger: Logger
  readonly #listeners = new Map<string, Listener>()
  /** Serialises listen/unlisten per address:port. */
  readonly #queues = new Map<string, Promise<unknown>>()

  constructor(options: LoopbackForwarderOptions) {
    this.#upstream = options.upstream
    this.#logger = options.logger ?? silentLogger
  }

  async listen({ address, port, target, signal }: ListenOptions): Promise<void> {
    if (!isIpv4(address) || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new NgrokdError('NGROKD_ERR_DRIVER_MISUSE', `loopback forwarder: cannot listen on ${JSON.stringify(address)}:${port}`, { hint: 'pass an IPv4 address and a port 1–65535' })
    }
    throwIfAborted(signal)
    const key = `${address}:${port}`
    return this.#serial(key, async () => {
      throwIfAborted(signal)
      const existing = this.#listeners.get(key)
      if (existing) {
        existing.status.target = { ...target } // new connections go to the new target
        return
      }
      const listener: Listener = {
        server: createServer({ allowHalfOpen: true }),
        sockets: new Set(),
        status: { address, port, target: { ...target }, openConnections: 0, totalConnections: 0, bytesIn: 0, bytesOut: 0, errors: {} },
      }
      listener.server.on('connection', (socket) => this.#forward(listener, socket))
      await new Promise<void>((resolve, reject) => {
        listener.server.once('error', reject)
        listener.server.listen({ host: address, port, exclusive: true }, () => {
          listener.server.off('error', reject)
          resolve()
        })
      }).catch((cause: NodeJS.ErrnoException) => {
        if (cause.code === 'EACCES' || cause.code === 'EPERM') {
          throw new PermissionError(`loopback forwarder: listen on ${key} refused: ${cause.code}`, { cause, hint: 'ports below 1024 need root or CAP_NET_BIND_SERVICE' })
        }
        throw new NgrokdError('NGROKD_ERR_LISTEN', `loopback forwarder: listen on ${key} failed: ${cause.code ?? cause.message}`, {
          cause,
          hint: cause.code === 'EADDRINUSE' ? 'another program holds this port; stop it or use another address' : 'check that the address is on this machine',
        })
      })
      listener.server.on('error', (e: NodeJS.ErrnoException) => count(listener.status, e))
      this.#listeners.set(key, listener)
    })
  }

  async unlisten({ address, port, drainMs = 0 }: { address: string; port: number; drainMs?: number }): Promise<void> {
    const key = `${address}:${port}`
    return this.#serial(key, async () => {
      const listener = this.#listeners.get(key)
      if (!listener) return
      this.#listeners.delete(key)
      const closed = new Promise<void>((resolve) => listener.server.close(() => resolve()))
      if (drainMs > 0 && listener.sockets.size > 0) {
        let timer: NodeJS.Timeout | undefined
        await Promise.race([closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, drainMs)))])
        clearTimeout(timer)
      }
      for (const socket of listener.sockets) socket.destroy()
      await closed
    })
  }

  listeners(): ListenerStatus[] {
    return [...this.#listeners.values()].map(({ status }) => ({ ...status, target: { ...status.target }, errors: { ...status.errors } }))
  }

  async close(): Promise<void> {
    await Promise.all([...this.#listeners.values()].map(({ status }) => this.unlisten({ address: status.address, port: status.port })))
  }

  async diagnose(): Promise<Check[]> {
    return [{ id: 'loopback-forwarder.listeners', status: 'ok', summary: `${this.#listeners.size} listeners, forwarding to a local TCP server (no ingress)` }]
  }

  #forward(listener: Listener, client: Socket): void {
    const { status } = listener
    status.totalConnections++
    status.openConnections++
    listener.sockets.add(client)
    const to = typeof this.#upstream === 'function' ? this.#upstream({ ...status.target }) : this.#upstream
    const upstream = createConnection({ host: to.host, port: to.port, allowHalfOpen: true })
    listener.sockets.add(upstream)
    let open = 2
    const onClose = (socket: Socket) => () => {
      listener.sockets.delete(socket)
      if (--open === 0) status.openConnections--
    }
    client.on('close', onClose(client))
    upstream.on('close', onClose(upstream))
    client.on('data', (chunk: Buffer) => (status.bytesIn += chunk.length))
    upstream.on('data', (chunk: Buffer) => (status.bytesOut += chunk.length))
    // pipe() ends the other side when one side ends: half-close is carried through
    client.pipe(upstream)
    upstream.pipe(client)
    const fail = (e: NodeJS.ErrnoException) => {
      count(status, e)
      this.#logger.debug({ err: e, address: status.address, port: status.port }, 'loopback forwarder: connection failed')
      client.destroy()
      upstream.destroy()
    }
    client.on('error', fail)
    upstream.on('error', fail)
  }

  async #serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(key) ?? Promise.resolve()
    const run = previous.then(fn, fn)
    const settled = run.catch(() => {})
    this.#queues.set(key, settled)
    try {
      return await run
    } finally {
      if (this.#queues.get(key) === settled) this.#queues.delete(key)
    }
  }
}

function count(status: ListenerStatus, e: NodeJS.ErrnoException): void {
  const code = e.code ?? 'unknown'
  status.errors[code] = (status.errors[code] ?? 0) + 1
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new NgrokdError('NGROKD_ERR_ABORTED', 'loopback forwarder: aborted', { cause: signal.reason })
}
