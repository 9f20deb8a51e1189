import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
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
  )

  const pki = await createTestPki()
  const nowhere = `127.0.0.1:${await freePort()}` // the kit checks the listening side only: its connections fail to dial
  TestFramework.use({ describe, it, beforeAll: before, afterAll: after })
  testForwarder({
    title: 'WorkerPoolForwarder: forwarder conformance',
    create: () => WorkerPoolForwarder.create({ logger: silentLogger, workers: 1, dialer: { credentials: () => pki.clientA, endpoint: () => nowhere, ca: pki.ingressCaPem } }),
  })

  describe('WorkerPoolForwarder: worker failures', () => {
    it('a worker that dies resets its connections, counts them, closes their descriptors; new connections work', async () => {
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
  })
} else {
  describe('WorkerPoolForwarder', () => {
    it('runs on this platform', { skip }, () => {})
  })
}

function fdCount(): number {
  return readdirSync('/proc/self/fd').length
}
