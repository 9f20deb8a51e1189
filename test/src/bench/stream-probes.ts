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
