import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import net from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { Worker } from 'node:worker_threads'
import { silentLogger } from '../../contracts/logger.js'
import { testForwarder } from '../../testing/suites/forwarder-suite.js'
import { TestFramework } from '../../testing/test-framework.js'
import { closed, connect, describeForwarderBehaviour, readAll, readN, until } from '../forwarder-behaviour.test-helper.js'
import { startFakeIngress } from '../../testing/fake-ingress.js'
import { freePort } from '../../testing/net-probes.js'
import { recordingLogger } from '../../testing/recording-logger.js'
import { createTestPki } from '../../testing/test-pki.js'
import { WorkerPoolForwarder } from './worker-pool-forwarder.js'

const supported = WorkerPoolForwarder.supported()
const skip = !supported.ok ? supported.reason : false

if (!skip) {
  describeForwarderBehaviour('WorkerPoolForwarder (2 workers)', ({ logger, dialer, idleTimeoutMs, limits }) =>
    WorkerPoolForwarder.create({ logger, workers: 2, dialer, idleTimeoutMs, limits }),
    { resetsTold: false },
  )

  const pki = await createTestPki()
  const nowhere = `127.0.0.1:${await freePort()}` // the kit checks the listening side only: its connections fail to dial
  TestFramework.use({ describe, it, beforeAll: before, afterAll: after })
  testForwarder({
    title: 'WorkerPoolForwarder: forwarder conformance',
    create: () => WorkerPoolForwarder.create({ logger: silentLogger, workers: 1, dialer: { credentials: () => pki.clientA, endpoint: () => nowhere, ca: pki.ingressCaPem } }),
  })

  describe('WorkerPoolForwarder: limit slots', () => {
    it('a connection whose client closed gives its slot back at once, not when its task result comes', async () => {
      const ingress = await startFakeIngress({ pki })
      const forwarder = await WorkerPoolForwarder.create({
        logger: silentLogger,
        workers: 1,
        dialer: { credentials: () => pki.clientA, endpoint: () => ingress.endpoint, ca: pki.ingressCaPem },
        limits: { maxConnectionsPerEndpoint: 1 },
      })
      try {
        const port = await freePort()
        await forwarder.listen({ address: '127.0.0.1', port, target: { hostname: 'api.prod', port: 80, proto: 'http' } })
        const roundTrip = async (c: net.Socket, text: string): Promise<void> => {
          const reply = readAll(c)
          c.end(text)
          assert.equal((await reply).toString(), text, 'answered, not refused')
          await closed(c)
        }
        for (let round = 0; round < 5; round++) {
          // when the first connection's end comes, the next client connects, and this thread stops for a second (far
          // longer than the worker takes to close the first): the first's result and the new connection then both wait
          // for this thread, the new one usually first; it must be admitted, one connection being open at a time
          const first = await connect(port)
          const nextConnected = new Promise<net.Socket>((resolve) =>
            first.once('end', () => {
              resolve(net.connect(port, '127.0.0.1'))
              process.nextTick(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000)) // after the connect's own tick
            }),
          )
          await roundTrip(first, 'first')
          await roundTrip(await nextConnected, 'second')
          await until(() => forwarder.listeners()[0]!.openConnections === 0)
        }
        assert.equal(forwarder.listeners()[0]!.refused, 0)
      } finally {
        await forwarder.close()
        await ingress.close()
      }
    })
  })

  describe('WorkerPoolForwarder: worker failures', () => {
    it('a worker that dies ends its connections (its thread\'s teardown closes them: a FIN), counts them, closes their descriptors; new connections work', async () => {
      const ingress = await startFakeIngress({ pki })
      const logger = recordingLogger()
      const forwarder = await WorkerPoolForwarder.create({ logger, workers: 1, dialer: { credentials: () => pki.clientA, endpoint: () => ingress.endpoint, ca: pki.ingressCaPem } })
      try {
        const port = await freePort()
        await forwarder.listen({ address: '127.0.0.1', port, target: { hostname: 'api.prod', port: 80, proto: 'http' } })
        const roundTrip = async (): Promise<void> => {
          const d = await connect(port)
          const reply = readAll(d)
          d.end('again')
          assert.equal((await reply).toString(), 'again')
          await closed(d)
          await until(() => forwarder.listeners()[0]!.openConnections === 0)
        }
        await roundTrip() // the worker is up
        const base = fdCount()
        const c = await connect(port)
        c.on('error', () => {})
        // the worker's descriptor closes with its thread (a FIN: the thread's teardown closes it, no RST)
        c.once('end', () => c.end())
        c.write('x')
        await readN(c, 1)
        const threads = (forwarder as unknown as { pool: { threads: Worker[] } }).pool.threads
        assert.equal(threads.length, 1)
        await threads[0]!.terminate()
        await closed(c)
        await until(() => forwarder.listeners()[0]!.openConnections === 0)
        assert.deepEqual(forwarder.listeners()[0]!.errors, { worker: 1 })
        assert.ok(logger.at('warn').some((r) => /worker task failed/.test(r.msg)))
        const check = (await forwarder.diagnose()).find((x) => x.id === 'forwarder.pool')
        assert.equal(check?.status, 'warn')
        // tinypool starts a replacement: a new connection is carried as usual
        await roundTrip()
        // the dead worker's descriptors (its socket, its event loop's) went with it; the replacement has its own
        await until(() => fdCount() <= base)
      } finally {
        await forwarder.close()
        await ingress.close()
      }
    })

    it('a worker thread that exits before it carried a connection is replaced: a later connection is carried, close() settles', async () => {
      const ingress = await startFakeIngress({ pki })
      const logger = recordingLogger()
      const forwarder = await WorkerPoolForwarder.create({ logger, workers: 1, dialer: { credentials: () => pki.clientA, endpoint: () => ingress.endpoint, ca: pki.ingressCaPem } })
      let closing: Promise<void> | undefined
      try {
        const pool = (forwarder as unknown as { pool: { threads: Array<{ terminate(): Promise<number> }> } }).pool
        assert.equal(pool.threads.length, 1)
        const dead = pool.threads[0]!
        await dead.terminate() // before any connection: no hand-off has looked at it yet
        const port = await freePort()
        await forwarder.listen({ address: '127.0.0.1', port, target: { hostname: 'api.prod', port: 80, proto: 'http' } })
        const c = await connect(port)
        c.on('error', () => {})
        const reply = readAll(c)
        c.end('after the exit')
        assert.equal((await within(10_000, reply, 'the connection hangs'))?.toString(), 'after the exit')
        await closed(c)
        await until(() => forwarder.listeners()[0]!.openConnections === 0)
        assert.ok(!pool.threads.includes(dead), 'the dead thread left the pool')
        assert.ok(logger.at('error').some((r) => /worker thread exited unexpectedly/.test(r.msg)), 'the exit is said')
        closing = forwarder.close()
        await within(10_000, closing, 'close() does not settle')
      } finally {
        if (!closing) await within(10_000, forwarder.close(), 'close() does not settle').catch(() => {}) // the failure is the test's
        await ingress.close()
      }
    })
  })
} else {
  describe('WorkerPoolForwarder', () => {
    it('runs on this platform', { skip }, () => {})
  })
}

/** `p`, failing with `what` when it has not settled after `ms`. */
async function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} (${ms} ms)`)), ms)))
  try {
    return await Promise.race([p, late])
  } finally {
    clearTimeout(timer)
  }
}

function fdCount(): number {
  return readdirSync('/proc/self/fd').length
}
