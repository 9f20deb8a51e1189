import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isNgrokdError } from '@ngrokd/core'
import { benchDial } from './dial-bench.js'

// Figures are not asserted (benchmarks are not tests); what each mode did is.
describe('benchDial', { timeout: 120_000 }, () => {
  it('measures full handshakes against its own ingress process', async () => {
    const r = await benchDial({ connections: 20, resumption: false, predial: 0, warmup: 2, gapMs: 0 })
    assert.equal(r.connections, 20)
    assert.equal(r.resumed, 0)
    assert.equal(r.predialled, 0)
    assert.ok(r.p50Ms > 0 && r.p50Ms <= r.p99Ms, JSON.stringify(r))
    assert.ok(r.cpuUsPerConn > 0)
  })

  it('measures resumed sessions: every measured connection resumes', async () => {
    const r = await benchDial({ connections: 20, resumption: true, predial: 0, warmup: 2, gapMs: 0 })
    assert.equal(r.resumed, 20)
    assert.equal(r.predialled, 0)
  })

  it('measures connections dialled ahead', async () => {
    const r = await benchDial({ connections: 20, resumption: true, predial: 2, warmup: 2, gapMs: 5 })
    assert.ok(r.predialled > 0, JSON.stringify(r))
    assert.equal(r.resumed, 20)
  })

  it('rejects a count that is not a positive integer', async () => {
    await assert.rejects(benchDial({ connections: 0, resumption: true, predial: 0 }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'))
  })
})
