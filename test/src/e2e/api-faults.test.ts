// Scenario 6: ngrok API 429s (with Retry-After) and 500s back off and tear nothing down: the
// services keep answering through the outage and the daemon recovers after it.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { CloudSimulator, type EchoReply } from '@ngrokd/plugin-simulator'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { managedRecords, readHosts } from '../helpers/hosts-file.js'
import { snapshotHostsFile } from '../helpers/hosts-guard.js'
import { httpRequest, tcpExchange } from '../helpers/clients.js'
import { waitUntil } from '../helpers/wait-until.js'

// loopback-alias: the API path does not depend on the driver
const net = netDriverCases('api')[0]!
const TIMER_SLACK_MS = 50

describe('API faults: back off, keep serving, recover', { skip: netnsSkip }, () => {
  let sim: CloudSimulator
  let daemon: E2eDaemon
  const hosts = snapshotHostsFile()
  let boundPath = ''
  let records = new Map<string, string>()
  let webId = ''

  /** The services answer as before: by name, from the right endpoint, with unchanged names. */
  async function assertServing(): Promise<void> {
    const res = await httpRequest('http://web.e2e/')
    assert.equal(res.json<EchoReply>().endpoint_id, webId)
    assert.equal((await tcpExchange('db.e2e', 5432, Buffer.from('x'))).received.toString(), 'x')
    assert.deepEqual(managedRecords(readHosts()), records)
  }

  before(async () => {
    hosts.take()
    sim = await CloudSimulator.start()
    webId = sim.addEndpoint({ url: 'http://web.e2e' }).id
    sim.addEndpoint({ url: 'tcp://db.e2e:5432' })
    daemon = E2eDaemon.start({ name: 'api-faults', sim, net })
    const status = await daemon.waitReady((s) => s.services?.serving === 2)
    boundPath = `/kubernetes_operators/${status.operatorId}/bound_endpoints`
    records = managedRecords(readHosts())
    assert.equal(records.size, 2)
  })

  after(async () => {
    sim?.resetFaults()
    await daemon?.dispose()
    await sim?.stop()
    hosts.assertRestored()
  })

  test('429 with Retry-After: the next request waits at least that long; services keep answering', async () => {
    const RETRY_AFTER_S = 2
    const since = Date.now()
    sim.injectApiFault({ kind: 'rate-limit', count: 2, retryAfterSeconds: RETRY_AFTER_S, pathPrefix: boundPath })
    const bound = () => sim.apiRequests().filter((r) => r.path === boundPath && r.receivedAt >= since).sort((x, y) => x.receivedAt - y.receivedAt)
    let servedDuring = 0
    // wait for the two 429s and then a 200 on the same path, serving requests all the while
    await waitUntil(
      async () => {
        await assertServing()
        servedDuring++
        const seen = bound()
        const first429 = seen.findIndex((r) => r.status === 429)
        return first429 >= 0 && seen.slice(first429).some((r, i) => i >= 2 && r.status === 200)
      },
      { what: 'two 429s then a successful bound_endpoints request', timeoutMs: 60_000, intervalMs: 100 },
    )
    const seen = bound()
    const first429 = seen.findIndex((r) => r.status === 429)
    const [a, b, c] = seen.slice(first429, first429 + 3)
    assert.deepEqual([a!.status, b!.status, c!.status], [429, 429, 200])
    // A lower bound only, never an upper one. The simulator notes a request's arrival before it answers it, and the
    // next one is sent after the answer came: the gap is Retry-After or more, but for a timer's and Date's rounding
    // (TIMER_SLACK_MS); a client that ignored the header (first backoff steps of 0.5-1 s) fails.
    assert.ok(b!.receivedAt - a!.receivedAt >= RETRY_AFTER_S * 1000 - TIMER_SLACK_MS, `second request ${b!.receivedAt - a!.receivedAt} ms after the first 429 (Retry-After ${RETRY_AFTER_S} s)`)
    assert.ok(c!.receivedAt - b!.receivedAt >= RETRY_AFTER_S * 1000 - TIMER_SLACK_MS, `third request ${c!.receivedAt - b!.receivedAt} ms after the second 429`)
    assert.ok(servedDuring > 1, 'requests were served while the API answered 429')
    await assertServing()
  })

  test('500s until the API recovers: polls fail, nothing is torn down, the next poll after recovery succeeds', async () => {
    sim.injectApiFault({ kind: 'server-error', status: 500, pathPrefix: boundPath })
    const failed = await waitUntil(
      async () => {
        const s = await daemon.status()
        return s.lastPoll?.ok === false ? s.lastPoll : undefined
      },
      { what: 'a failed poll during the 500 outage', timeoutMs: 90_000, intervalMs: 100 },
    )
    assert.ok(failed.error?.message, 'the failed poll says why')
    const failures = sim.stats().api.byStatus['500'] ?? 0
    assert.ok(failures >= 2, 'the client retried the 500 before giving the poll up')
    // one failed poll's retries (plus perhaps the first of the next poll): bounded, not a hammering loop
    assert.ok(failures <= 12, `${failures} requests answered 500 by the time the first poll gave up`)
    assert.match(daemon.log(), /poll failed, keeping what is serving|poll failed/i)

    // the outage tears nothing down
    await assertServing()
    const during = await daemon.services()
    assert.equal(during.length, 2)
    assert.ok(during.every((s) => s.state === 'serving'))

    sim.resetFaults()
    const recovered = Date.now()
    await waitUntil(
      async () => {
        const s = await daemon.status()
        return s.lastPoll?.ok === true && Date.parse(s.lastPoll.at) >= recovered
      },
      { what: 'a successful poll after the outage', timeoutMs: 60_000 },
    )
    await assertServing()
  })
})

describe('a first registration the API does not answer', { skip: netnsSkip }, () => {
  let sim: CloudSimulator
  let daemon: E2eDaemon | undefined

  before(async () => {
    sim = await CloudSimulator.start()
    sim.addEndpoint({ url: 'http://web.hang' })
  })

  after(async () => {
    sim?.resetFaults()
    await daemon?.dispose()
    await sim?.stop()
  })

  test('is said at warn and shown by status at its first timeout, not once every retry has run out', async () => {
    // every API request hangs far longer than api.timeout
    sim.injectApiFault({ kind: 'latency', ms: 600_000, count: 1_000 })
    daemon = E2eDaemon.start({ name: 'api-hang', sim, net, extraConfig: { api: { timeout: '1s' } } })
    const status = await daemon.waitFor((s) => s.apiKey?.lastError !== undefined, 'the API\'s first timeout in status')
    assert.equal(status.phase, 'registering')
    assert.match(status.apiKey.lastError.message, /^ngrok api: GET \/kubernetes_operators\S*: timed out after 1000 ms \(NGROKD_ERR_API_UNREACHABLE\); trying again in \d+ s$/)
    const said = daemon.logRecords().filter((l) => l.level === 40 && /^registering: ngrok api: GET .*timed out after 1000 ms \(NGROKD_ERR_API_UNREACHABLE\); trying again in \d+ s\n {2}hint: check that http:\/\/127\.0\.0\.1:\d+ is reachable/.test(l.msg))
    assert.equal(said.length, 1, daemon.log())
    sim.resetFaults()
    await daemon.waitReady((s) => s.services?.serving === 1)
  })
})
