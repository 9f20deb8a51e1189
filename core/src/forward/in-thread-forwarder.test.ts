import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { dirname } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { silentLogger } from '../contracts/logger.js'
import { testForwarder } from '../testing/suites/forwarder-suite.js'
import { TestFramework } from '../testing/test-framework.js'
import { describeForwarderBehaviour } from './forwarder-behaviour.test-helper.js'
import { IngressDialer } from './ingress-dialer.js'
import { InThreadForwarder } from './in-thread-forwarder.js'

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
