// Scenario 12: `ngrokd list --json` and `ngrokd status` (the built CLI, talking to the running
// daemon over its control socket) show the services; the control socket is mode 0600.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { statSync } from 'node:fs'
import { promisify } from 'node:util'
import { NGROKD_BIN } from '@ngrokd/core'
import { CloudSimulator } from '@ngrokd/plugin-simulator'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { managedRecords, readHosts } from '../helpers/hosts-file.js'
import { snapshotHostsFile } from '../helpers/hosts-guard.js'

const run = promisify(execFile)
const net = netDriverCases('cli')[0]!

describe('the ngrokd CLI against a running daemon', { skip: netnsSkip }, () => {
  let sim: CloudSimulator
  let daemon: E2eDaemon
  const hosts = snapshotHostsFile()
  let webId = ''
  let dbId = ''

  const ngrokd = (...args: string[]) =>
    run(process.execPath, [NGROKD_BIN, ...args, '--config', daemon.configFile], { env: E2eDaemon.childEnv(), timeout: 120_000 })

  before(async () => {
    hosts.take()
    sim = await CloudSimulator.start()
    webId = sim.addEndpoint({ url: 'http://web.e2e' }).id
    dbId = sim.addEndpoint({ url: 'tcp://db.e2e:5432' }).id
    daemon = E2eDaemon.start({ name: 'cli', sim, net })
    await daemon.waitReady((s) => s.services?.serving === 2)
  })

  after(async () => {
    await daemon?.dispose()
    await sim?.stop()
    hosts.assertRestored()
  })

  test('ngrokd list --json lists every service with its address, state and endpoint ids', async () => {
    const { stdout } = await ngrokd('list', '--json')
    const services = JSON.parse(stdout) as Array<Record<string, any>>
    const records = managedRecords(readHosts())
    const byUrl = new Map(services.map((s) => [s.url, s]))
    assert.equal(services.length, 2)
    const web = byUrl.get('http://web.e2e')
    const db = byUrl.get('tcp://db.e2e:5432')
    assert.ok(web && db, `both services listed: ${[...byUrl.keys()].join(', ')}`)
    assert.deepEqual([web.hostname, web.port, web.proto, web.state, web.endpointIds], ['web.e2e', 80, 'http', 'serving', [webId]])
    assert.deepEqual([db.hostname, db.port, db.proto, db.state, db.endpointIds], ['db.e2e', 5432, 'tcp', 'serving', [dbId]])
    assert.equal(web.address, records.get('web.e2e'))
    assert.equal(db.address, records.get('db.e2e'))
  })

  test('ngrokd list (table) and ngrokd status show the services', async () => {
    const records = managedRecords(readHosts())
    const table = (await ngrokd('list')).stdout
    assert.match(table, new RegExp(`web\\.e2e\\s+${records.get('web.e2e')!.replace(/\./g, '\\.')}\\s+80\\s+http\\s+serving`))
    assert.match(table, new RegExp(`db\\.e2e\\s+${records.get('db.e2e')!.replace(/\./g, '\\.')}\\s+5432\\s+tcp\\s+serving`))

    const status = (await ngrokd('status')).stdout
    const live = await daemon.status()
    assert.match(status, /: running/)
    assert.ok(status.includes(live.operatorId), 'status names the operator id')
    assert.match(status, /2 serving, 0 in error/)
    const json = JSON.parse((await ngrokd('status', '--json')).stdout) as Record<string, any>
    assert.equal(json.services.serving, 2)
    assert.equal(json.operatorId, live.operatorId)
  })

  test('the control socket is a socket with mode 0600', () => {
    const st = statSync(daemon.socketPath)
    assert.ok(st.isSocket())
    assert.equal((st.mode & 0o777).toString(8), '600')
  })
})
