import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { dirname } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { silentLogger } from '../contracts/logger.js'
import { testForwarder } from '../testing/suites/forwarder-suite.js'
import { TestFramework } from '../testing/test-framework.js'
import { closed, connect as connectTo, describeForwarderBehaviour, readAll, readN, until } from './forwarder-behaviour.test-helper.js'
import { startFakeIngress } from '../testing/fake-ingress.js'
import { createTestPki } from '../testing/test-pki.js'
import { trafficTotals } from '../daemon/status.js'
import { IngressDialer } from './ingress-dialer.js'
import { InThreadForwarder } from './in-thread-forwarder.js'
import { IngressRefusedError } from './ingress-refused-error.js'
import { OTHER_ERRORS } from './listening-forwarder.js'
import { connect } from 'node:net'
import { freePort } from '../testing/net-probes.js'

describeForwarderBehaviour('InThreadForwarder', async ({ logger, dialer, idleTimeoutMs, limits }) => {
  return new InThreadForwarder({ dialer: new IngressDialer({ logger, ...dialer }), logger, idleTimeoutMs, limits, ownsDialer: true })
})

TestFramework.use({ describe, it, beforeAll: before, afterAll: after })
testForwarder({
  title: 'InThreadForwarder: forwarder conformance',
  // the kit checks the listening side only: connections it makes fail to dial, as they may
  create: () => new InThreadForwarder({ dialer: { dial: () => Promise.reject(new Error('no ingress in the conformance suite')) }, logger: silentLogger }),
})

describe('InThreadForwarder listen errors', () => {
  const privileged = process.platform === 'linux' && process.getuid?.() === 0 && spawnSync('unshare', ['-n', 'true']).status === 0
  it('listen() maps EADDRNOTAVAIL and EACCES (in a private network namespace)', { skip: privileged ? false : 'needs root and unshare -n' }, () => {
    const here = fileURLToPath(import.meta.url)
    const ext = here.endsWith('.ts') ? '.ts' : '.js'
    const moduleUrl = new URL(`./in-thread-forwarder${ext}`, import.meta.url).href
    const script = `
      const { InThreadForwarder } = await import(${JSON.stringify(moduleUrl)})
      const logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child() { return logger } }
      const f = new InThreadForwarder({ dialer: { dial: () => Promise.reject(new Error('unused')) }, logger })
      const target = { hostname: 'api.prod', port: 80, proto: 'http' }
      const out = []
      const attempt = (address, port) => f.listen({ address, port, target }).then(() => out.push({ address, ok: true }), (e) => out.push({ address, code: e.code, message: e.message, hint: e.hint }))
      await attempt('::2', 8080)            // not on any interface of this fresh namespace
      process.setgid(65534); process.setuid(65534)
      await attempt('127.0.0.1', 80)        // a privileged port, now as nobody
      await f.close()
      console.log(JSON.stringify(out))
    `
    const args = [...(ext === '.ts' ? ['--import', 'tsx'] : []), '--input-type=module', '-e', script]
    const r = spawnSync('unshare', ['-n', process.execPath, ...args], { cwd: dirname(here), encoding: 'utf8' })
    assert.equal(r.status, 0, r.stderr)
    const [notAvail, denied] = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Array<{ code: string; message: string; hint: string }>
    assert.equal(notAvail!.code, 'NGROKD_ERR_LISTEN')
    assert.match(notAvail!.message, /\[::2\]:8080: EADDRNOTAVAIL/)
    assert.match(notAvail!.hint, /interface driver has to add it/)
    assert.equal(denied!.code, 'NGROKD_ERR_LISTEN')
    assert.match(denied!.message, /127\.0\.0\.1:80: EACCES/)
    assert.match(denied!.hint, /CAP_NET_BIND_SERVICE/)
  })

})

