import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { defaultConfig } from '../config/resolve-config.js'
import { AUTO_MAX_WORKERS, FORWARDER_DEFAULTS, createForwarder, resolveWorkerCount } from './create-forwarder.js'
import { recordingLogger } from '../testing/recording-logger.js'
import { WorkerPoolForwarder } from './pool/worker-pool-forwarder.js'

const ingress = { credentials: () => ({ certPem: '', keyPem: '' }), endpoint: () => '127.0.0.1:1' }
const poolWorks = process.platform === 'linux'

describe('createForwarder', () => {
  it('FORWARDER_DEFAULTS are the forwarder.* defaults of the configuration schema', () => {
    assert.deepEqual({ ...FORWARDER_DEFAULTS }, defaultConfig('/').forwarder)
  })

  it('resolveWorkerCount: a number as given; auto = in-thread up to 2 cores, else cores - 1, at most AUTO_MAX_WORKERS', () => {
    assert.equal(resolveWorkerCount(0, 8), 0)
    assert.equal(resolveWorkerCount(3, 1), 3)
    assert.equal(resolveWorkerCount('auto', 1), 0)
    assert.equal(resolveWorkerCount('auto', 2), 0)
    assert.equal(resolveWorkerCount('auto', 3), 2)
    assert.equal(resolveWorkerCount('auto', 4), 3)
    assert.equal(resolveWorkerCount('auto', 64), AUTO_MAX_WORKERS)
    assert.ok(resolveWorkerCount('auto') >= 0)
  })

  it('workers 0 → the in-thread forwarder', async () => {
    const f = await createForwarder({ logger: recordingLogger(), settings: { workers: 0 }, ingress })
    assert.equal(f.forwarder, 'in-thread')
    assert.deepEqual(f.mode, { kind: 'in-thread', reason: 'forwarder.workers is 0' })
    await f.close()
  })

  it('workers ≥ 1 → the worker pool where sockets can be handed to threads, else in-thread with the reason logged', async () => {
    const logger = recordingLogger()
    const f = await createForwarder({ logger, settings: { workers: 1 }, ingress })
    try {
      assert.equal(f.forwarder, poolWorks ? 'worker-pool' : 'in-thread')
      assert.deepEqual(f.mode, poolWorks ? { kind: 'worker-pool', workers: 1 } : { kind: 'in-thread', reason: `handing sockets to worker threads is implemented for Linux only, not ${process.platform}` })
      if (!poolWorks) assert.ok(logger.at('info').some((r) => /main thread/.test(r.msg)))
    } finally {
      await f.close()
    }
  })

  it('on Windows and macOS connections are carried on the main thread, and the reason says so', () => {
    for (const platform of ['win32', 'darwin'] as const) {
      assert.deepEqual(WorkerPoolForwarder.supported(platform), { ok: false, reason: `handing sockets to worker threads is implemented for Linux only, not ${platform}` })
    }
    assert.deepEqual(WorkerPoolForwarder.supported('linux'), { ok: true })
  })

  it('a custom host lookup keeps forwarding on the main thread (it cannot cross to a worker)', async () => {
    const logger = recordingLogger()
    const f = await createForwarder({ logger, settings: { workers: 2 }, ingress: { ...ingress, lookup: () => {} } })
    assert.equal(f.forwarder, 'in-thread')
    if (poolWorks) assert.deepEqual(f.mode, { kind: 'in-thread', reason: 'a custom host lookup cannot run in worker threads' })
    if (poolWorks) assert.ok(logger.at('info').some((r) => /custom host lookup/.test(r.msg)))
    await f.close()
  })
})
