import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { Resolver } from 'node:dns/promises'
import { TestFramework, testNameResolver, testPlugin } from '@ngrokd/core/testing'
import plugin, { DnsNameResolver, DnsResponder } from './index.js'

TestFramework.describe = describe
TestFramework.it = it
TestFramework.beforeAll = before
TestFramework.afterAll = after

function resolverAt(port: number): Resolver {
  const r = new Resolver({ timeout: 2000, tries: 1 })
  r.setServers([`127.0.0.1:${port}`])
  return r
}

testPlugin({
  plugin,
  options: { listen: ['127.0.0.1:0'] },
  additionalTests({ withHost }) {
    it('offers the name resolver "dns": what it publishes is answered on the listen address once started', async () => {
      await withHost(async (host) => {
        assert.ok(host.offersNameResolver('dns'))
        const names = (await host.createNameResolver('dns'))!
        await names.open()
        await names.publish({ records: [{ hostname: 'api.prod', address: '10.107.0.2' }] })
        await host.start()
        const checks = await host.doctorChecks()
        const listening = checks.find((c) => c.id === 'dns.responder')
        assert.equal(listening?.status, 'ok', JSON.stringify(checks))
        const port = Number(/127\.0\.0\.1:(\d+)/.exec(listening!.summary)![1])
        assert.deepEqual(await resolverAt(port).resolve4('api.prod'), ['10.107.0.2'])
        await names.publish({ records: [{ hostname: 'db.prod', address: '10.107.0.3' }] })
        assert.deepEqual(await resolverAt(port).resolve4('db.prod'), ['10.107.0.3'])
        await assert.rejects(resolverAt(port).resolve4('api.prod'), { code: 'ENOTFOUND' })
        await host.stop()
        await assert.rejects(resolverAt(port).resolve4('db.prod'), 'nothing answers after stop')
      })
    })
  },
})

// One responder per test env (two resolvers in one test share it, as two daemons would not).
const responders = new Map<string, DnsResponder>()
const responderFor = (dir: string) => responders.get(dir) ?? responders.set(dir, new DnsResponder()).get(dir)!

testNameResolver({
  title: 'dns name resolver conformance',
  create: ({ dir }) => new DnsNameResolver(responderFor(dir)),
  // The answers live in the responder's memory: a new resolver starts with nothing published.
  skip: { restart: true },
  additionalTests({ withResolver }) {
    it('what list() shows is what the responder answers, and nothing else', async () => {
      await withResolver(async ({ resolver, env }) => {
        const responder = responderFor(env.dir)
        await responder.start([{ host: '127.0.0.1', port: 0 }])
        const port = responder.addresses[0]!.port
        try {
          await resolver.publish({ records: [{ hostname: 'api.prod', address: '10.107.0.2' }, { hostname: 'web.demo', address: '10.107.0.4' }] })
          for (const { hostname, address } of await resolver.list()) assert.deepEqual(await resolverAt(port).resolve4(hostname), [address])
          await resolver.publish({ records: [{ hostname: 'api.prod', address: '10.107.0.2' }] })
          await assert.rejects(resolverAt(port).resolve4('web.demo'), { code: 'EREFUSED' })
        } finally {
          await responder.close()
        }
      })
    })
  },
})
