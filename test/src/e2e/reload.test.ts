// SIGHUP and `ngrokd reload`: the daemon reads its config again, applies log.level and
// bound_endpoints.poll_interval at once, names every other change as needing a restart, keeps serving —
// and a broken config file is reported, never applied, never fatal.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { CloudSimulator } from '@ngrokd/plugin-simulator'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { waitUntil } from '../helpers/wait-until.js'
import { snapshotHostsFile } from '../helpers/hosts-guard.js'
import { ngrokdCli } from '../helpers/ngrokd-cli.js'


describe('reload', { skip: netnsSkip }, () => {
  const hosts = snapshotHostsFile()
  let sim: CloudSimulator
  let daemon: E2eDaemon

  before(async () => {
    hosts.take()
    sim = await CloudSimulator.start()
    sim.addEndpoint({ url: 'http://reload.e2e' })
    daemon = E2eDaemon.start({ name: 'reload', sim, net: netDriverCases('reload')[0]! })
    await daemon.waitReady((s) => s.services?.serving === 1)
  })

  after(async () => {
    await daemon?.dispose()
    await sim?.stop()
    hosts.assertRestored()
  })

  test('SIGHUP applies the live keys, lists the rest as needing a restart, and the daemon keeps serving', async () => {
    const edited = { ...daemon.config, log: { level: 'debug' }, bound_endpoints: { poll_interval: '3s' }, net: { ...daemon.config.net, subnet: '127.108.0.0/16' } }
    writeFileSync(daemon.configFile, JSON.stringify(edited))
    daemon.process.child.kill('SIGHUP')
    await waitUntil(() => /configuration reloaded: applied bound_endpoints\.poll_interval, log\.level; needs a restart to take effect: net\.subnet/.test(daemon.log()), {
      what: 'the reload line in the log',
    })
    const status = await daemon.status()
    assert.equal(status.phase, 'running')
    assert.equal(status.pollIntervalMs, 3000)
    assert.equal(status.subnet, daemon.config.net.subnet, 'the subnet waits for a restart')
    assert.equal(status.services.serving, 1)
  })

  test('ngrokd reload does the same through the socket', async () => {
    const r = await ngrokdCli(['reload', '--json', '--config', daemon.configFile])
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(JSON.parse(r.stdout), { applied: [], restartNeeded: ['net.subnet'] })
  })

  test('a broken config file is reported and not applied; the daemon runs on', async () => {
    writeFileSync(daemon.configFile, '{ "log": ')
    daemon.process.child.kill('SIGHUP')
    await waitUntil(() => /SIGHUP: the configuration was not reloaded, the running one stays/.test(daemon.log()), { what: 'the refused reload in the log' })
    const viaSocket = await ngrokdCli(['reload', '--config', daemon.configFile])
    assert.notEqual(viaSocket.code, 0)
    assert.equal((await daemon.status()).phase, 'running')
    writeFileSync(daemon.configFile, JSON.stringify(daemon.config))
  })
})
