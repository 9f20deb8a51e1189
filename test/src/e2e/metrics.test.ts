// Per-connection metrics: `ngrokd status` totals, the control API's /v1/metrics, and the Prometheus
// text endpoint (metrics.prometheus_listen, off by default) after real traffic and a refusal.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createServer } from 'node:net'
import { promisify } from 'node:util'
import { NGROKD_BIN, controlRequest } from '@ngrokd/core'
import { CloudSimulator } from '@ngrokd/plugin-simulator'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { httpRequest, connectAndSend } from '../helpers/clients.js'
import { snapshotHostsFile } from '../helpers/hosts-guard.js'

async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const { port } = s.address() as { port: number }
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

function scrape(url: string): Promise<string> {
  return httpRequest(url).then((r) => {
    assert.equal(r.status, 200)
    return r.body.toString()
  })
}

describe('metrics', { skip: netnsSkip }, () => {
  let sim: CloudSimulator
  let daemon: E2eDaemon
  let metricsUrl = ''
  const hosts = snapshotHostsFile()

  before(async () => {
    hosts.take()
    sim = await CloudSimulator.start()
    sim.addEndpoint({ url: 'http://counted.e2e' })
    sim.addEndpoint({ url: 'http://refused.e2e' })
    const port = await freePort()
    metricsUrl = `http://127.0.0.1:${port}/metrics`
    daemon = E2eDaemon.start({ name: 'metrics', sim, net: netDriverCases('metric')[0]!, extraConfig: { metrics: { prometheus_listen: `127.0.0.1:${port}` } } })
    await daemon.waitReady((s) => s.services?.serving === 2)
  })

  after(async () => {
    await daemon?.dispose()
    await sim?.stop()
    hosts.assertRestored()
  })

  test('bytes, connections and refusals by ngrok code show in /v1/metrics, status and Prometheus', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await httpRequest('http://counted.e2e/x', { method: 'POST', body: Buffer.alloc(1000, 1) })).status, 200)
    sim.injectIngressFault({ kind: 'refuse', host: 'refused.e2e', errorCode: 'ERR_NGROK_3200', errorMessage: 'endpoint offline' })
    await connectAndSend('refused.e2e', 80, 'GET / HTTP/1.1\r\nHost: refused.e2e\r\n\r\n')
    sim.resetFaults()

    const snap = await controlRequest<{ listeners: Array<Record<string, any>> }>(daemon.socketPath, 'GET', '/v1/metrics')
    const counted = snap.listeners.find((l) => l.target.hostname === 'counted.e2e')!
    const refused = snap.listeners.find((l) => l.target.hostname === 'refused.e2e')!
    assert.equal(counted.totalConnections, 3)
    assert.ok(counted.bytesIn >= 3000, `bytes in ${counted.bytesIn}`)
    assert.ok(counted.bytesOut > 0)
    assert.equal(refused.errors.ERR_NGROK_3200, 1)

    const text = await scrape(metricsUrl)
    assert.match(text, /^ngrokd_connections_total\{hostname="counted\.e2e",port="80",proto="http",listen="[\d.]+:80"\} 3$/m)
    assert.match(text, /^ngrokd_connection_errors_total\{hostname="refused\.e2e",.*code="ERR_NGROK_3200"\} 1$/m)
    assert.match(text, /^ngrokd_services\{state="serving"\} 2$/m)

    const { stdout } = await promisify(execFile)(process.execPath, [NGROKD_BIN, 'status', '--config', daemon.configFile], { env: E2eDaemon.childEnv() })
    assert.match(stdout, /traffic: +4 connections/)
    assert.match(stdout, /errors: +ERR_NGROK_3200 ×1/)
    assert.match(stdout, new RegExp(`metrics: +${metricsUrl.replace(/[.]/g, '\\.')}`))
    assert.match(stdout, /^plugin: +prometheus \S+ running$/m, 'the plugin that serves them is listed')

    // doctor says whether they are served, though only the older metrics.prometheus_listen turned them on
    const doctor = await promisify(execFile)(process.execPath, [NGROKD_BIN, 'doctor', '--json', '--offline', '--config', daemon.configFile], { env: E2eDaemon.childEnv() }).catch((e: { stdout: string }) => e)
    const checks = (JSON.parse(doctor.stdout) as { checks: Array<{ id: string; status: string }> }).checks
    assert.deepEqual(checks.find((c) => c.id === 'plugin.prometheus')?.status, 'ok', doctor.stdout)
  })
})
