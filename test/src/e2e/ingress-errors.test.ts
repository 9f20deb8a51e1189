// Scenarios 8 and 9: an ingress refusal closes the client's connection and the daemon logs the
// ngrok code; an ingress CA that did not sign the ingress's certificate fails loudly.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { NGROKD_BIN } from '@ngrokd/core'
import { CloudSimulator, type EchoReply } from '@ngrokd/plugin-simulator'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { snapshotHostsFile } from '../helpers/hosts-guard.js'
import { connectAndSend, httpRequest } from '../helpers/clients.js'
import { waitUntil } from '../helpers/wait-until.js'

const net = netDriverCases('ing')[0]!
const GET = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'

describe('ingress refusal', { skip: netnsSkip }, () => {
  let sim: CloudSimulator
  let daemon: E2eDaemon
  const hosts = snapshotHostsFile()
  let okId = ''

  before(async () => {
    hosts.take()
    sim = await CloudSimulator.start()
    okId = sim.addEndpoint({ url: 'http://open.e2e' }).id
    sim.addEndpoint({ url: 'http://refused.e2e' })
    sim.addEndpoint({ url: 'tcp://refused.e2e:6000' })
    daemon = E2eDaemon.start({ name: 'ing-refuse', sim, net })
    await daemon.waitReady((s) => s.services?.serving === 3)
  })

  after(async () => {
    sim?.resetFaults()
    await daemon?.dispose()
    await sim?.stop()
    hosts.assertRestored()
  })

  test('a refused connection is closed without an answer and the log has the ngrok code', async () => {
    sim.injectIngressFault({ kind: 'refuse', host: 'refused.e2e', errorCode: 'ERR_NGROK_3200', errorMessage: 'endpoint is offline' })
    const r = await connectAndSend('refused.e2e', 80, GET)
    assert.equal(r.connectError, undefined, 'the daemon accepted the local connection')
    assert.equal(r.received.length, 0, 'nothing came back')
    assert.notEqual(r.error?.code, 'ETIMEDOUT', 'the connection was closed, not left hanging')
    await assert.rejects(httpRequest('http://refused.e2e/'), /socket hang up|ECONNRESET|EPIPE/)
    const tcp = await connectAndSend('refused.e2e', 6000, 'hello')
    assert.equal(tcp.received.length, 0)
    assert.notEqual(tcp.error?.code, 'ETIMEDOUT')

    assert.ok((sim.stats().ingress.refusedByCode['ERR_NGROK_3200'] ?? 0) >= 3, 'the simulator refused all three')
    const line = await waitUntil(() => daemon.logRecords().find((l) => JSON.stringify(l).includes('ERR_NGROK_3200')), {
      what: 'a log line with ERR_NGROK_3200',
      timeoutMs: 5_000,
    })
    assert.ok(line.level >= 40, 'logged at warn or above')
    assert.match(JSON.stringify(line), /refused\.e2e/, 'the log line names the hostname')
    assert.match(JSON.stringify(line), /endpoint is offline/, "the log line has ngrok's message")
  })

  test('other hostnames are unaffected by a refusal of one', async () => {
    const res = await httpRequest('http://open.e2e/')
    assert.equal(res.json<EchoReply>().endpoint_id, okId)
  })

  test('the refusal is per connection: once the ingress accepts again, the same hostname serves', async () => {
    sim.resetFaults()
    const res = await httpRequest('http://refused.e2e/')
    assert.equal(res.status, 200)
  })
})

describe('wrong ingress CA', { skip: netnsSkip }, () => {
  let sim: CloudSimulator
  let other: CloudSimulator
  let daemon: E2eDaemon
  const hosts = snapshotHostsFile()

  before(async () => {
    hosts.take()
    sim = await CloudSimulator.start()
    other = await CloudSimulator.start() // only for its CA, which did not sign sim's ingress certificate
    sim.addEndpoint({ url: 'http://pinned.e2e' })
    daemon = E2eDaemon.start({ name: 'ing-ca', sim, net, ingressCaPem: other.caCertPem })
    await daemon.waitReady((s) => s.services?.serving === 1)
  })

  after(async () => {
    await daemon?.dispose()
    await other?.stop()
    await sim?.stop()
    hosts.assertRestored()
  })

  test('said at error right after the registration, before any connection, and shown by status', async () => {
    const status = await daemon.waitFor((s) => s.ingressCheck !== undefined, "the ingress check after registration")
    assert.equal(status.ingressCheck!.ok, false)
    assert.equal(status.ingressCheck!.code, 'NGROKD_ERR_INGRESS_TLS')
    assert.match(status.ingressCheck!.hint ?? '', /ingress\.ca_file/)
    assert.equal(status.traffic?.connections ?? 0, 0, 'no user connection was needed to find it')
    const line = daemon.logRecords().find((l) => l.level >= 50 && /the binding ingress failed its check/.test(String(l.msg)))
    assert.ok(line, 'an error-level line says it')
    const { stdout } = await promisify(execFile)(process.execPath, [NGROKD_BIN, 'status', '--config', daemon.configFile], { env: E2eDaemon.childEnv() })
    assert.match(stdout, /^ {12}FAILED its check .*: .*certificate/m, stdout)
  })

  test('connections close and the log says the server certificate could not be verified', async () => {
    const r = await connectAndSend('pinned.e2e', 80, GET)
    assert.equal(r.connectError, undefined)
    assert.equal(r.received.length, 0, 'nothing came back')
    assert.notEqual(r.error?.code, 'ETIMEDOUT', 'the connection was closed, not left hanging')
    assert.equal(sim.stats().ingress.accepted, 0, 'no connection got through the ingress')
    const line = await waitUntil(() => daemon.logRecords().find((l) => l.level >= 40 && /server certificate/i.test(JSON.stringify(l))), {
      what: 'a log line about the server certificate',
      timeoutMs: 5_000,
    })
    const text = JSON.stringify(line)
    assert.match(text, /unknown CA|verif/i, 'says why the certificate was not accepted')
    assert.match(text, /NGROKD_ERR_INGRESS_TLS/, 'carries the error code')
    assert.match(text, /ingress\.ca_file/, 'names the setting that fixes it')
    // and status does not read as if all were well with the ingress
    const { stdout } = await promisify(execFile)(process.execPath, [NGROKD_BIN, 'status', '--config', daemon.configFile], { env: E2eDaemon.childEnv() })
    const ingressLine = stdout.split('\n').find((l) => l.startsWith('ingress:'))
    assert.match(ingressLine ?? '', /verification on, but [1-9]\d* TLS handshake\(s\) with it failed: check ingress\.ca_file/, stdout)
  })
})

