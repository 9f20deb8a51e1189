import assert from 'node:assert/strict'
import net from 'node:net'
import type tls from 'node:tls'
import { after, describe, it } from 'node:test'
import { CarriedConnection } from './carry-connection.js'
import type { Dialer, DialResult } from './ingress-dialer.js'

/** Far above the 50 ms first-byte timeout under test; only a connection that is never closed waits this long. */
const SAFETY_MS = 30_000
const HOUR_MS = 3_600_000
/**
 * The first-byte timeout where a byte passes first: the byte may wait for the event loop as long as the process stalls
 * (a loaded CI machine), so this is far above such a stall, and a connection still open at 2.5 × it was not cut by it.
 */
const FIRST_BYTE_MS = 1_000
const STILL_OPEN_AFTER_MS = 2_500

/**
 * A listener whose connections are carried to an upstream TCP server by a dialer that returns a plain
 * socket to it (what the ingress socket is after the ConnResponse): the carry path alone, timers included.
 */
async function carrying(upstream: (s: net.Socket) => void, timeouts: { idleTimeoutMs: number; firstByteTimeoutMs: number }) {
  const sockets = new Set<net.Socket>()
  const up = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s)
    s.on('error', () => {})
    upstream(s)
  })
  await new Promise<void>((r) => up.listen(0, '127.0.0.1', r))
  const dialer: Dialer = {
    dial: () =>
      new Promise<DialResult>((resolve, reject) => {
        const socket = net.connect({ host: '127.0.0.1', port: (up.address() as net.AddressInfo).port, allowHalfOpen: true })
        socket.once('connect', () => {
          socket.pause()
          resolve({ socket: socket as tls.TLSSocket, response: { endpointId: 'ep_t', proto: 'tcp', errorCode: '', errorMessage: '', notices: [] }, early: Buffer.alloc(0) })
        })
        socket.once('error', reject)
      }),
  }
  const outcomes: Array<Promise<unknown>> = []
  const front = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    outcomes.push(new CarriedConnection({ client, dialer, hostname: 't.prod', port: 1, ...timeouts }).done)
  })
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r))
  return {
    port: (front.address() as net.AddressInfo).port,
    async close() {
      for (const s of sockets) s.destroy()
      await Promise.all(outcomes)
      await Promise.all([up, front].map((s) => new Promise((r) => s.close(r))))
    },
  }
}

/** Resolves 'closed' when the socket closes, or 'open' after `ms`. */
function closedWithin(s: net.Socket, ms: number): Promise<'closed' | 'open'> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('open'), ms)
    s.once('close', () => {
      clearTimeout(timer)
      resolve('closed')
    })
  })
}

describe('the first-byte timeout', () => {
  const cleanups: Array<() => Promise<void>> = []
  after(async () => {
    for (const c of cleanups) await c()
  })

  it('closes a connection on which nothing passed either way, long before the idle timeout', async () => {
    const t = await carrying(() => {}, { idleTimeoutMs: HOUR_MS, firstByteTimeoutMs: 50 })
    cleanups.push(() => t.close())
    const client = net.connect(t.port, '127.0.0.1')
    client.on('error', () => {})
    assert.equal(await closedWithin(client, SAFETY_MS), 'closed')
  })

  it('leaves the idle timeout in charge once a byte passed: a server-first greeting counts', async () => {
    const t = await carrying((s) => s.write('220 greeting\r\n'), { idleTimeoutMs: HOUR_MS, firstByteTimeoutMs: FIRST_BYTE_MS })
    cleanups.push(() => t.close())
    const client = net.connect(t.port, '127.0.0.1')
    await new Promise((resolve, reject) => {
      client.once('data', resolve)
      client.once('close', () => reject(new Error('closed before the greeting came')))
    })
    assert.equal(await closedWithin(client, STILL_OPEN_AFTER_MS), 'open', 'past the first-byte timeout it is still open')
    client.destroy()
  })

  it('and so does the client\'s request', async () => {
    const t = await carrying(() => {}, { idleTimeoutMs: HOUR_MS, firstByteTimeoutMs: FIRST_BYTE_MS })
    cleanups.push(() => t.close())
    const client = net.connect(t.port, '127.0.0.1')
    client.write('hello')
    assert.equal(await closedWithin(client, STILL_OPEN_AFTER_MS), 'open')
    client.destroy()
  })
})
