import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isNgrokdError } from '@ngrokd/core'
import { FaultBook } from './fault-book.js'
import type { ApiFault, IngressFault } from './types.js'

describe('FaultBook', () => {
  it('fires a counted fault that many times, in order, only on its path prefix', () => {
    const f = new FaultBook()
    f.addApi({ kind: 'server-error', count: 2, pathPrefix: '/a' })
    f.addApi({ kind: 'rate-limit', count: 1 })
    assert.equal(f.takeApi('GET', '/b').failure?.kind, 'rate-limit')
    assert.equal(f.takeApi('GET', '/b').failure, undefined)
    assert.equal(f.takeApi('GET', '/a/1').failure?.kind, 'server-error')
    assert.equal(f.takeApi('GET', '/a/2').failure?.kind, 'server-error')
    assert.equal(f.takeApi('GET', '/a/3').failure, undefined)
  })

  it('limits a fault to one HTTP method, in any case', () => {
    const f = new FaultBook()
    f.addApi({ kind: 'server-error', status: 503, count: 2, method: 'get' })
    assert.equal(f.takeApi('POST', '/a').failure, undefined)
    assert.equal(f.takeApi('PATCH', '/a').failure, undefined)
    assert.equal(f.takeApi('GET', '/a').failure?.kind, 'server-error')
    assert.equal(f.takeApi('GET', '/b').failure?.kind, 'server-error')
    assert.equal(f.takeApi('GET', '/c').failure, undefined)
  })

  it('keeps a fault without count until reset; latency combines with a failure', () => {
    const f = new FaultBook()
    f.addApi({ kind: 'latency', ms: 5 })
    f.addApi({ kind: 'server-error', count: 1 })
    assert.deepEqual(f.takeApi('GET', '/x'), { latencyMs: 5, failure: { kind: 'server-error', count: 1 } })
    for (let i = 0; i < 10; i++) assert.equal(f.takeApi('GET', '/x').latencyMs, 5)
    f.reset()
    assert.equal(f.takeApi('GET', '/x').latencyMs, 0)
  })

  it('matches ingress faults by host (case-insensitive) and port', () => {
    const f = new FaultBook()
    f.addIngress({ kind: 'refuse', host: 'API.prod', port: 80, count: 1 })
    f.addIngress({ kind: 'cut', afterBytes: 3, host: 'db.prod' })
    assert.equal(f.takeRefusal('api.prod', 81), undefined)
    assert.equal(f.takeRefusal('api.prod', 80)?.kind, 'refuse')
    assert.equal(f.takeRefusal('api.prod', 80), undefined)
    assert.equal(f.takeCut('api.prod'), undefined)
    assert.equal(f.takeCut('db.prod'), 3)
    assert.equal(f.takeHandshakeDelay(), 0)
  })

  it('rejects malformed faults with NGROKD_ERR_CONFIG_INVALID', () => {
    const f = new FaultBook()
    const bad: unknown[] = [
      { kind: 'nope' },
      { kind: 'latency', ms: -1 },
      { kind: 'server-error', status: 404 },
      { kind: 'rate-limit', count: 0 },
      { kind: 'rate-limit', method: 'GET /x' },
    ]
    for (const b of bad) assert.throws(() => f.addApi(b as ApiFault), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'))
    assert.throws(() => f.addIngress({ kind: 'refuse', host: '' } as IngressFault), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'))
  })
})