describe('an ingress check that fails once', { skip: netnsSkip }, () => {
  test('is made again before each poll until it passes: status then shows no failure, and the log says it passes again', async () => {
    const hosts = snapshotHostsFile()
    hosts.take()
    const sim = await CloudSimulator.start()
    let daemon: E2eDaemon | undefined
    try {
      sim.addEndpoint({ url: 'http://again.e2e' })
      // the first handshake (the check's) is held past the daemon's handshake timeout; the next ones are not
      sim.injectIngressFault({ kind: 'handshake-delay', ms: 4_000, count: 1 })
      daemon = E2eDaemon.start({ name: 'ing-again', sim, net, extraConfig: { forwarder: { handshake_timeout: '1s' } } })
      // the next poll (every second here) checks again: the failure and the recovery, in that order, in the log
      const said = () => daemon!.logRecords().filter((l) => /failed its check|passes its check again/.test(String(l.msg)))
      await waitUntil(() => said().length >= 2, { what: 'a failed ingress check and its recovery in the log', timeoutMs: 60_000 })
      const [failed, recovered] = said()
      assert.equal(failed!.level, 50)
      assert.match(JSON.stringify(failed), /NGROKD_ERR_INGRESS_TIMEOUT/)
      assert.equal(recovered!.level, 30)
      assert.match(String(recovered!.msg), /passes its check again/)
      assert.equal((await daemon.status()).ingressCheck?.ok, true)
      const { stdout } = await promisify(execFile)(process.execPath, [NGROKD_BIN, 'status', '--config', daemon.configFile], { env: E2eDaemon.childEnv() })
      assert.doesNotMatch(stdout, /FAILED its check/)
    } finally {
      await daemon?.dispose()
      await sim.stop()
      hosts.assertRestored()
    }
  })
})

describe('an ingress inside ngrokd\'s own subnet', { skip: netnsSkip }, () => {
  let sim: CloudSimulator
  let daemon: E2eDaemon
  const hosts = snapshotHostsFile()

  before(async () => {
    hosts.take()
    sim = await CloudSimulator.start()
    sim.addEndpoint({ url: 'http://loop.e2e' })
    // the first address the subnet hands out (the endpoint's own listener, were the ingress dialled there), written
    // as one number, which a connect reads as that address as well
    const [a, b] = net.subnet.split('.').map(Number)
    const ownAddress = ((a! * 256 + b!) * 65_536 + 2).toString()
    daemon = E2eDaemon.start({ name: 'ing-loop', sim, net, extraConfig: { ingress: { endpoint: `${ownAddress}:80` } } })
    await daemon.waitReady((s) => s.services?.serving === 1)
  })

  after(async () => {
    await daemon?.dispose()
    await sim?.stop()
    hosts.assertRestored()
  })

  test('is refused per connection, naming the subnet and the fix, and never dialled (no connection loops back)', async () => {
    const r = await connectAndSend('loop.e2e', 80, GET)
    // refused at once: the reset may reach the client before its connect is through
    assert.ok(r.connectError === undefined || (r.connectError as NodeJS.ErrnoException).code === 'ECONNRESET', String(r.connectError))
    assert.equal(r.received.length, 0, 'nothing came back')
    // the connection's own line (it names the listener), not one of the registration's
    const line = await waitUntil(() => daemon.logRecords().find((l) => l.level >= 40 && l.listener !== undefined && /own subnet/.test(JSON.stringify(l))), {
      what: "a log line about the ingress in ngrokd's own subnet",
      timeoutMs: 5_000,
    })
    assert.match(JSON.stringify(line), /ingress\.endpoint/, 'names the setting that fixes it')
    const status = await daemon.status()
    assert.equal(status.traffic?.connections, 1, `one local connection, not one per loop: ${JSON.stringify(status.traffic)}`)
    assert.equal(daemon.logRecords().some((l) => /registration failed/.test(String(l.msg))), false, 'the registration is not said to have failed')
  })
})
