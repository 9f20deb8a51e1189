// Scenarios 2, 10 and 11: http (Host header, endpoint id), http on a non-default port, tcp with
// half-close, https with TLS end to end through the tunnel, and 64 MiB each way byte-exact; with
// each interface driver.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { lookup } from 'node:dns/promises'
import { randomBytes } from 'node:crypto'
import { CloudSimulator, type EndpointObject, type EchoReply } from '@ngrokd/plugin-simulator'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { readHosts, managedRecords } from '../helpers/hosts-file.js'
import { echoStream, httpRequest, tcpExchange } from '../helpers/clients.js'
import { bulkGet, bulkPut } from '../helpers/bulk-client.js'
import { snapshotHostsFile } from '../helpers/hosts-guard.js'

const MiB = 1024 * 1024

for (const net of netDriverCases('proto')) {
  describe(`protocols through the tunnel (${net.driver})`, { skip: netnsSkip }, () => {
    let sim: CloudSimulator
    let daemon: E2eDaemon
    let eps: Record<'web' | 'web8080' | 'echo' | 'secure' | 'bulk', EndpointObject>
    const hosts = snapshotHostsFile()

    before(async () => {
      hosts.take()
      sim = await CloudSimulator.start()
      eps = {
        web: sim.addEndpoint({ url: 'http://web.e2e' }),
        web8080: sim.addEndpoint({ url: 'http://web.e2e:8080' }),
        echo: sim.addEndpoint({ url: 'tcp://echo.e2e:7000' }),
        secure: sim.addEndpoint({ url: 'https://secure.e2e' }),
        bulk: sim.addEndpoint({ url: 'tcp://bulk.e2e:9000', backend: 'bulk' }),
      }
      daemon = E2eDaemon.start({ name: `proto-${net.driver}`, sim, net })
      await daemon.waitReady((s) => s.services?.serving === 5)
    })

    after(async () => {
      await daemon?.dispose()
      await sim?.stop()
      hosts.assertRestored()
    })

    test('http: the backend sees the Host header and the request reaches the right endpoint', async () => {
      const res = await httpRequest('http://web.e2e/some/path?q=1', { headers: { 'x-e2e': 'yes' } })
      assert.equal(res.status, 200)
      const echo = res.json<EchoReply>()
      assert.equal(echo.host, 'web.e2e')
      assert.equal(echo.endpoint_id, eps.web.id)
      assert.equal(echo.path, '/some/path?q=1')
      assert.equal(echo.headers['x-e2e'], 'yes')
      // a request body crosses the tunnel too
      const post = await httpRequest('http://web.e2e/upload', { method: 'POST', body: randomBytes(100_000) })
      assert.equal(post.json<EchoReply>().body_bytes, 100_000)
    })

    test('http on a non-default port: its own endpoint, the same IP as the hostname\'s port 80', async () => {
      const res = await httpRequest('http://web.e2e:8080/')
      assert.equal(res.status, 200)
      const echo = res.json<EchoReply>()
      assert.equal(echo.host, 'web.e2e:8080')
      assert.equal(echo.endpoint_id, eps.web8080.id)
      const records = managedRecords(readHosts())
      const services = await daemon.services()
      const addrOf = (url: string) => services.find((s) => s.url === url || s.key === url)?.address
      assert.ok(records.get('web.e2e'), 'web.e2e is in the managed block')
      assert.equal(addrOf('http://web.e2e:8080'), records.get('web.e2e'))
      assert.equal((await lookup('web.e2e', { family: 4 })).address, records.get('web.e2e'))
    })

    test('tcp: the client half-closes and still receives the whole echo', async () => {
      const payload = randomBytes(2 * MiB)
      const r = await tcpExchange('echo.e2e', 7000, payload)
      assert.equal(r.error, undefined, `no error: ${r.error?.message}`)
      assert.equal(r.ended, true, 'the far side ended cleanly after echoing')
      assert.equal(r.received.length, payload.length)
      assert.ok(r.received.equals(payload), 'echo is byte-exact')
    })

    test('https: TLS end to end through the tunnel, backend cert verified against the simulator CA', async () => {
      const res = await httpRequest('https://secure.e2e/tls', { ca: sim.caCertPem })
      assert.equal(res.status, 200)
      const echo = res.json<EchoReply>()
      assert.equal(echo.backend, 'https-echo')
      assert.equal(echo.host, 'secure.e2e')
      assert.equal(echo.endpoint_id, eps.secure.id)
      // the same request without the simulator CA must fail: the tunnel did not terminate TLS
      await assert.rejects(httpRequest('https://secure.e2e/tls'), /certificate|self.signed|issuer/i)
    })

    test('64 MiB each way arrive byte-exact (sha256)', async () => {
      const bytes = 64 * MiB
      const duplex = await echoStream('echo.e2e', 7000, bytes)
      assert.equal(duplex.receivedBytes, bytes)
      assert.equal(duplex.receivedSha256, duplex.sentSha256)

      const up = await bulkPut('bulk.e2e', 9000, bytes)
      assert.equal(up.reply, `${bytes} ${up.sentSha256}`)

      const down = await bulkGet('bulk.e2e', 9000, bytes)
      assert.equal(down.receivedBytes, bytes)
      assert.equal(down.receivedSha256, down.expectedSha256)
    })
  })
}
