// The client certificate is renewed by PATCHing a fresh CSR while the daemon runs, and new
// connections use the new one without a restart: after the first certificate has expired,
// requests by hostname still succeed.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { CloudSimulator } from '@ngrokd/plugin-simulator'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { httpRequest } from '../helpers/clients.js'
import { snapshotHostsFile } from '../helpers/hosts-guard.js'
import { waitUntil } from '../helpers/wait-until.js'

/** Short enough that renewal (once a third of the lifetime is used) and expiry both happen within seconds. */
const VALIDITY_MS = 6_000

describe('certificate renewal without a restart', { skip: netnsSkip }, () => {
  let sim: CloudSimulator
  let daemon: E2eDaemon
  const hosts = snapshotHostsFile()

  before(async () => {
    hosts.take()
    sim = await CloudSimulator.start({ certValidityMs: VALIDITY_MS })
    sim.addEndpoint({ url: 'http://renew.e2e' })
    daemon = E2eDaemon.start({ name: 'renew', sim, net: netDriverCases('renew')[0]! })
    await daemon.waitReady((s) => s.services?.serving === 1)
  })

  after(async () => {
    await daemon?.dispose()
    await sim?.stop()
    hosts.assertRestored()
  })

  test('renews by PATCH with a new key, and serves past the first certificate\'s expiry', async () => {
    const pid = daemon.process.pid
    const certFile = join(daemon.stateDir, 'client.crt')
    const first = new X509Certificate(readFileSync(certFile))
    const firstKey = readFileSync(join(daemon.stateDir, 'client.key'), 'utf8')
    assert.equal((await httpRequest('http://renew.e2e/before')).status, 200)

    const patches = () => sim.apiRequests().filter((r) => r.method === 'PATCH' && r.path.startsWith('/kubernetes_operators/'))
    await waitUntil(() => patches().length > 0, { what: 'a renewal PATCH', timeoutMs: 30_000 })
    await waitUntil(() => Date.now() > new Date(first.validTo).getTime() + 1_000, { what: 'the first certificate to expire', timeoutMs: 30_000 })

    const current = new X509Certificate(readFileSync(certFile))
    assert.notEqual(current.serialNumber, first.serialNumber)
    assert.notEqual(readFileSync(join(daemon.stateDir, 'client.key'), 'utf8'), firstKey, 'a fresh key with each renewal')
    assert.equal((await httpRequest('http://renew.e2e/after')).status, 200)
    assert.equal(daemon.process.pid, pid, 'no restart')
    assert.equal(sim.apiRequests().filter((r) => r.method === 'POST').length, 1, 'still one registration')
    // ngrok's operator PATCHes its whole desired state, never half a binding
    for (const patch of patches()) {
      const body = patch.body as Record<string, any>
      assert.deepEqual(Object.keys(body).sort(), ['binding', 'deployment', 'description', 'enabled_features', 'metadata', 'region'])
      assert.deepEqual(Object.keys(body.binding).sort(), ['csr', 'endpoint_selectors'])
      assert.match(body.binding.csr, /BEGIN CERTIFICATE REQUEST/)
      assert.deepEqual(body.binding.endpoint_selectors, ['true'])
      assert.deepEqual(body.enabled_features, ['bindings'])
      assert.equal(body.region, 'global')
      assert.equal(body.deployment.name, 'ngrokd')
      assert.match(body.deployment.version, /^\d+\.\d+\.\d+/)
    }
  })
})
