// A stop never waits for the ngrok API: with the API hanging on every call (and api.timeout far
// longer than any stop), SIGTERM still drains, cleans up and exits. Before, the poll in flight
// could not be cancelled and a stop took as long as the API hung.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { CloudSimulator } from '@ngrokd/plugin-simulator'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { snapshotHostsFile } from '../helpers/hosts-guard.js'
import { readHosts } from '../helpers/hosts-file.js'
import { waitUntil } from '../helpers/wait-until.js'

/** Far longer than E2eDaemon.stop()'s 30 s safety net: a stop that waited for the API would fail the test. */
const HANG_MS = 600_000

describe('stop with the API hanging', { skip: netnsSkip }, () => {
  let sim: CloudSimulator
  let daemon: E2eDaemon
  const hosts = snapshotHostsFile()

  before(async () => {
    hosts.take()
    sim = await CloudSimulator.start()
    sim.addEndpoint({ url: 'http://hang.e2e' })
    daemon = E2eDaemon.start({ name: 'hang', sim, net: netDriverCases('hang')[0]!, extraConfig: { api: { timeout: '15m' } } })
    await daemon.waitReady((s) => s.services?.serving === 1)
  })

  after(async () => {
    sim?.resetFaults()
    await daemon?.dispose()
    await sim?.stop()
    hosts.assertRestored()
  })

  test('SIGTERM during a hung poll exits cleanly, names and addresses removed', async () => {
    sim.injectApiFault({ kind: 'latency', ms: HANG_MS, pathPrefix: '/kubernetes_operators' })
    void daemon.process.poll().catch(() => {}) // a poll now, which hangs on the API
    await waitUntil(() => sim.stats().api.inFlight > 0, { what: 'the poll to hang in the API' })
    const exit = await daemon.stop('SIGTERM')
    assert.deepEqual(exit, { code: 0, signal: null })
    assert.equal(readHosts().addressesOf.has('hang.e2e'), false, 'the name was removed')
    assert.ok(daemon.logRecords().some((l) => /listeners, names and addresses removed/.test(l.msg)))
  })
})
