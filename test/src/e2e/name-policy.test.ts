// An account publishing names the machine needs or the admin denied: github.com (names.deny) and
// registry.npmjs.org (a package registry, always refused) never reach /etc/hosts; the other endpoints
// serve; status, list, the log and doctor say which were skipped as unsafe and why.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { NGROKD_BIN } from '@ngrokd/core'
import { CloudSimulator, type EchoReply, type EndpointObject } from '@ngrokd/plugin-simulator'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { managedRecords, readHosts } from '../helpers/hosts-file.js'
import { snapshotHostsFile } from '../helpers/hosts-guard.js'
import { httpRequest } from '../helpers/clients.js'

const run = promisify(execFile)
const net = netDriverCases('names')[0]!

describe('name policy: unsafe names are never published', { skip: netnsSkip }, () => {
  let sim: CloudSimulator
  let daemon: E2eDaemon
  const hosts = snapshotHostsFile()
  let good: EndpointObject
  let github: EndpointObject
  let npm: EndpointObject
  let legacy: EndpointObject

  const cli = async (...args: string[]) =>
    run(process.execPath, [NGROKD_BIN, ...args, '--config', daemon.configFile], { env: E2eDaemon.childEnv() }).then(
      (x) => ({ code: 0, stdout: x.stdout }),
      (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
    )

  before(async () => {
    hosts.take()
    sim = await CloudSimulator.start()
    good = sim.addEndpoint({ url: 'http://safe-one.e2e' })
    github = sim.addEndpoint({ url: 'http://github.com', skipValidation: true })
    npm = sim.addEndpoint({ url: 'https://registry.npmjs.org', skipValidation: true })
    legacy = sim.addEndpoint({ url: 'https://policy-test.ngrok.app' })
    daemon = E2eDaemon.start({ name: 'names', sim, net, extraConfig: { names: { deny: ['github.com'] } } })
    await daemon.waitReady((s) => s.services?.serving === 2)
  })

  after(async () => {
    await daemon?.dispose()
    await sim?.stop()
    hosts.assertRestored()
  })

  test('only the safe names are in /etc/hosts, and they serve', async () => {
    const published = [...managedRecords(readHosts()).keys()].sort()
    assert.deepEqual(published, ['policy-test.ngrok.app', 'safe-one.e2e'])
    assert.equal((await httpRequest('http://safe-one.e2e/')).json<EchoReply>().endpoint_id, good.id)
  })

  test('status and the log name each skipped endpoint, its reason and code, once', async () => {
    const status = await daemon.status()
    const rejected = (status.lastPoll?.rejected ?? []) as Array<{ id: string; reason: string; code?: string }>
    const byId = new Map(rejected.map((r) => [r.id, r]))
    assert.match(byId.get(github.id)!.reason, /^skipped as unsafe: github\.com matches names\.deny "github\.com"$/)
    assert.match(byId.get(npm.id)!.reason, /^skipped as unsafe: registry\.npmjs\.org is a package registry host, which ngrokd never publishes$/)
    assert.equal(byId.get(github.id)!.code, 'NGROKD_ERR_NAME_UNSAFE')
    const logged = daemon.logRecords().filter((r) => r.code === 'NGROKD_ERR_NAME_UNSAFE')
    assert.deepEqual(logged.map((r) => r.endpoint).sort(), [github.id, npm.id].sort(), 'one warning each, though the daemon polls every second')
    const text = await cli('status')
    assert.match(text.stdout, /skipped: +http:\/\/github\.com \(ep_\w+\): skipped as unsafe/)
  })

  test('list shows the skipped endpoints under the table', async () => {
    const { stdout } = await cli('list')
    assert.match(stdout, /safe-one\.e2e/)
    assert.match(stdout, /skipped: +https:\/\/registry\.npmjs\.org \(ep_\w+\): skipped as unsafe: registry\.npmjs\.org is a package registry host/)
  })

  test('doctor warns about each served public domain and each name skipped as unsafe', async () => {
    const { stdout } = await cli('doctor', '--json', '--offline')
    const checks = (JSON.parse(stdout) as { checks: Array<{ id: string; status: string; summary: string }> }).checks
    const publicNames = checks.filter((c) => c.id === 'names.public-domain')
    assert.deepEqual(publicNames.map((c) => c.status), ['warn'])
    assert.match(publicNames[0]!.summary, /policy-test\.ngrok\.app is served, and it is under ngrok\.app, a public internet domain/)
    assert.equal(checks.filter((c) => c.id === 'names.unsafe' && c.status === 'warn').length, 2)
  })
})
