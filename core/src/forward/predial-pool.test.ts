import assert from 'node:assert/strict'
import net from 'node:net'
import { after, before, describe, it } from 'node:test'
import type tls from 'node:tls'
import { PredialPool, type IngressConnection, type PredialOpen } from './predial-pool.js'
import { recordingLogger } from '../testing/recording-logger.js'

/** Lets pending promise callbacks and I/O run. */
const tick = (): Promise<void> => new Promise((r) => setImmediate(r))

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 2))
}

// The pool only needs what a TLS socket shares with a TCP socket; plain TCP on loopback stands in here
// (the TLS paths are tested through IngressDialer).
describe('PredialPool', () => {
  const server = net.createServer()
  const accepted = new Set<net.Socket>()
  let port = 0
  before(async () => {
    server.on('connection', (s) => {
      accepted.add(s.on('error', () => {}))
      s.once('close', () => accepted.delete(s))
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    port = (server.address() as net.AddressInfo).port
  })
  after(async () => {
    for (const s of accepted) s.destroy()
    await new Promise<void>((r) => server.close(() => r()))
  })

  /** Opens a TCP connection to the test server, or hangs until aborted when `hang`. */
  const tcpOpen =
    (counter: { n: number }, hang = false): PredialOpen =>
    (signal, track) =>
      new Promise<IngressConnection>((resolve, reject) => {
        counter.n++
        const raw = net.connect(port, '127.0.0.1')
        track(raw)
        raw.on('error', () => {})
        signal.addEventListener('abort', () => {
          raw.destroy()
          reject(new Error('aborted'))
        })
        if (!hang) raw.once('connect', () => resolve({ socket: raw as unknown as tls.TLSSocket, raw }))
      })

  it('backs off after failed dials ahead, doubling per failure up to the cap, and a success ends it', async () => {
    let now = 1_000_000
    const logger = recordingLogger()
    const pool = new PredialPool({ size: 2, maxAgeMs: 60_000, logger, now: () => now, random: () => 1, backoffInitialMs: 1_000, backoffMaxMs: 4_000 })
    let opens = 0
    const failing: PredialOpen = async () => {
      opens++
      throw new Error('connect ECONNREFUSED')
    }
    pool.fill('k', failing)
    assert.equal(opens, 2)
    await tick()
    assert.deepEqual(pool.stats(), { idle: 0, pending: 0, failures: 2 })
    // the second failure in a row set the delay: 2 × 1 000 ms
    pool.fill('k', failing)
    now += 1_999
    pool.fill('k', failing)
    assert.equal(opens, 2, 'no dial ahead during the backoff')
    now += 1
    pool.fill('k', failing)
    assert.equal(opens, 4)
    await tick()
    // four failures: 8 000 ms, capped at 4 000
    now += 3_999
    pool.fill('k', failing)
    assert.equal(opens, 4)
    now += 1
    const counter = { n: 0 }
    pool.fill('k', tcpOpen(counter))
    assert.equal(counter.n, 2)
    await until(() => pool.stats().idle === 2)
    assert.equal(pool.stats().failures, 0, 'a success ends the backoff')
    assert.equal(logger.at('warn').length, 1, 'one warning per outage, the rest at debug')
    assert.equal(logger.at('debug').length, 3)
    await pool.close()
  })

  it('hands each connection out once, only for its key, and another key closes the old ones', async () => {
    const pool = new PredialPool({ size: 2, maxAgeMs: 60_000, logger: recordingLogger() })
    const counter = { n: 0 }
    pool.fill('a', tcpOpen(counter))
    await until(() => pool.stats().idle === 2)
    const first = pool.take('a')
    const second = pool.take('a')
    assert.ok(first && second)
    assert.notEqual(first.raw, second.raw)
    assert.equal(pool.take('a'), undefined)
    assert.equal(first.socket.isPaused(), true, 'handed out paused: the caller reads it')
    first.raw.destroy()
    second.raw.destroy()

    pool.fill('a', tcpOpen(counter))
    await until(() => pool.stats().idle === 2)
    const held = [...accepted]
    assert.equal(pool.take('b'), undefined, 'a connection of key a is never handed out for b')
    assert.equal(pool.stats().idle, 0)
    await until(() => held.every((s) => s.destroyed))
    await pool.close()
  })

  it('drops a ready connection on any byte from the server (it never speaks before the ConnRequest)', async () => {
    const pool = new PredialPool({ size: 1, maxAgeMs: 60_000, logger: recordingLogger() })
    pool.fill('k', tcpOpen({ n: 0 }))
    await until(() => pool.stats().idle === 1 && accepted.size === 1)
    const [serverSide] = accepted
    serverSide!.write('x')
    await until(() => pool.stats().idle === 0)
    await until(() => accepted.size === 0)
    await pool.close()
  })

  it('close() aborts dials in progress and resolves once every socket it owned is closed', async () => {
    const pool = new PredialPool({ size: 3, maxAgeMs: 60_000, logger: recordingLogger() })
    let tracked = 0
    let closeEvents = 0
    const counter = { n: 0 }
    const open = tcpOpen(counter, true)
    pool.fill('k', (signal, track) =>
      open(signal, (raw) => {
        tracked++
        raw.once('close', () => closeEvents++)
        track(raw)
      }),
    )
    assert.equal(pool.stats().pending, 3)
    await pool.close()
    assert.equal(tracked, 3)
    assert.equal(closeEvents, 3, "every socket's 'close' was emitted before close() resolved")
    assert.deepEqual(pool.stats(), { idle: 0, pending: 0, failures: 0 })
    pool.fill('k', open)
    assert.equal(counter.n, 3, 'a closed pool dials nothing')
  })
})
