import { request as httpRequestRaw, type IncomingHttpHeaders } from 'node:http'
import { request as httpsRequestRaw } from 'node:https'
import { connect, type Socket } from 'node:net'
import { createHash, randomBytes } from 'node:crypto'

// Every client here resolves hostnames through the system resolver (dns.lookup → /etc/hosts), which
// is the point of the end-to-end tests, and never reuses a connection (agent: false): each request is
// one forwarded connection.

/** Safety net for one exchange; a hang fails the test instead of the suite. Not a performance bound. */
const SAFETY_TIMEOUT_MS = 30_000

export interface HttpReply {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
  json<T = Record<string, any>>(): T
}

export interface HttpRequestOptions {
  method?: string
  headers?: Record<string, string>
  body?: Buffer | string
  /** https only: trust roots for the backend's certificate (servername = the URL's hostname). */
  ca?: string
}

/** One HTTP(S) request on a fresh connection. Rejects on a connection that closes without a reply. */
export function httpRequest(url: string, options: HttpRequestOptions = {}): Promise<HttpReply> {
  const u = new URL(url)
  const send = u.protocol === 'https:' ? httpsRequestRaw : httpRequestRaw
  return new Promise<HttpReply>((resolve, reject) => {
    const req = send(
      u,
      {
        method: options.method ?? 'GET',
        headers: options.headers,
        agent: false,
        timeout: SAFETY_TIMEOUT_MS,
        ...(u.protocol === 'https:' ? { ca: options.ca, allowPartialTrustChain: true, servername: u.hostname, rejectUnauthorized: true } : {}),
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('error', reject)
        res.on('end', () => {
          const body = Buffer.concat(chunks)
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body.toString('utf8')) })
        })
      },
    )
    req.on('timeout', () => req.destroy(new Error(`${url}: no answer within ${SAFETY_TIMEOUT_MS} ms`)))
    req.on('error', reject)
    req.end(options.body)
  })
}

function open(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, allowHalfOpen: true })
    socket.once('connect', () => {
      socket.off('error', reject)
      resolve(socket)
    })
    socket.once('error', reject)
  })
}

export interface TcpExchange {
  received: Buffer
  /** The peer ended its side cleanly (FIN) rather than resetting. */
  ended: boolean
  error?: NodeJS.ErrnoException
}

/**
 * Connects, writes `payload`, ends the write side at once (half-close) and reads until the peer ends
 * or resets. An echo that arrives in full proves the read side stayed open after our FIN.
 */
export async function tcpExchange(host: string, port: number, payload: Buffer): Promise<TcpExchange> {
  return readUntilClosed(await open(host, port), 'no end', (socket) => socket.end(payload))
}

/** The outcome of a connection that is expected to be closed by the far side without an answer. */
export async function connectAndSend(host: string, port: number, payload: Buffer | string): Promise<TcpExchange & { connectError?: NodeJS.ErrnoException }> {
  let socket: Socket
  try {
    socket = await open(host, port)
  } catch (e) {
    return { received: Buffer.alloc(0), ended: false, connectError: e as NodeJS.ErrnoException }
  }
  // no end(): only the far side may close this connection
  return readUntilClosed(socket, 'still open', (s) => s.write(payload))
}

/** Collects what `socket` receives after `send` until the peer ends, resets or closes it, or {@link SAFETY_TIMEOUT_MS} passes (`timeoutText` says which). */
function readUntilClosed(socket: Socket, timeoutText: string, send: (socket: Socket) => void): Promise<TcpExchange> {
  return new Promise<TcpExchange>((resolve) => {
    const chunks: Buffer[] = []
    let ended = false
    let settled = false
    const done = (error?: NodeJS.ErrnoException) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve({ received: Buffer.concat(chunks), ended, error })
    }
    const where = `${socket.remoteAddress}:${socket.remotePort}`
    const timer = setTimeout(() => done(Object.assign(new Error(`${where}: ${timeoutText} after ${SAFETY_TIMEOUT_MS} ms`), { code: 'ETIMEDOUT' })), SAFETY_TIMEOUT_MS)
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('end', () => {
      ended = true
      done()
    })
    socket.on('error', (e) => done(e))
    socket.on('close', () => done())
    send(socket)
  })
}

/** Resolves true when a TCP connection to host:port is accepted (and closes it), false on refusal. */
export async function canConnect(host: string, port: number): Promise<boolean> {
  try {
    const s = await open(host, port)
    s.destroy()
    return true
  } catch {
    return false
  }
}

export interface DuplexResult {
  sentSha256: string
  receivedSha256: string
  sentBytes: number
  receivedBytes: number
}

/**
 * Streams `bytes` of random data to an echo service while reading the echo back (both directions at
 * once, with backpressure on our side), half-closes after the last byte, and hashes both directions.
 */
export async function echoStream(host: string, port: number, bytes: number): Promise<DuplexResult> {
  const socket = await open(host, port)
  const sent = createHash('sha256')
  const received = createHash('sha256')
  let receivedBytes = 0
  const reading = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${host}:${port}: echo of ${bytes} bytes not finished within ${SAFETY_TIMEOUT_MS * 4} ms`)), SAFETY_TIMEOUT_MS * 4)
    socket.on('data', (c: Buffer) => {
      received.update(c)
      receivedBytes += c.length
    })
    socket.on('end', () => {
      clearTimeout(timer)
      resolve()
    })
    socket.on('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
  })
  reading.catch(() => {}) // awaited below; this only keeps an early error from counting as unhandled
  const chunk = 1 << 20
  let sentBytes = 0
  while (sentBytes < bytes) {
    const block = randomBytes(Math.min(chunk, bytes - sentBytes))
    sent.update(block)
    sentBytes += block.length
    if (!socket.write(block)) {
      await new Promise<void>((resolve, reject) => {
        const onErr = (e: Error) => reject(e)
        socket.once('error', onErr)
        socket.once('drain', () => {
          socket.off('error', onErr)
          resolve()
        })
      })
    }
  }
  socket.end()
  try {
    await reading
  } finally {
    socket.destroy()
  }
  return { sentSha256: sent.digest('hex'), receivedSha256: received.digest('hex'), sentBytes, receivedBytes }
}
