import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NgrokApiClient } from '../api/ngrok-api-client.js'
import { FakeNgrokApi } from '../api/fake-ngrok-api.js'
import type { Logger } from '../contracts/logger.js'
import { silentLogger } from '../contracts/logger.js'
import type { DesiredService } from '../protocol/endpoints.js'
import { EndpointPoller } from './endpoint-poller.js'
import type { ReconcileReport } from './reconciler.js'

const OP = 'k8sop_malformed'
const report = (services: number): ReconcileReport => ({ services, addressesAdded: 0, addressesRemoved: 0, listenersAdded: 0, listenersRemoved: 0, namesChanged: false, errors: 0, durationMs: 0 })

function warnings(): { logger: Logger; lines: string[] } {
  const lines: string[] = []
  const logger: Logger = { ...silentLogger, warn: (a: unknown, b?: unknown) => void lines.push(String(typeof a === 'string' ? a : b)), child: () => logger }
  return { logger, lines }
}

describe('EndpointPoller: a malformed endpoint from the API', () => {
  it('is skipped and reported; the rest of the list is reconciled (through the real API client)', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'ngrokd-poller-'))
    try {
      const fake = new FakeNgrokApi({ apiKey: 'k' })
      const api = new NgrokApiClient({ apiKey: 'k', fetchImpl: fake.fetch, maxRetries: 0 })
      fake.inject(
        { method: 'GET', path: /bound_endpoints/ },
        {
          status: 200,
          headers: { 'content-type': 'application/json' },
          body: {
            endpoints: [
              { id: 'ep_1', url: 'http://api.prod', bindings: ['kubernetes'] },
              { url: 'http://noid.prod', bindings: ['kubernetes'] }, // no id
              null,
              'ep_3',
              { id: 42, url: 'http://numeric.prod' },
              { id: 'ep_2', url: 'tcp://db.prod:5432', bindings: ['kubernetes'] },
            ],
            uri: 'x',
            next_page_uri: null,
          },
        },
      )
      const reconciled: DesiredService[][] = []
      const { logger, lines } = warnings()
      const poller = new EndpointPoller({
        stateDir,
        intervalMs: 60_000,
        logger,
        list: () => api.listBoundEndpoints(OP),
        reconcile: async (services) => {
          reconciled.push(services)
          return report(services.length)
        },
        signal: new AbortController().signal,
      })
      const poll = await poller.pollOnce()
      assert.equal(poll?.ok, true, `the poll succeeds: ${JSON.stringify(poll?.error)}`)
      assert.deepEqual(reconciled.map((s) => s.map((x) => x.key)), [['http://api.prod', 'tcp://db.prod:5432']])
      assert.equal(poll.endpoints, 6)
      const reasons = poll.rejected!.map((r) => r.reason).sort()
      assert.deepEqual(reasons, [
        'is malformed: item 2 of 6 has no id',
        'is malformed: item 3 of 6 is null, not an endpoint object',
        'is malformed: item 4 of 6 is a string, not an endpoint object',
        'is malformed: item 5 of 6 has no id',
      ])
      assert.ok(poll.rejected!.find((r) => r.url === 'http://noid.prod'), 'the id-less endpoint is named by its url')
      assert.equal(lines.filter((l) => /^skipping endpoint \(no id\) .*is malformed/.test(l)).length, 4, lines.join('\n'))
      assert.deepEqual(await poller.cached().then((s) => s?.map((x) => x.key)), ['http://api.prod', 'tcp://db.prod:5432'])
    } finally {
      rmSync(stateDir, { recursive: true, force: true })
    }
  })
})
