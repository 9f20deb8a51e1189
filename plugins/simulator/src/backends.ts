import { createHash } from 'node:crypto'
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https'
import type { Duplex } from 'node:stream'
import type { Logger } from '@ngrokd/core'
import type { SimulatorCa } from './ca.js'
import type { SimEndpoint } from './simulator-state.js'
import type { BackendKind } from './types.js'

/** Byte `i` of every `GET <n>` answer of the bulk backend: a period of 251 (prime) so shifted data shows. */
export const bulkByteAt = (i: number): number => i % 251
const BULK_CHUNK = Buffer.from(Array.from({ length: 251 * 256 }, (_, i) => bulkByteAt(i))) // 64256 bytes, a whole number of periods
const BULK_LINE_MAX = 64

/** What a backend needs to know about its endpoint. */
export type BackendTarget = Pick<SimEndpoint, 'id' | 'backend' | 'host'>

/** What the http-echo and https-echo backends answer to every request, as JSON. */
export interface EchoReply {
  backend: 'http-echo' | 'https-echo'
  method: string
  path: string
  host: string
  endpoint_id: string
  headers: Record<string, string | string[] | undefined>
  /** Bytes of request body received (bodies are read and dropped). */
  body_bytes: number
}

/**
 * The services behind endpoints. They run in-process: the ingress hands each accepted connection to
 * the endpoint's backend as one end of an in-memory socket pair (no extra TCP hop), so the
 * ingress's relay sees backpressure and half-close exactly as with a socket.
 *
 * - `http-echo`: HTTP/1.1 with keep-alive; answers every request with an {@link EchoReply}.
 * - `https-echo`: the same behind TLS, with a certificate for the endpoint's hostname from the
 *   simulator CA, so a client doing TLS end to end through the tunnel can verify it.
 * - `tcp-echo`: echoes every byte; on the client's half-close it finishes sending, then half-closes.
 * - `bulk`: a byte source and sink for benchmarks. One ASCII command line, then:
 *     `GET <n>\n`  → n bytes (byte i = i % 251), then close.
 *     `PUT <n>\n` + n bytes → `<count> <sha256 hex>\n`, then close (also if the client half-closes
 *                  early: count is then what arrived).
 *   Anything else → `ERR <reason>\n`, then close.
 */
export class Backends {
  private readonly servers = new Map<string, HttpServer | HttpsServer>()
  /** Open backend streams per endpoint id. */
  private readonly live = new Map<string, Set<Duplex>>()

  constructor(
    private readonly ca: SimulatorCa,
    private readonly logger: Logger,
  ) {}

  /** Hands one connection to the endpoint's backend. `socket` may be any duplex (a pair end, a TCP socket). */
  serve(endpoint: BackendTarget, socket: Duplex): void {
    socket.on('error', (err) => this.logger.debug({ err, endpoint: endpoint.id }, 'simulator: backend socket error'))
    let set = this.live.get(endpoint.id)
    if (!set) this.live.set(endpoint.id, (set = new Set()))
    const open = set
    open.add(socket)
    socket.once('close', () => {
      open.delete(socket)
      if (open.size === 0 && this.live.get(endpoint.id) === open) this.live.delete(endpoint.id)
    })
    switch (endpoint.backend) {
      case 'http-echo':
      case 'https-echo':
        this.serverFor(endpoint).emit('connection', socket)
        return
      case 'tcp-echo':
        socket.pipe(socket)
        return
      case 'bulk':
        serveBulk(socket)
        return
    }
  }

  /** Aborts the open connections of an endpoint that is gone (an agent going offline) and drops its servers. */
  forget(endpointId: string): void {
    for (const socket of this.live.get(endpointId) ?? []) socket.destroy()
    this.live.delete(endpointId)
    for (const [key, server] of this.servers) {
      if (key.startsWith(`${endpointId}:`)) {
        server.closeAllConnections()
        this.servers.delete(key)
      }
    }
  }

  close(): void {
    for (const id of [...this.live.keys()]) this.forget(id)
    for (const server of this.servers.values()) server.closeAllConnections()
    this.servers.clear()
  }

