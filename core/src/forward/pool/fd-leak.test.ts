// No fd or socket leak: 100,000 connections through each forwarder, then the process holds no more
// descriptors than before (Linux: counted in /proc/self/fd).
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import net from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { Forwarder } from '../../contracts/forwarder.js'
import { createForwarder } from '../create-forwarder.js'
import { startFakeIngress, type FakeIngress } from '../../testing/fake-ingress.js'
import { freePort } from '../../testing/net-probes.js'
import { recordingLogger } from '../../testing/recording-logger.js'
import { createTestPki, type TestPki } from '../../testing/test-pki.js'

const TOTAL = 100_000
/** Connections in flight at once. */
const BATCH = 200
/** Per-listener limit: above {@link BATCH}, so only the listener held at its limit refuses. */
const PER_ENDPOINT = 250
/** Descriptors that may come and go on their own (libuv, the test runner's pipes, a worker's TLS cache). */
const SLACK = 16
/**
 * The test's own bounds, far above the work they guard so a slow or busy machine never trips them: the run
 * takes ~100 s on 2 cores (more with both cores busy), a leaked socket keeps its client waiting until the
 * runner's timeout fails it, and closed sockets leave /proc/self/fd within milliseconds.
 */
const RUN_TIMEOUT_MS = 30 * 60_000
const FD_SETTLE_MS = 60_000

const skip =
  process.platform !== 'linux' ? 'counts descriptors in /proc/self/fd (Linux)' : false

function fdCount(): number {
  return readdirSync('/proc/self/fd').length
}

type Outcome = 'echoed' | 'reset' | 'aborted'

/**
 * One client connection. Kinds by `i`: every 7th closes at once (before the dial is done); the others
 * send a byte and end after the echo, or see the reset of a failed dial or a refusal.
 */
function client(port: number, i: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true })
    let outcome: Outcome = 'reset'
    s.on('error', () => {})
    s.on('connect', () => {
      if (i % 7 === 0) {
        outcome = 'aborted'
        s.destroy()
        return
      }
      s.write('x')
    })
    s.on('data', () => {
      outcome = 'echoed'
      s.end()
    })
    s.on('end', () => s.end())
    s.once('close', () => resolve(outcome))
  })
}

describe('no descriptor leak over 100,000 connections', { skip }, () => {
  let pki: TestPki
  let ingress: FakeIngress
  let dead: string
  before(async () => {
    pki = await createTestPki()
    ingress = await startFakeIngress({ pki })
    dead = `127.0.0.1:${await freePort()}` // nothing listens: the dial fails fast (ECONNREFUSED)
  })
  after(() => ingress.close())

  for (const workers of [2, 0]) {
    // a descriptor leaked with its socket keeps that connection open and its client waiting: the runner's timeout fails it
    it(`${workers === 0 ? 'in-thread' : `worker pool (${workers} workers)`}: forwarded, failed, refused and aborted connections leave no descriptor behind`, { timeout: RUN_TIMEOUT_MS }, async () => {
      let holding = true
      let n = 0
      const logger = recordingLogger()
      const forwarder: Forwarder = await createForwarder({
        logger,
        // no idle or first-byte timeout: the holders must stay open however long the run takes on this machine
        settings: { workers, maxConnectionsPerEndpoint: PER_ENDPOINT, idleTimeoutMs: 0, firstByteTimeoutMs: 0 },
        // past the holders, one connection in ten reaches the live ingress (full mTLS and echo); the others fail to dial
        ingress: { credentials: () => pki.clientA, endpoint: () => (holding || n++ % 10 === 0 ? ingress.endpoint : dead), ca: pki.ingressCaPem },
      })
      try {
        assert.equal(forwarder.forwarder, workers === 0 ? 'in-thread' : 'worker-pool')
        const full = await freePort() // held at its limit: every connection to it is refused
        const port = await freePort()
        const target = { hostname: 'api.prod', port: 80, proto: 'http' } as const
        await forwarder.listen({ address: '127.0.0.1', port: full, target })
        await forwarder.listen({ address: '127.0.0.1', port, target })
        const holders = await Promise.all(Array.from({ length: PER_ENDPOINT }, () => hold(full)))
        holding = false
        // warm up (worker threads, TLS contexts), then take the baseline
        for (let i = 1; i <= 20; i++) await client(port, i)
        const status = (p: number) => forwarder.listeners().find((l) => l.port === p)!
        await until(() => status(port).openConnections === 0)
        const base = fdCount()

        const outcomes: Record<Outcome, number> = { echoed: 0, reset: 0, aborted: 0 }
        let toFull = 0
        for (let start = 0; start < TOTAL; start += BATCH) {
          const batch = await Promise.all(
            Array.from({ length: Math.min(BATCH, TOTAL - start) }, (_, k) => {
              const i = start + k
              if (i % 10 !== 5) return client(port, i)
              toFull++
              return client(full, i)
            }),
          )
          for (const o of batch) outcomes[o]++
        }
        await until(() => status(port).openConnections === 0)
        // every connection was either forwarded (admitted) or refused, nothing lost or counted twice
        assert.equal(status(full).refused, toFull)
        assert.equal(status(full).totalConnections, PER_ENDPOINT)
        assert.equal(status(port).totalConnections + status(port).refused! - 20, TOTAL - toFull, JSON.stringify(status(port)))
        assert.ok(outcomes.echoed > TOTAL / 20, JSON.stringify(outcomes))
        assert.ok((status(port).errors.NGROKD_ERR_INGRESS_UNREACHABLE ?? 0) > TOTAL / 2, JSON.stringify(status(port).errors))

        // sockets close asynchronously on the ingress side too: give them time, bounded far above what they need
        let now = fdCount()
        for (const deadline = Date.now() + FD_SETTLE_MS; now > base + SLACK && Date.now() < deadline; now = fdCount()) {
          await new Promise((r) => setTimeout(r, 10))
        }
        assert.ok(now <= base + SLACK, `descriptors: ${base} before, ${now} after ${TOTAL} connections`)
        for (const h of holders) h.end()
        await until(() => status(full).openConnections === 0)
      } finally {
        await forwarder.close()
      }
    })
  }
})

/** A connection that went through (the echo answered) and stays open. */
function hold(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => s.write('h'))
    s.once('data', () => resolve(s))
    s.once('error', reject)
  })
}

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5))
}