describe('InThreadForwarder: what refusals leave behind', () => {
  it('counts a refusal under its ngrok code only when it has the form ERR_NGROK_<n>, at most 32 codes a listener, and keeps what the ingress said short', async () => {
    let n = 0
    const huge = 'Z'.repeat(60_000)
    // 40 codes of ngrok's form, then codes an ingress made up: each of 60 KB and each another
    const dial = () => {
      n++
      return Promise.reject(new IngressRefusedError('api.prod', 80, n <= 40 ? `ERR_NGROK_${n}` : `ERR_${n}_${huge}`, huge))
    }
    const f = new InThreadForwarder({ dialer: { dial }, logger: silentLogger })
    try {
      const port = await freePort()
      await f.listen({ address: '127.0.0.1', port, target: { hostname: 'api.prod', port: 80, proto: 'tcp' } })
      for (let i = 0; i < 60; i++) {
        const socket = connect(port, '127.0.0.1')
        socket.on('error', () => {}) // a refused connection is reset
        await new Promise((resolve) => socket.once('close', resolve))
      }
      const counted = () => Object.values(f.listeners()[0]!.errors).reduce((a, b) => a + b, 0)
      await until(() => counted() === 60) // the last failure is counted after its client saw the close
      const errors = f.listeners()[0]!.errors
      assert.equal(Object.keys(errors).length, 33, JSON.stringify(Object.keys(errors)))
      assert.ok(Object.keys(errors).every((k) => /^ERR_NGROK_\d+$/.test(k) || k === OTHER_ERRORS || k === 'NGROKD_ERR_INGRESS_REFUSED'), JSON.stringify(Object.keys(errors)))
      assert.equal(errors[OTHER_ERRORS], 60 - 32)
      const last = (await f.diagnose()).map((c) => `${c.summary} ${c.hint ?? ""}`).join('\n')
      assert.ok(last.length < 5_000, `diagnose quotes what the ingress said cut short (${last.length} characters)`)
    } finally {
      await f.close()
    }
  })
})

describe('InThreadForwarder: listeners unlistened', () => {
  it('unlistened() counts the open connections of a listener while it drains, and keeps its counters after, so totals never go backwards', async () => {
    const pki = await createTestPki()
    const ingress = await startFakeIngress({ pki })
    const f = new InThreadForwarder({ dialer: new IngressDialer({ logger: silentLogger, credentials: () => pki.clientA, endpoint: () => ingress.endpoint, ca: pki.ingressCaPem }), logger: silentLogger, ownsDialer: true })
    try {
      const [port, other] = [await freePort(), await freePort()]
      await f.listen({ address: '127.0.0.1', port, target: { hostname: 'hold.prod', port: 7000, proto: 'tcp' } })
      await f.listen({ address: '127.0.0.1', port: other, target: { hostname: 'added.prod', port: 80, proto: 'http' } })
      const c = await connectTo(port)
      c.write('hello')
      assert.equal((await readN(c, 5)).toString(), 'hello')
      const before = trafficTotals([...f.listeners(), f.unlistened()])
      assert.deepEqual([before.connections, before.bytesIn, before.bytesOut], [1, 5, 5])

      const drained = f.unlisten({ address: '127.0.0.1', port, drainMs: 60_000 })
      await until(() => f.listeners().length === 1)
      assert.deepEqual(f.unlistened(), { openConnections: 1, totalConnections: 1, bytesIn: 5, bytesOut: 5, errors: {}, refused: 0, handshake: f.unlistened().handshake }, 'draining: its connection is open')
      assert.equal(f.unlistened().handshake!.count, 1)
      c.write('more')
      assert.equal((await readN(c, 4)).toString(), 'more')
      await until(() => f.unlistened().bytesOut === 9)

      const rest = readAll(c)
      c.end()
      await rest
      await closed(c)
      await drained
      const gone = f.unlistened()
      assert.deepEqual([gone.openConnections, gone.totalConnections, gone.bytesIn, gone.bytesOut], [0, 1, 9, 9], 'drained: its counters stay')
      const after = trafficTotals([...f.listeners(), gone])
      assert.deepEqual([after.connections, after.bytesIn, after.bytesOut], [1, 9, 9])
      assert.equal(after.meanHandshakeMs, before.meanHandshakeMs)
    } finally {
      await f.close()
      await ingress.close()
    }
  })
})
