// Scenarios 4, 5 (and 11): a clean restart keeps every address and the registration; a kill -9
// leaves leftovers that the next start adopts without duplicates; a clean stop removes everything.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { CloudSimulator, type EchoReply, type EndpointObject } from '@ngrokd/plugin-simulator'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { managedRecords, readHosts } from '../helpers/hosts-file.js'
import { snapshotHostsFile } from '../helpers/hosts-guard.js'
import { canConnect, httpRequest, tcpExchange } from '../helpers/clients.js'
import { kernelAddresses, linkExists } from '../helpers/ip-link.js'
import { waitUntil } from '../helpers/wait-until.js'
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'

const HTTP_NAMES = ['alpha.e2e', 'beta.e2e', 'gamma.e2e', 'delta.e2e']

for (const net of netDriverCases('rs')) {
  describe(`restart and crash recovery (${net.driver})`, { skip: netnsSkip }, () => {
    let sim: CloudSimulator
    let daemon: E2eDaemon
    const hosts = snapshotHostsFile()
    let original = ''
    const ids = new Map<string, string>()
    let firstOperatorId = ''
    let firstAddresses = new Map<string, string>()

    /** Every endpoint answers by hostname, from the right endpoint. */
    async function assertAllServe(): Promise<void> {
      for (const name of HTTP_NAMES) {
        const res = await httpRequest(`http://${name}/`)
        assert.equal(res.json<EchoReply>().endpoint_id, ids.get(name), `${name} answers from its endpoint`)
      }
      const echo = await tcpExchange('alpha.e2e', 5432, Buffer.from('select 1'))
      assert.equal(echo.received.toString(), 'select 1')
    }

    const registrations = () => sim.apiRequests().filter((r) => r.method === 'POST' && r.path === '/kubernetes_operators').length

    before(async () => {
      hosts.take()
      original = readHosts().text
      sim = await CloudSimulator.start()
      for (const name of HTTP_NAMES) {
        const ep: EndpointObject = sim.addEndpoint({ url: `http://${name}` })
        ids.set(name, ep.id)
      }
      sim.addEndpoint({ url: 'tcp://alpha.e2e:5432' })
      daemon = E2eDaemon.start({ name: `rs-${net.driver}`, sim, net })
      const status = await daemon.waitReady((s) => s.services?.serving === HTTP_NAMES.length + 1)
      firstOperatorId = status.operatorId
      firstAddresses = managedRecords(readHosts())
      await assertAllServe()
    })

    after(async () => {
      await daemon?.dispose()
      await sim?.stop()
      hosts.assertRestored()
    })

    test('SIGTERM then start with the same state_dir: same addresses, same registration', async () => {
      assert.ok(firstOperatorId.startsWith('k8sop_'), `operator id ${firstOperatorId}`)
      assert.equal(registrations(), 1)
      const exit = await daemon.stop('SIGTERM')
      assert.equal(exit.code, 0, 'a clean stop exits 0')
      assert.equal(readHosts().begins, 0, 'the clean stop unpublished the names')

      daemon.restart()
      const status = await daemon.waitReady((s) => s.services?.serving === HTTP_NAMES.length + 1)
      assert.equal(status.operatorId, firstOperatorId, 'the registration was reused')
      assert.equal(registrations(), 1, 'the simulator saw exactly one POST /kubernetes_operators')
      assert.equal(sim.listOperators().length, 1, 'no second operator exists')
      assert.deepEqual(managedRecords(readHosts()), firstAddresses, 'every hostname kept its address')
      await assertAllServe()
    })

    test('kill -9 then start: one managed block, each address once, everything serves', async () => {
      const exit = await daemon.stop('SIGKILL')
      assert.equal(exit.signal, 'SIGKILL')
      // the crash left its state behind: that is what the next start must adopt
      const left = readHosts()
      assert.equal(left.begins, 1, 'the managed block survived the crash')
      if (net.kernelLink) {
        assert.equal(kernelAddresses(net.interfaceName!)?.length, firstAddresses.size, `${net.interfaceName} and its addresses survived the crash`)
      }

      daemon.restart()
      const status = await daemon.waitReady((s) => s.services?.serving === HTTP_NAMES.length + 1)
      assert.equal(status.operatorId, firstOperatorId)
      assert.equal(registrations(), 1)

      const after = readHosts()
      assert.equal(after.begins, 1, 'exactly one BEGIN marker')
      assert.equal(after.ends, 1, 'exactly one END marker')
      for (const name of HTTP_NAMES) {
        assert.deepEqual(after.addressesOf.get(name), [firstAddresses.get(name)], `${name} appears once in the whole file, with its old address`)
      }
      if (net.kernelLink) {
        const onLink = kernelAddresses(net.interfaceName!)
        assert.ok(onLink)
        assert.equal(new Set(onLink).size, onLink.length, `no address twice on ${net.interfaceName}: ${onLink.join(' ')}`)
        assert.deepEqual([...onLink].sort(), [...firstAddresses.values()].map((a) => `${a}/32`).sort())
      }
      await assertAllServe()
    })

    test('a restart serves the last endpoint list with the saved registration before the API has answered', async () => {
      assert.equal((await daemon.stop('SIGTERM')).code, 0)
      // the API holds its answer about the saved operator for 8 s (under api.timeout's 10 s): meanwhile
      // the cached endpoints must answer, dialled with the saved certificate and ingress
      sim.injectApiFault({ kind: 'latency', ms: 8_000, pathPrefix: '/kubernetes_operators/', method: 'GET', count: 1 })
      daemon.restart()
      await daemon.waitFor((s) => s.services?.serving === HTTP_NAMES.length + 1, 'serving the cached endpoint list')
      await assertAllServe()
      const status = await daemon.status()
      assert.equal(status.phase, 'registering', 'the API had not answered yet: the saved registration carried those connections')
      assert.equal(status.operatorId, firstOperatorId, 'status names the saved registration it uses')
      await daemon.waitReady((s) => s.services?.serving === HTTP_NAMES.length + 1)
      assert.equal(registrations(), 1, 'still the one registration')
    })

    test('a clean stop removes the hosts block, the addresses, the listeners and the interface', async () => {
      const exit = await daemon.stop('SIGTERM')
      assert.equal(exit.code, 0)
      assert.equal(readHosts().text, original, '/etc/hosts is byte-for-byte what it was before the daemon ran')
      for (const address of firstAddresses.values()) {
        assert.equal(await canConnect(address, 80), false, `nothing listens on ${address}:80`)
      }
      if (net.kernelLink) assert.equal(linkExists(net.interfaceName!), false, `${net.interfaceName} was deleted`)
    })
  })
}

