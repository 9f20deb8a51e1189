// Scenario 1 (and 11): 250 bound endpoints arrive over three API pages; every one gets a name in
// /etc/hosts and an address, and a sample of 25 answers real HTTP requests by hostname.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { lookup } from 'node:dns/promises'
import { CloudSimulator, type EchoReply, type EndpointObject } from '@ngrokd/plugin-simulator'
import { parseSubnet, subnetContains } from '@ngrokd/core'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { managedRecords, readHosts } from '../helpers/hosts-file.js'
import { snapshotHostsFile } from '../helpers/hosts-guard.js'
import { httpRequest } from '../helpers/clients.js'
import { kernelAddresses } from '../helpers/ip-link.js'

const COUNT = 250
const hostnameOf = (i: number) => `svc-${String(i).padStart(3, '0')}.e2e`

for (const net of netDriverCases('page')) {
  describe(`250 endpoints over 3 pages (${net.driver})`, { skip: netnsSkip }, () => {
    let sim: CloudSimulator
    let daemon: E2eDaemon
    let endpoints: EndpointObject[]
    const hosts = snapshotHostsFile()
    let boundPath = ''

    before(async () => {
      hosts.take()
      sim = await CloudSimulator.start()
      endpoints = Array.from({ length: COUNT }, (_, i) => sim.addEndpoint({ url: `http://${hostnameOf(i)}` }))
      // A long interval: the only polls are the one after registration and the ones the test asks for,
      // so the page requests can be counted exactly.
      daemon = E2eDaemon.start({ name: `page-${net.driver}`, sim, net, pollInterval: '1h' })
      const status = await daemon.waitReady((s) => s.services?.serving === COUNT)
      boundPath = `/kubernetes_operators/${status.operatorId}/bound_endpoints`
    })

    after(async () => {
      await daemon?.dispose()
      await sim?.stop()
      hosts.assertRestored()
    })

    test('the daemon followed next_page_uri: three page requests per poll', async () => {
      const pages = () => sim.apiRequests().filter((r) => r.method === 'GET' && r.path === boundPath)
      assert.equal(pages().length, 3, 'one poll = 3 pages of at most 100')
      assert.equal(pages().filter((r) => /[?&]before_id=/.test(r.query)).length, 2, 'pages 2 and 3 name before_id')
      for (const r of pages()) {
        const limit = new URLSearchParams(r.query).get('limit')
        assert.ok(limit === null || Number(limit) <= 100, `limit ${limit} is at most 100`)
      }
      const poll = await daemon.pollAfterNow()
      assert.equal(poll.ok, true)
      assert.equal(poll.endpoints, COUNT)
      assert.equal(pages().length, 6, 'a second poll fetched the three pages again')
    })

    test('all 250 hostnames are in the managed block of /etc/hosts, each with its own address in the subnet', async () => {
      const snapshot = readHosts()
      assert.equal(snapshot.begins, 1)
      assert.equal(snapshot.ends, 1)
      const records = managedRecords(snapshot)
      assert.equal(records.size, COUNT)
      const subnet = parseSubnet(net.subnet)
      for (let i = 0; i < COUNT; i++) {
        const address = records.get(hostnameOf(i))
        assert.ok(address, `${hostnameOf(i)} is published`)
        assert.ok(subnetContains(subnet, address), `${address} is in ${net.subnet}`)
      }
      assert.equal(new Set(records.values()).size, COUNT, 'no two hostnames share an address')
      if (net.kernelLink) {
        const onLink = kernelAddresses(net.interfaceName!)
        assert.ok(onLink, `${net.interfaceName} exists`)
        assert.deepEqual([...onLink].sort(), [...records.values()].map((a) => `${a}/32`).sort(), 'the link holds exactly the published addresses, as /32s')
      }
    })

    test('a sample of 25 answers HTTP by hostname, each from its own endpoint', async () => {
      const sample = endpoints.filter((_, i) => i % 10 === 0)
      assert.equal(sample.length, 25)
      const records = managedRecords(readHosts())
      for (const ep of sample) {
        const i = endpoints.indexOf(ep)
        const hostname = hostnameOf(i)
        assert.equal((await lookup(hostname, { family: 4 })).address, records.get(hostname), `${hostname} resolves through /etc/hosts`)
        const res = await httpRequest(`http://${hostname}/n/${i}`)
        assert.equal(res.status, 200)
        const echo = res.json<EchoReply>()
        assert.equal(echo.host, hostname)
        assert.equal(echo.endpoint_id, ep.id)
        assert.equal(echo.path, `/n/${i}`)
      }
    })
  })
}
