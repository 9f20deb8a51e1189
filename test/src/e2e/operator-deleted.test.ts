// The operator is deleted at ngrok (dashboard, API) while the daemon runs: the next poll's 404 makes
// it register anew — a new operator and client certificate — and serve on, instead of failing every
// poll until a restart.
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { EchoReply } from '@ngrokd/plugin-simulator'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { simulatedDaemon } from '../helpers/simulated-daemon.js'
import { httpRequest } from '../helpers/clients.js'
import { waitUntil } from '../helpers/wait-until.js'

describe('an operator deleted at ngrok', { skip: netnsSkip }, () => {
  const ctx = simulatedDaemon({ name: 'op-gone', net: netDriverCases('opgone')[0]!, endpoints: ['http://kept.e2e'] })

  test('the next poll registers anew and the endpoint answers through the new operator', async () => {
    const before = (await ctx.daemon.status()).operatorId as string
    assert.equal(ctx.sim.removeOperator(before), true)
    const after = await waitUntil(
      async () => {
        const s = await ctx.daemon.status()
        return s.operatorId !== before && s.lastPoll?.ok === true && s.services.serving === 1 ? (s.operatorId as string) : undefined
      },
      { what: 'a new operator and a good poll', timeoutMs: 120_000 },
    )
    assert.deepEqual(ctx.sim.listOperators().map((o) => o.id), [after])
    assert.match(ctx.daemon.log(), new RegExp(`operator ${before} no longer exists at ngrok \\(deleted\\?\\): registering anew`))
    assert.equal(ctx.daemon.log().split(`operator ${before} no longer exists`).length - 1, 1, "said once")
    const reply = await waitUntil(async () => {
      const r = await httpRequest('http://kept.e2e/')
      return r.status === 200 ? r.json<EchoReply>() : undefined
    }, { what: 'kept.e2e answering through the new operator', timeoutMs: 120_000 })
    assert.equal(reply.host, 'kept.e2e')
  })
})
