import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { Resolver } from 'node:dns/promises'
import { TestFramework, testNameResolver, testPlugin } from '@ngrokd/core/testing'
import { isNgrokdError, silentLogger } from '@ngrokd/core/plugin'
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

describe('dns plugin: options', () => {
  it('checkOptions refuses a listen entry that is no IP address with a port (the rule register() parses with), naming it', () => {
    const check = (listen: string[]) => plugin.checkOptions!({ listen, ttl: 5, suffixes: [] })
    check(['10.107.0.1', '127.0.0.1:5353', '[::1]:53'])
    check(undefined as unknown as string[]) // the default: the interface's address
    assert.throws(() => check(['10.107.0.1', 'localhost:53']), (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_PLUGIN_INVALID'), String(e))
      assert.match(e.message, /^options\.listen\.1 is not an IP address with an optional port 0-65535 \(got "localhost:53"\)$/)
      assert.match(e.hint!, /write e\.g\. 10\.107\.0\.1/)
      return true
    })
    assert.throws(() => check(['10.107.0.1:99999']), /options\.listen\.0 is not an IP address/)
  })
})

describe('dns plugin: a responder that cannot listen', () => {
  it('publishes through the hosts-file resolver instead, and its start fails with why (the plugin is then degraded)', async () => {
    // the port the responder is told to use is already held
    const { createSocket } = await import('node:dgram')
    const holder = createSocket('udp4')
    await new Promise<void>((resolve) => holder.bind(0, '127.0.0.1', resolve))
    const port = holder.address().port
    const hooks: { onStart: Array<() => Promise<void> | void>; onStop: Array<() => Promise<void> | void> } = { onStart: [], onStop: [] }
    const published: string[][] = []
    const hostsFile = {
      resolver: 'hosts-file',
      async open() {},
      async publish({ records }: { records: ReadonlyArray<{ hostname: string; address: string }> }) {
        published.push(records.map((r) => `${r.hostname} ${r.address}`))
        return { changed: true }
      },
      async list() {
        return []
      },
      async close() {},
      async diagnose() {
        return []
      },
    }
    let factory: (() => unknown) | undefined
    const checks: Array<() => Promise<Array<{ id: string; status: string; summary: string }>>> = []
    const ctx = {
      name: 'dns',
      options: { listen: [`127.0.0.1:${port}`], ttl: 5, suffixes: [] },
      logger: silentLogger,
      platform: 'linux',
      stateDir: '/nonexistent',
      interface: async () => ({ name: 'ngrokd0', address: '127.0.0.1' }),
      hostsFileResolver: () => hostsFile,
      provideNameResolver: (_name: string, f: () => unknown) => void (factory = f),
      addDoctorChecks: (c: (typeof checks)[number]) => void checks.push(c),
      addRoute: () => {},
      hooks: { onStart: (fn: () => void) => void hooks.onStart.push(fn), afterReconcile: () => {}, onStop: (fn: () => void) => void hooks.onStop.push(fn) },
    }
    try {
      await plugin.register(ctx as never)
      const names = (await factory!()) as DnsNameResolver
      await names.open()
      await names.publish({ records: [{ hostname: 'api.prod', address: '10.107.0.2' }] })
      await assert.rejects(async () => {
        for (const start of hooks.onStart) await start()
      }, (e: unknown) => (e as { code?: string }).code === 'NGROKD_ERR_LISTEN')
      assert.deepEqual(published, [['api.prod 10.107.0.2']], 'what was published went to the hosts file')
      await names.publish({ records: [{ hostname: 'db.prod', address: '10.107.0.3' }] })
      assert.deepEqual(published.at(-1), ['db.prod 10.107.0.3'], 'and so does every later publish')
      const route = (await Promise.all(checks.map((c) => c()))).flat().find((c) => c.id === 'dns.resolved')
      assert.match(route?.summary ?? '', /the responder could not listen .*the names are published in the hosts file instead/)
      for (const stop of hooks.onStop) await stop()
      await names.close()
    } finally {
      holder.close()
    }
  })
})
