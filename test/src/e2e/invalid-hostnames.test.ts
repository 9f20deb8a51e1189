// Scenario 7: hostnames with a newline, a space, '#', or over 253 characters never reach the hosts
// file (a hostname is written into it: a newline is an injection); the valid endpoints around them
// still serve, and the daemon logs each one as skipped.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { CloudSimulator, type EchoReply, type EndpointObject } from '@ngrokd/plugin-simulator'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { managedRecords, readHosts } from '../helpers/hosts-file.js'
import { snapshotHostsFile } from '../helpers/hosts-guard.js'
import { httpRequest, tcpExchange } from '../helpers/clients.js'
import { waitUntil } from '../helpers/wait-until.js'

const net = netDriverCases('bad')[0]!

/** 4 labels of 63 + 3 dots = 255 characters: each label is fine, the name is too long. */
const LONG_HOST = ['a', 'b', 'c', 'd'].map((c) => c.repeat(63)).join('.')

const MALFORMED = {
  newline: 'http://evil.e2e\n10.66.66.66 victim.e2e',
  space: 'http://has space.e2e',
  hash: 'http://hash#tag.e2e',
  tooLong: `https://${LONG_HOST}`,
  tcpNewline: 'tcp://evil2.e2e\r\n127.0.0.1 victim2.e2e:5432',
}

describe('malformed hostnames never reach the hosts file', { skip: netnsSkip }, () => {
  let sim: CloudSimulator
  let daemon: E2eDaemon
  const hosts = snapshotHostsFile()
  const bad = new Map<string, EndpointObject>()
  let good: EndpointObject
  let before253: EndpointObject

  before(async () => {
    hosts.take()
    sim = await CloudSimulator.start()
    good = sim.addEndpoint({ url: 'http://good-one.e2e' })
    for (const [what, url] of Object.entries(MALFORMED)) bad.set(what, sim.addEndpoint({ url, skipValidation: true }))
    sim.addEndpoint({ url: 'tcp://good-two.e2e:7100' })
    // 253 characters exactly is still a valid (legacy https) hostname
    const at253 = ['e', 'f', 'g'].map((c) => c.repeat(63)).join('.') + `.${'h'.repeat(59)}.x`
    before253 = sim.addEndpoint({ url: `https://${at253}` })
    assert.equal(before253.host.length, 253)
    daemon = E2eDaemon.start({ name: 'bad-names', sim, net })
    await daemon.waitReady((s) => s.services?.serving === 3)
  })

  after(async () => {
    await daemon?.dispose()
    await sim?.stop()
    hosts.assertRestored()
  })

  test('only the valid hostnames are in /etc/hosts, and nothing was injected', () => {
    const snapshot = readHosts()
    assert.deepEqual([...managedRecords(snapshot).keys()].sort(), ['good-one.e2e', 'good-two.e2e', before253.host].sort())
    for (const fragment of ['victim', 'evil', 'has space', 'hash#', 'tag.e2e', 'a'.repeat(63), '10.66.66.66']) {
      assert.ok(!snapshot.text.includes(fragment), `${JSON.stringify(fragment)} is nowhere in /etc/hosts`)
    }
    assert.equal(snapshot.begins, 1)
    assert.equal(snapshot.ends, 1)
  })

  test('the valid endpoints around them serve', async () => {
    const res = await httpRequest('http://good-one.e2e/')
    assert.equal(res.json<EchoReply>().endpoint_id, good.id)
    assert.equal((await tcpExchange('good-two.e2e', 7100, Buffer.from('ok'))).received.toString(), 'ok')
    const legacy = await httpRequest(`https://${before253.host}/`, { ca: sim.caCertPem })
    assert.equal(legacy.json<EchoReply>().endpoint_id, before253.id)
  })

  test('the daemon reports and logs every malformed endpoint as skipped', async () => {
    const status = await daemon.status()
    const rejected = (status.lastPoll?.rejected ?? []) as Array<{ id: string; reason: string }>
    assert.deepEqual(rejected.map((r) => r.id).sort(), [...bad.values()].map((e) => e.id).sort())
    for (const [what, ep] of bad) {
      const line = await waitUntil(
        () => daemon.logRecords().find((r) => r.level >= 40 && (r.endpoint === ep.id || String(r.msg).includes(ep.id))),
        { what: `a warning naming ${ep.id} (${what})`, timeoutMs: 5_000 },
      )
      assert.match(String(line.msg), /skip/i, `the ${what} endpoint is logged as skipped`)
    }
  })
})
