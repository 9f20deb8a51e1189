// Issue "run it like a daemon people trust", point 6: two daemons for two accounts fought over the
// one hosts block — each poll rewrote the other's names. A named instance (`instance: work`,
// `--instance work`) has its own block, state, socket and subnet; neither touches the other's.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { CloudSimulator, type EchoReply } from '@ngrokd/plugin-simulator'
import { parseHostsBlock } from '@ngrokd/core'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { HOSTS_FILE } from '../helpers/hosts-file.js'
import { snapshotHostsFile } from '../helpers/hosts-guard.js'
import { httpRequest } from '../helpers/clients.js'

const net = netDriverCases('inst')[0]! // loopback-alias: both daemons on lo, each in its own subnet

describe('two accounts, two instances, one hosts file', { skip: netnsSkip }, () => {
  let home: CloudSimulator
  let work: CloudSimulator
  let homeDaemon: E2eDaemon
  let workDaemon: E2eDaemon
  let homeOnly = ''
  let workOnly = ''
  const hosts = snapshotHostsFile()
  const blocks = () => {
    const text = readFileSync(HOSTS_FILE, 'utf8')
    return { text, home: parseHostsBlock(text).records, work: parseHostsBlock(text, { instance: 'work' }).records }
  }

  before(async () => {
    hosts.take()
    home = await CloudSimulator.start()
    work = await CloudSimulator.start()
    home.addEndpoint({ url: 'http://api.shared' })
    homeOnly = home.addEndpoint({ url: 'http://home.only' }).id
    work.addEndpoint({ url: 'http://api.shared' })
    workOnly = work.addEndpoint({ url: 'http://work.only' }).id
    homeDaemon = E2eDaemon.start({ name: 'inst-home', sim: home, net })
    workDaemon = E2eDaemon.start({ name: 'inst-work', sim: work, net: { ...net, subnet: '127.108.0.0/16' }, extraConfig: { instance: 'work' } })
    await Promise.all([homeDaemon.waitReady((s) => s.services?.serving === 2), workDaemon.waitReady((s) => s.services?.serving === 2)])
  })

  after(async () => {
    await workDaemon?.dispose()
    await homeDaemon?.dispose()
    await work?.stop()
    await home?.stop()
    hosts.assertRestored()
  })

  test('each publishes its own block, and polls of one never change the other', async () => {
    const first = blocks()
    assert.deepEqual(first.home.map((r) => r.hostname).sort(), ['api.shared', 'home.only'])
    assert.deepEqual(first.work.map((r) => r.hostname).sort(), ['api.shared', 'work.only'])
    assert.ok(first.home.every((r) => r.address.startsWith('127.107.')) && first.work.every((r) => r.address.startsWith('127.108.')))
    for (let i = 0; i < 3; i++) {
      await homeDaemon.pollAfterNow()
      await workDaemon.pollAfterNow()
    }
    assert.equal(blocks().text, first.text, 'no flicker: the file is unchanged after three polls of each')
    assert.equal((await httpRequest('http://home.only/')).json<EchoReply>().endpoint_id, homeOnly)
    assert.equal((await httpRequest('http://work.only/')).json<EchoReply>().endpoint_id, workOnly)
  })

  test("stopping one removes its block only", async () => {
    const before = blocks()
    await workDaemon.dispose()
    const after = blocks()
    assert.deepEqual(after.work, [])
    assert.deepEqual(after.home, before.home)
    assert.ok(!after.text.includes('instance work'), 'no marker of the stopped instance is left')
    assert.equal((await httpRequest('http://home.only/')).json<EchoReply>().endpoint_id, homeOnly)
  })
})
