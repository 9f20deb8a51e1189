import assert from 'node:assert/strict'
import type dns from 'node:dns'
import type net from 'node:net'
import { after, before, describe, it } from 'node:test'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { startFakeIngress, type FakeIngress } from '../testing/fake-ingress.js'
import { freePort } from '../testing/net-probes.js'
import { recordingLogger } from '../testing/recording-logger.js'
import { createTestPki, type TestPki } from '../testing/test-pki.js'
import { IngressDialer } from './ingress-dialer.js'
import { IngressLookup } from './ingress-lookup.js'

type Answer = { err: NodeJS.ErrnoException | null; address: string | dns.LookupAddress[]; family?: number }

/** A resolver that answers 127.0.0.1 (or fails while `failing`) and records every question. */
function countingResolver(): { resolve: net.LookupFunction; asked: string[]; failing: boolean } {
  const r = {
    asked: [] as string[],
    failing: false,
    resolve: ((hostname, options, callback) => {
      r.asked.push(`${hostname}/${options.family ?? 0}`)
      const cb = callback as (err: NodeJS.ErrnoException | null, address?: string | dns.LookupAddress[], family?: number) => void
      if (r.failing) setImmediate(() => cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' })))
      else if (options.all) setImmediate(() => cb(null, [{ address: '127.0.0.1', family: 4 }]))
      else setImmediate(() => cb(null, '127.0.0.1', 4))
    }) as net.LookupFunction,
  }
  return r
}

function ask(lookup: net.LookupFunction, hostname: string, options: dns.LookupOptions = {}): Promise<Answer> {
  return new Promise((resolve) => lookup(hostname, options, (err, address, family) => resolve({ err, address, family })))
}

describe('IngressLookup', () => {
  it('answers from what it kept until the TTL has passed, then asks again', async () => {
    const r = countingResolver()
    let now = 0
    const l = new IngressLookup(r.resolve, 1_000, () => now)
    const first = await ask(l.lookup, 'ingress.test', { all: true })
    now = 999
    const second = await ask(l.lookup, 'ingress.test', { all: true })
    assert.deepEqual(second, first)
    assert.deepEqual(second.address, [{ address: '127.0.0.1', family: 4 }])
    assert.deepEqual(r.asked, ['ingress.test/0'])
    now = 1_000
    await ask(l.lookup, 'ingress.test', { all: true })
    assert.deepEqual(r.asked, ['ingress.test/0', 'ingress.test/0'])
  })

  it('keeps answers apart by host and by the options asked with', async () => {
    const r = countingResolver()
    const l = new IngressLookup(r.resolve, 1_000, () => 0)
    assert.deepEqual(await ask(l.lookup, 'a.test', { family: 4 }), { err: null, address: '127.0.0.1', family: 4 })
    await ask(l.lookup, 'a.test', { family: 4, all: true })
    await ask(l.lookup, 'a.test', { family: 6 })
    await ask(l.lookup, 'b.test', { family: 4 })
    await ask(l.lookup, 'a.test', { family: 4 })
    assert.deepEqual(r.asked, ['a.test/4', 'a.test/4', 'a.test/6', 'b.test/4'])
  })

  it('keeps no failure, and forget() drops one host only', async () => {
    const r = countingResolver()
    const l = new IngressLookup(r.resolve, 1_000, () => 0)
    r.failing = true
    const failed = await ask(l.lookup, 'a.test')
    assert.equal(failed.err?.code, 'ENOTFOUND')
    r.failing = false
    assert.equal((await ask(l.lookup, 'a.test')).address, '127.0.0.1')
    await ask(l.lookup, 'b.test')
    l.forget('a.test')
    await ask(l.lookup, 'a.test')
    await ask(l.lookup, 'b.test')
    assert.deepEqual(r.asked, ['a.test/0', 'a.test/0', 'b.test/0', 'a.test/0'])
  })

  it('hands each caller its own copy of a list answer', async () => {
    const l = new IngressLookup(countingResolver().resolve, 1_000, () => 0)
    const one = await ask(l.lookup, 'a.test', { all: true })
    ;(one.address as dns.LookupAddress[]).length = 0
    assert.deepEqual((await ask(l.lookup, 'a.test', { all: true })).address, [{ address: '127.0.0.1', family: 4 }])
  })
})

describe('IngressDialer: the ingress address', { timeout: 60_000 }, () => {
  let pki: TestPki
  let ingress: FakeIngress
  before(async () => {
    pki = createTestPki()
    ingress = await startFakeIngress({ pki })
  })
  after(() => ingress.close())

  it('is resolved once while connections succeed, and again after a connect failed', async () => {
    const r = countingResolver()
    const closedPort = await freePort()
    let port = ingress.port
    const d = new IngressDialer({ logger: recordingLogger(), credentials: () => pki.clientA, endpoint: () => `ingress.test:${port}`, ca: pki.ingressCaPem, lookup: r.resolve })
    try {
      const dial = async (): Promise<string> => {
        try {
          ;(await d.dial({ hostname: 'api.prod', port: 80 })).socket.destroy()
          return 'ok'
        } catch (e) {
          assert.ok(isNgrokdError(e, 'NGROKD_ERR_INGRESS_UNREACHABLE'), String(e))
          return 'unreachable'
        }
      }
      const results = [await dial(), await dial()]
      const asked = [r.asked.length]
      port = closedPort // the same name, an address where nothing listens: as if the ingress had moved
      results.push(await dial(), await dial())
      asked.push(r.asked.length)
      port = ingress.port
      results.push(await dial(), await dial())
      asked.push(r.asked.length)
      assert.deepEqual(results, ['ok', 'ok', 'unreachable', 'unreachable', 'ok', 'ok'])
      // 1 for both successes; the first failure used the kept answer and dropped it, the second resolved afresh; then 1 more
      assert.deepEqual(asked, [1, 2, 3])
    } finally {
      await d.close()
    }
  })
})