describe('a restart without a usable saved registration', { skip: netnsSkip }, () => {
  const net = netDriverCases('ru')[0]!
  let sim: CloudSimulator
  let daemon: E2eDaemon
  const hosts = snapshotHostsFile()

  before(async () => {
    hosts.take()
    sim = await CloudSimulator.start()
    sim.addEndpoint({ url: 'http://unkeyed.e2e' })
    daemon = E2eDaemon.start({ name: 'rs-unkeyed', sim, net })
    await daemon.waitReady((s) => s.services?.serving === 1)
  })

  after(async () => {
    await daemon?.dispose()
    await sim?.stop()
    hosts.assertRestored()
  })

  test('publishes none of the last endpoint list (no connection could be carried) and says why', async () => {
    assert.equal((await daemon.stop('SIGTERM')).code, 0)
    const key = join(daemon.stateDir, 'client.key')
    rmSync(key)
    mkdirSync(key) // what the daemon cannot read as its key, nor write over
    daemon.restart()
    await waitUntil(() => daemon.logRecords().find((l) => /no usable saved registration/.test(String(l.msg))), { what: 'the start line', timeoutMs: 30_000 })
    const status = await daemon.waitFor(() => true, 'the control API')
    assert.equal(status.services?.serving ?? 0, 0, `nothing listed as serving: ${JSON.stringify(status.services)}`)
    assert.equal(managedRecords(readHosts()).get('unkeyed.e2e'), undefined, 'the name is not published')
  })
})
