// NgrokApiClient (core/src/api) against the cloud simulator over a real loopback socket. The client's
// own rules (retries, errors, pagination edge cases) are unit-tested in core with a scripted fetch.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { NgrokApiClient } from '@ngrokd/core'
import { CloudSimulator } from '@ngrokd/plugin-simulator'

const API_KEY = '2uJAnotarealkey_3fQk8vRmX0cT7nWbL5yZpA1dE'

describe('NgrokApiClient: pagination', () => {
  it('lists 250 endpoints from the simulator over a real loopback socket in three pages', async () => {
    const sim = await CloudSimulator.start({ apiKey: API_KEY })
    try {
      const api = new NgrokApiClient({ apiKey: API_KEY, baseUrl: sim.apiUrl })
      const op = await api.createOperator({ enabled_features: ['bindings'] })
      for (let i = 0; i < 250; i++) sim.addEndpoint({ url: `http://svc${i}.prod` })
      const endpoints = await api.listBoundEndpoints(op.id)
      assert.equal(endpoints.length, 250)
      assert.equal(new Set(endpoints.map((e) => e.id)).size, 250)
      const requests = sim.apiRequests()
      assert.equal(requests.filter((r) => r.method === 'GET' && r.path === `/kubernetes_operators/${op.id}/bound_endpoints`).length, 3)
      assert.equal(requests[0]!.headers['authorization'], `Bearer ${API_KEY}`)
      assert.equal(requests[0]!.headers['ngrok-version'], '2')
    } finally {
      await sim.stop()
    }
  })
})
