// Scenario 3 (and 11): an endpoint added or removed while the daemon runs is picked up by the next
// poll: its name appears in / disappears from /etc/hosts and its listener opens / closes.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { CloudSimulator, type EchoReply } from '@ngrokd/plugin-simulator'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { managedRecords, readHosts } from '../helpers/hosts-file.js'
import { snapshotHostsFile } from '../helpers/hosts-guard.js'
import { canConnect, httpRequest, tcpExchange } from '../helpers/clients.js'
import { kernelAddresses } from '../helpers/ip-link.js'

for (const net of netDriverCases('rt')) {
  describe(`endpoints added and removed at runtime (${net.driver})`, { skip: netnsSkip }, () => {
    let sim: CloudSimulator
    let daemon: E2eDaemon
    const hosts = snapshotHostsFile()

    before(async () => {
      hosts.take()
      sim = await CloudSimulator.start()
      sim.addEndpoint({ url: 'http://steady.e2e' })
      daemon = E2eDaemon.start({ name: `rt-${net.driver}`, sim, net })
      await daemon.waitReady((s) => s.services?.serving === 1)
    })

    after(async () => {
      await daemon?.dispose()
      await sim?.stop()
      hosts.assertRestored()
    })

    test('an added endpoint is published and served after one poll', async () => {
      assert.equal(managedRecords(readHosts()).has('late.e2e'), false)
      const web = sim.addEndpoint({ url: 'http://late.e2e' })
      const raw = sim.addEndpoint({ url: 'tcp://late.e2e:7001' })
      const poll = await daemon.pollAfterNow()
      assert.equal(poll.ok, true)

      const address = managedRecords(readHosts()).get('late.e2e')
      assert.ok(address, 'late.e2e is in /etc/hosts after the poll')
      const res = await httpRequest('http://late.e2e/')
      assert.equal(res.json<EchoReply>().endpoint_id, web.id)
      const echo = await tcpExchange('late.e2e', 7001, Buffer.from('ping'))
      assert.equal(echo.received.toString(), 'ping')
      if (net.kernelLink) assert.ok(kernelAddresses(net.interfaceName!)?.includes(`${address}/32`), 'the address is on the link')
      assert.ok(raw.id)
    })

    test('removing one port of a hostname closes that listener and keeps the name', async () => {
      const address = managedRecords(readHosts()).get('late.e2e')
      assert.ok(address)
      const tcp = sim.listEndpoints().find((e) => e.url === 'tcp://late.e2e:7001')
      assert.ok(tcp, 'the tcp endpoint exists')
      assert.equal(await canConnect(address, 7001), true, 'listener open before the removal')
      sim.removeEndpoint(tcp.id)
      await daemon.pollAfterNow()

      assert.equal(await canConnect(address, 7001), false, 'port 7001 no longer accepts')
      assert.equal(managedRecords(readHosts()).get('late.e2e'), address, 'the name keeps its address for port 80')
      assert.equal((await httpRequest('http://late.e2e/')).status, 200)
    })

    test('a removed endpoint disappears from /etc/hosts and its listener closes after one poll', async () => {
      const address = managedRecords(readHosts()).get('late.e2e')
      assert.ok(address)
      const web = sim.listEndpoints().find((e) => e.url === 'http://late.e2e')
      assert.ok(web)
      sim.removeEndpoint(web.id)
      await daemon.pollAfterNow()

      assert.equal(managedRecords(readHosts()).has('late.e2e'), false, 'late.e2e is gone from /etc/hosts')
      assert.equal(await canConnect(address, 80), false, 'nothing listens on its address any more')
      if (net.kernelLink) assert.equal(kernelAddresses(net.interfaceName!)?.includes(`${address}/32`), false, 'the address left the link')
      // the endpoint that never changed is untouched
      assert.equal((await httpRequest('http://steady.e2e/')).status, 200)
      assert.equal(managedRecords(readHosts()).size, 1)
    })
  })
}