  private serverFor(endpoint: BackendTarget): HttpServer | HttpsServer {
    const key = `${endpoint.id}:${endpoint.backend}`
    let server = this.servers.get(key)
    if (!server) {
      const kind = endpoint.backend as EchoReply['backend']
      const handler = (req: IncomingMessage, res: ServerResponse) => echo(kind, endpoint.id, req, res)
      if (kind === 'https-echo') {
        const { certPem, keyPem } = this.ca.issueServerCert([endpoint.host])
        server = createHttpsServer({ key: keyPem, cert: certPem }, handler)
      } else {
        server = createHttpServer(handler)
      }
      server.on('clientError', (err, sock: Duplex) => {
        this.logger.debug({ err, endpoint: endpoint.id }, 'simulator: backend client error')
        sock.destroy()
      })
      this.servers.set(key, server)
    }
    return server
  }
}

function echo(backend: EchoReply['backend'], endpointId: string, req: IncomingMessage, res: ServerResponse): void {
  let bodyBytes = 0
  req.on('data', (chunk: Buffer) => {
    bodyBytes += chunk.length
  })
  req.on('end', () => {
    const reply: EchoReply = {
      backend,
      method: req.method ?? '',
      path: req.url ?? '',
      host: req.headers.host ?? '',
      endpoint_id: endpointId,
      headers: req.headers,
      body_bytes: bodyBytes,
    }
    const data = Buffer.from(JSON.stringify(reply))
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': data.length })
    res.end(data)
  })
}

function serveBulk(socket: Duplex): void {
  let line = Buffer.alloc(0)
  const fail = (why: string) => {
    socket.removeAllListeners('data')
    socket.resume()
    closeAfterEnd(socket, `ERR ${why}\n`)
  }
  const onData = (chunk: Buffer) => {
    line = Buffer.concat([line, chunk])
    const nl = line.indexOf(0x0a)
    if (nl < 0) {
      if (line.length > BULK_LINE_MAX) fail('command line too long')
      return
    }
    socket.off('data', onData)
    socket.off('end', onEarlyEnd)
    const cmd = line.subarray(0, nl).toString('latin1').replace(/\r$/, '')
    const rest = line.subarray(nl + 1)
    const m = /^(GET|PUT) (\d{1,15})$/.exec(cmd)
    if (!m) return fail(`unknown command ${JSON.stringify(cmd.slice(0, 32))}`)
    const n = Number(m[2])
    if (m[1] === 'GET') bulkSend(socket, n)
    else bulkReceive(socket, n, rest)
  }
  const onEarlyEnd = () => closeAfterEnd(socket)
  socket.on('data', onData)
  socket.on('end', onEarlyEnd)
}

function bulkSend(socket: Duplex, n: number): void {
  socket.resume() // input after the command is ignored
  let sent = 0
  const pump = () => {
    while (sent < n) {
      const size = Math.min(BULK_CHUNK.length, n - sent)
      sent += size
      const ok = socket.write(size === BULK_CHUNK.length ? BULK_CHUNK : BULK_CHUNK.subarray(0, size))
      if (!ok) {
        socket.once('drain', pump)
        return
      }
    }
    closeAfterEnd(socket)
  }
  pump()
}

function bulkReceive(socket: Duplex, n: number, first: Buffer): void {
  const hash = createHash('sha256')
  let count = 0
  let answered = false
  const take = (chunk: Buffer) => {
    if (answered) return
    const part = chunk.subarray(0, n - count)
    hash.update(part)
    count += part.length
    if (count >= n) answer()
  }
  const answer = () => {
    if (answered) return
    answered = true
    closeAfterEnd(socket, `${count} ${hash.digest('hex')}\n`)
  }
  socket.on('data', take)
  socket.on('end', answer)
  if (first.length > 0) take(first)
  if (n === 0) answer()
}

/** Sends the last bytes and a FIN, then closes fully (later input is not read): the bulk backend's "then close". */
function closeAfterEnd(socket: Duplex, last?: string): void {
  const close = () => socket.destroy()
  if (last === undefined) socket.end(close)
  else socket.end(last, close)
}
