// ngrokd doctor says everything it found: every problem of a configuration that does not load (and
// then calls no API at all), a failing check for each service in error, and a ConnRequest through
// the ingress with the daemon's own certificate.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { NGROKD_BIN } from '@ngrokd/core'
import { CloudSimulator } from '@ngrokd/plugin-simulator'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { snapshotHostsFile } from '../helpers/hosts-guard.js'

interface Report {
  ok: boolean
  checks: Array<{ id: string; status: string; summary: string; hint?: string; code?: string }>
}

const run = promisify(execFile)

async function doctor(configFile: string, ...flags: string[]): Promise<{ code: number; report: Report }> {
  const r = await run(process.execPath, [NGROKD_BIN, 'doctor', '--json', '--config', configFile, ...flags], { env: E2eDaemon.childEnv() }).then(
    (x) => ({ code: 0, stdout: x.stdout }),
    (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
  )
  return { code: r.code, report: JSON.parse(r.stdout) as Report }
}

describe('doctor tells all it found', { skip: netnsSkip }, () => {
  let sim: CloudSimulator
  let daemon: E2eDaemon
  let dir: string
  let squatter: Server
  const hosts = snapshotHostsFile()

  before(async () => {
    hosts.take()
    dir = mkdtempSync(join(tmpdir(), 'ngrokd-doctor-honest-'))
    squatter = createServer()
    await new Promise<void>((r) => squatter.listen(6543, '0.0.0.0', r))
    sim = await CloudSimulator.start()
    sim.addEndpoint({ url: 'http://ok.e2e' })
    sim.addEndpoint({ url: 'tcp://blocked.e2e:6543' })
    daemon = E2eDaemon.start({ name: 'doctor-honest', sim, net: netDriverCases('dochon')[1]!, extraConfig: { ingress: { pod_identity: { name: 'doctor-pod' } } } })
    await daemon.waitReady((s) => s.services?.total === 2)
  })

  after(async () => {
    await daemon?.dispose()
    await sim?.stop()
    await new Promise<void>((r) => squatter.close(() => r()))
    rmSync(dir, { recursive: true, force: true })
    hosts.assertRestored()
  })

  test('a configuration that does not load: every problem listed, and no API called with it', async (t) => {
    // a cloud of its own: the running daemon's polls of the other one are not this doctor's calls
    const quiet = await CloudSimulator.start()
    t.after(() => quiet.stop())
    const file = join(dir, 'bad.json')
    writeFileSync(file, JSON.stringify({ api: { url: quiet.apiUrl, key: quiet.apiKey }, net: { subnet: '10.107.0.1/16', driver: 7 }, bogus_key: true }))
    const { code, report } = await doctor(file)
    assert.equal(code, 1)
    const problems = report.checks.filter((c) => c.id === 'config.invalid')
    assert.equal(problems.length, 3, JSON.stringify(report.checks, null, 2))
    assert.ok(problems.some((p) => /net\.subnet/.test(p.summary)) && problems.some((p) => /net\.driver/.test(p.summary)) && problems.some((p) => /bogus_key/.test(p.summary)))
    assert.match(report.checks.find((c) => c.id === 'config.load')!.summary, /3 problems, listed below/)
    assert.equal(report.checks.some((c) => c.id === 'api.reach' || c.id === 'driver.resolve'), false, 'nothing ran on a configuration that did not load')
    assert.equal(quiet.stats().api.total, 0, 'no API call')
  })

  test('a running daemon with a service in error fails, naming the service; the ingress takes our ConnRequest', async () => {
    const before = sim.connRequests().length
    const { code, report } = await doctor(daemon.configFile)
    assert.equal(code, 1)
    const service = report.checks.find((c) => c.id === 'daemon.service')
    assert.equal(service?.status, 'fail')
    assert.match(service!.summary, /tcp:\/\/blocked\.e2e:6543 .*EADDRINUSE: held by node/)
    assert.equal(service?.code, 'NGROKD_ERR_LISTEN')
    const conn = report.checks.find((c) => c.id === 'ingress.conn-request')
    assert.equal(conn?.status, 'ok', JSON.stringify(conn))
    assert.match(conn!.summary, /ConnRequest for [a-z0-9.]+:\d+ accepted with our certificate \(ep_/)
    const sent = sim.connRequests().slice(before)
    assert.equal(sent.length, 1, 'the doctor sent one ConnRequest')
    assert.equal(sent[0]!.podIdentity?.name, 'doctor-pod', 'with the pod identity the daemon sends')
  })
})
