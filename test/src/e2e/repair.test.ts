// Issue "run it like a daemon people trust", point 1: `ip link del ngrokd0` (or an address or the
// hosts block removed by hand) under a running daemon left every service in error, for good. The
// daemon notices at the next reconcile and puts back what it owns, saying so once.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { CloudSimulator, type EchoReply } from '@ngrokd/plugin-simulator'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { HOSTS_FILE, managedRecords, readHosts } from '../helpers/hosts-file.js'
import { snapshotHostsFile } from '../helpers/hosts-guard.js'
import { deleteLink, kernelAddresses, linkExists } from '../helpers/ip-link.js'
import { httpRequest } from '../helpers/clients.js'
import { waitUntil } from '../helpers/wait-until.js'

const net = netDriverCases('repair')[1]! // linux-netlink: a link of its own that can be deleted under it

describe('repair: what the daemon owns, changed under it, is put back', { skip: netnsSkip }, () => {
  let sim: CloudSimulator
  let daemon: E2eDaemon
  let webId = ''
  const hosts = snapshotHostsFile()
  const ifname = net.interfaceName!

  const logLines = () => readFileSync(daemon.logFile, 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string })

  async function assertServing(): Promise<void> {
    const status = await daemon.status()
    assert.equal(status.services.error, 0, JSON.stringify(await daemon.services()))
    assert.equal(status.services.serving, 2)
    assert.equal(managedRecords(readHosts()).size, 2, 'both names are back in the hosts block')
    assert.equal(kernelAddresses(ifname)?.length, 2, `both addresses are back on ${ifname}`)
    assert.equal((await httpRequest('http://web.repair/')).json<EchoReply>().endpoint_id, webId)
  }

  before(async () => {
    hosts.take()
    sim = await CloudSimulator.start()
    webId = sim.addEndpoint({ url: 'http://web.repair' }).id
    sim.addEndpoint({ url: 'http://api.repair' })
    daemon = E2eDaemon.start({ name: 'repair', sim, net })
    await daemon.waitReady((s) => s.services?.serving === 2)
    await assertServing()
  })

  after(async () => {
    await daemon?.dispose()
    await sim?.stop()
    hosts.assertRestored()
  })

  test('the interface deleted: created again with its addresses at the next reconcile, logged once', async () => {
    deleteLink(ifname)
    assert.equal(linkExists(ifname), false)
    await daemon.pollAfterNow()
    assert.ok(linkExists(ifname), `${ifname} is back`)
    await assertServing()
    await daemon.pollAfterNow()
    const said = logLines().filter((l) => l.msg.includes(`interface ${ifname} was removed`))
    assert.equal(said.length, 1, `said once: ${said.map((l) => l.msg).join(' | ')}`)
    assert.equal(said[0]!.level, 40)
    assert.ok(!logLines().some((l) => l.msg.includes('removed from the interface under the daemon')), 'the repair\'s line covers its addresses')
  })

  test('an address deleted by hand: added again', async () => {
    const [first] = kernelAddresses(ifname)!
    execFileSync('ip', ['addr', 'del', first!, 'dev', ifname]) // `a.b.c.d/32`, as the kernel lists it
    assert.equal(kernelAddresses(ifname)!.length, 1)
    await daemon.pollAfterNow()
    await assertServing()
    await daemon.pollAfterNow()
    const said = logLines().filter((l) => l.msg.includes('removed from the interface under the daemon'))
    assert.deepEqual(said.map((l) => [l.level, l.msg]), [[40, `1 address (${first!.split('/')[0]}) was removed from the interface under the daemon: adding it back`]], 'said once')
  })

  test('the control socket removed: made again before the next poll, said once; status answers again', async () => {
    rmSync(daemon.socketPath)
    await waitUntil(() => existsSync(daemon.socketPath), { what: `${daemon.socketPath} made again` })
    assert.equal((statSync(daemon.socketPath).mode & 0o777), 0o600)
    await assertServing()
    await daemon.pollAfterNow()
    const said = logLines().filter((l) => l.msg.includes('was removed under the daemon: made it again'))
    assert.deepEqual(said.map((l) => [l.level, l.msg]), [[40, `the control socket ${daemon.socketPath} was removed under the daemon: made it again`]], 'said once')
  })

  test('the hosts block edited away: written again', async () => {
    const text = readFileSync(HOSTS_FILE, 'utf8')
    const withoutBlock = text.replace(/# BEGIN ngrokd managed block[\s\S]*?# END ngrokd managed block\n?/, '')
    assert.notEqual(withoutBlock, text)
    writeFileSync(HOSTS_FILE, withoutBlock)
    assert.equal(managedRecords(readHosts()).size, 0)
    await daemon.pollAfterNow()
    await assertServing()
    await daemon.pollAfterNow()
    const said = logLines().filter((l) => l.msg.includes('removed from its hosts block under the daemon'))
    assert.equal(said.length, 1, `said once: ${said.map((l) => l.msg).join(' | ')}`)
    assert.match(said[0]!.msg, /^2 names \((api|web)\.repair, (api|web)\.repair\) were removed from its hosts block under the daemon: publishing them again$/)
  })
})
