import { connect } from 'node:net'
import type { Duplex } from 'node:stream'

// Client side of the simulator's bulk backend (`GET <n>\n` → n bytes, then close) for timing: unlike
// the e2e helpers these only count bytes (hashing would cost the client CPU the figure is about).

/** A fresh connection that is ready to carry the bulk command: TCP, or a tunnel after its ConnResponse. */
export type OpenStream = () => Promise<{ socket: Duplex; early: Buffer }>

/** Safety net per exchange; not a performance bound. */
const SAFETY_MS = 120_000

export function tcpOpener(host: string, port: number): OpenStream {
  return () =>
    new Promise((resolve, reject) => {
      const socket = connect({ host, port, allowHalfOpen: true, noDelay: true })
      socket.once('connect', () => {
        socket.off('error', reject)
        resolve({ socket, early: Buffer.alloc(0) })
      })
      socket.once('error', reject)
    })
}

/**
 * Sends `GET <bytes>` on a fresh connection and reads to the end. Returns the milliseconds from
 * before the connection was opened to its first payload byte and to its last, and the count.
 */
export async function bulkExchange(open: OpenStream, bytes: number): Promise<{ firstByteMs: number; totalMs: number; received: number }> {
  const t0 = performance.now()
  const { socket, early } = await open()
  return new Promise((resolve, reject) => {
    let received = early.length
    let firstByteMs = early.length > 0 ? performance.now() - t0 : -1
    const timer = setTimeout(() => finish(new Error(`GET ${bytes}: not finished within ${SAFETY_MS} ms`)), SAFETY_MS)
    let settled = false
    const finish = (err?: Error) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.removeAllListeners('data')
      socket.destroy()
      if (err) return reject(err)
      if (received !== bytes) return reject(new Error(`GET ${bytes}: received ${received} bytes`))
      resolve({ firstByteMs, totalMs: performance.now() - t0, received })
    }
    socket.on('data', (chunk: Buffer) => {
      if (firstByteMs < 0) firstByteMs = performance.now() - t0
      received += chunk.length
    })
    socket.once('end', () => finish())
    socket.once('error', (e) => finish(e))
    socket.once('close', () => finish(new Error(`GET ${bytes}: closed after ${received} bytes without an end`)))
    socket.write(`GET ${bytes}\n`)
    socket.resume()
  })
}

/**
 * Sends `PUT <bytes>` and that many bytes on a fresh connection, then reads the backend's
 * `<count> <sha256>` answer. Returns the milliseconds from before the connection was opened to the answer.
 */
export async function bulkUpload(open: OpenStream, bytes: number): Promise<{ totalMs: number }> {
  const t0 = performance.now()
  const { socket, early } = await open()
  return new Promise((resolve, reject) => {
    let answer = early.toString('latin1')
    const timer = setTimeout(() => finish(new Error(`PUT ${bytes}: not answered within ${SAFETY_MS} ms`)), SAFETY_MS)
    let settled = false
    const finish = (err?: Error) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.removeAllListeners('data')
      socket.destroy()
      if (err) return reject(err)
      const count = Number(answer.split(' ')[0])
      if (count !== bytes) return reject(new Error(`PUT ${bytes}: the backend counted ${JSON.stringify(answer.trim())}`))
      resolve({ totalMs: performance.now() - t0 })
    }
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')))
    socket.once('end', () => finish())
    socket.once('error', (e) => finish(e))
    socket.once('close', () => finish(new Error(`PUT ${bytes}: closed without an answer`)))
    socket.write(`PUT ${bytes}\n`)
    let sent = 0
    const pump = () => {
      while (sent < bytes) {
        const size = Math.min(UPLOAD_CHUNK.length, bytes - sent)
        sent += size
        if (!socket.write(size === UPLOAD_CHUNK.length ? UPLOAD_CHUNK : UPLOAD_CHUNK.subarray(0, size))) {
          socket.once('drain', pump)
          return
        }
      }
    }
    pump()
    socket.resume()
  })
}

/** 64 KiB of upload payload, written again and again (the content does not matter to the figure). */
const UPLOAD_CHUNK = Buffer.alloc(64 * 1024, 0x61)

/** `parallel` downloads of `totalBytes / parallel` bytes each at once; milliseconds from the first open to the last byte. */
export async function parallelDownload(open: OpenStream, totalBytes: number, parallel: number): Promise<{ totalMs: number; bytes: number }> {
  const each = Math.floor(totalBytes / parallel)
  const t0 = performance.now()
  await Promise.all(Array.from({ length: parallel }, () => bulkExchange(open, each)))
  return { totalMs: performance.now() - t0, bytes: each * parallel }
}

/**
 * Opens `count` connections to a tcp-echo endpoint and sends one byte on each, resolving once every
 * echo is back: each connection is then open end to end and idle. `close()` destroys them all.
 */
export async function openIdle(open: OpenStream, count: number): Promise<{ close: () => void }> {
  const sockets: Duplex[] = []
  const close = () => {
    for (const s of sockets) s.destroy()
  }
  try {
    // in batches, so a listen backlog of 511 (Node's default) never overflows
    for (let i = 0; i < count; i += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, count - i) }, async () => {
          const { socket, early } = await open()
          sockets.push(socket)
          socket.on('error', () => {}) // destroyed later; an error here shows as a missing echo
          if (early.length > 0) return
          await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`idle connection: no echo within ${SAFETY_MS} ms`)), SAFETY_MS)
            socket.once('data', () => {
              clearTimeout(timer)
              resolve()
            })
            socket.once('close', () => {
              clearTimeout(timer)
              reject(new Error('idle connection: closed before its echo'))
            })
            socket.write('x')
          })
        }),
      )
    }
  } catch (e) {
    close()
    throw e
  }
  return { close }
}
