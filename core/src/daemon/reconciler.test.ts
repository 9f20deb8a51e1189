import 'reflect-metadata'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, connect, type Server } from 'node:net'
import { container } from 'tsyringe'
import { FakeInterface, RecordingNameResolver, LoopbackForwarder } from '../testing/index.js'
import { MemoryAllocator } from '../alloc/memory-allocator.js'
import { silentLogger } from '../contracts/logger.js'
import { ALLOCATOR, FORWARDER, INTERFACE, LOGGER, NAME_RESOLVER } from '../di/tokens.js'
import type { DesiredService } from '../protocol/endpoints.js'
import { Reconciler } from './reconciler.js'

const SUBNET = '127.107.0.0/24'

function service(url: string, id = `ep_${url.replace(/\W/g, '')}`): DesiredService {
  const u = new URL(url)
  const proto = u.protocol.slice(0, -1) as DesiredService['proto']
  const port = Number(u.port || (proto === 'https' ? 443 : 80))
  return { key: `${proto}://${u.hostname}:${port}`, url, hostname: u.hostname, port, proto, endpointIds: [id] }
}

async function echoServer(): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => s.pipe(s))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return { server, port: (server.address() as { port: number }).port }
}

async function setup(subnet = SUBNET) {
  const upstream = await echoServer()
  const iface = new FakeInterface()
  await iface.open({ name: 'ngrkt0', subnet })
  const allocator = new MemoryAllocator()
  await allocator.open({ subnet, reserved: ['127.107.0.1'] })
  const names = new RecordingNameResolver()
  await names.open()
  const forwarder = new LoopbackForwarder({ upstream: { host: '127.0.0.1', port: upstream.port } })
  // wired through tsyringe exactly as the daemon does: values in a child scope, the class resolved
  const scope = container.createChildContainer()
  scope.register(INTERFACE, { useValue: iface })
  scope.register(ALLOCATOR, { useValue: allocator })
  scope.register(NAME_RESOLVER, { useValue: names })
  scope.register(FORWARDER, { useValue: forwarder })
  scope.register(LOGGER, { useValue: silentLogger })
  const reconciler = scope.resolve(Reconciler)
  return {
    iface, allocator, names, forwarder, reconciler,
    async close() {
      await forwarder.close()
      await new Promise<void>((r) => upstream.server.close(() => r()))
    },
  }
}

async function roundTrip(address: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: address, port })
    let got = ''
    s.on('connect', () => s.end('ping'))
    s.on('data', (d) => (got += d))
    s.on('end', () => resolve(got))
    s.on('error', reject)
  })
}

test('adds in order allocate → address → name → listen, shares one IP per hostname, and is idempotent', async () => {
  const t = await setup()
  try {
    const events: string[] = []
    const apply = t.iface.applyAddresses.bind(t.iface)
    t.iface.applyAddresses = async (c) => {
      if (c.add.length) events.push('address')
      if (c.remove.length) events.push('remove-address')
      return apply(c)
    }
    const publish = t.names.publish.bind(t.names)
    t.names.publish = async (o) => {
      events.push('name')
      return publish(o)
    }
    const listen = t.forwarder.listen.bind(t.forwarder)
    t.forwarder.listen = async (o) => {
      events.push('listen')
      return listen(o)
    }
    const desired = [service('http://api.prod'), service('tcp://api.prod:5432'), service('http://web.prod:8080')]
    const report = await t.reconciler.reconcile(desired)
    assert.deepEqual(events, ['address', 'name', 'listen', 'listen', 'listen'])
    assert.equal(report.addressesAdded, 2)
    assert.equal(report.listenersAdded, 3)
    assert.equal(report.errors, 0)

    const api = t.allocator.lookup('api.prod')!
    const web = t.allocator.lookup('web.prod')!
    assert.notEqual(api, web)
    assert.deepEqual(new Set(await t.iface.listAddresses()), new Set([api, web]))
    assert.deepEqual(await t.names.list(), [{ hostname: 'api.prod', address: api }, { hostname: 'web.prod', address: web }].sort((a, b) => a.hostname.localeCompare(b.hostname)))
    assert.deepEqual(new Set(t.forwarder.listeners().map((l) => `${l.address}:${l.port}`)), new Set([`${api}:80`, `${api}:5432`, `${web}:8080`]))
    assert.equal(await roundTrip(api, 5432), 'ping')
    const states = t.reconciler.services()
    assert.equal(states.length, 3)
    assert.ok(states.every((s) => s.state === 'serving'))

    events.length = 0
    const again = await t.reconciler.reconcile(desired)
    assert.equal(again.addressesAdded + again.addressesRemoved + again.listenersAdded + again.listenersRemoved, 0)
    assert.equal(again.namesChanged, false)
    assert.ok(!events.includes('address'), 'no interface change when nothing changed')
  } finally {
    await t.close()
  }
})

test('removes in reverse (unlisten → name → address), keeps the mapping, and gives the same IP back', async () => {
  const t = await setup()
  try {
    await t.reconciler.reconcile([service('http://api.prod'), service('http://web.prod')])
    const web = t.allocator.lookup('web.prod')!
    const events: string[] = []
    const unlisten = t.forwarder.unlisten.bind(t.forwarder)
    t.forwarder.unlisten = async (o) => {
      events.push('unlisten')
      return unlisten(o)
    }
    const publish = t.names.publish.bind(t.names)
    t.names.publish = async (o) => {
      events.push('name')
      return publish(o)
    }
    const apply = t.iface.applyAddresses.bind(t.iface)
    t.iface.applyAddresses = async (c) => {
      if (c.remove.length) events.push('remove-address')
      return apply(c)
    }
    const report = await t.reconciler.reconcile([service('http://api.prod')])
    assert.deepEqual(events, ['unlisten', 'name', 'remove-address'])
    assert.equal(report.listenersRemoved, 1)
    assert.equal(report.addressesRemoved, 1)
    assert.ok(!(await t.iface.listAddresses()).includes(web))
    assert.deepEqual((await t.names.list()).map((r) => r.hostname), ['api.prod'])
    assert.equal(t.allocator.list().find((e) => e.hostname === 'web.prod')?.active, false)

    await t.reconciler.reconcile([service('http://api.prod'), service('http://web.prod')])
    assert.equal(t.allocator.lookup('web.prod'), web, 'a returning hostname gets its old IP')

    const down = await t.reconciler.teardown()
    assert.equal(down.listenersRemoved, 2)
    assert.deepEqual(await t.iface.listAddresses(), [])
    assert.deepEqual(await t.names.list(), [])
    assert.deepEqual(t.forwarder.listeners(), [])
  } finally {
    await t.close()
  }
})

test('diffs against the interface, not memory: a crash leftover is removed, a missing address re-added', async () => {
  const t = await setup()
  try {
    await t.iface.addAddress({ address: '127.107.0.200' }) // left by an earlier run
    await t.reconciler.reconcile([service('http://api.prod')])
    const api = t.allocator.lookup('api.prod')!
    assert.deepEqual(await t.iface.listAddresses(), [api])
    await t.iface.removeAddress({ address: api }) // someone removed it behind our back
    const report = await t.reconciler.reconcile([service('http://api.prod')])
    assert.equal(report.addressesAdded, 1)
    assert.deepEqual(await t.iface.listAddresses(), [api])
  } finally {
    await t.close()
  }
})

test('subnet exhaustion fails only the hostnames that got no address', async () => {
  const t = await setup('127.107.0.0/29') // 8 addresses: network, .1 reserved, .2–.6 usable, broadcast
  try {
    const hosts = ['a.prod', 'b.prod', 'c.prod', 'd.prod', 'e.prod', 'f.prod']
    const report = await t.reconciler.reconcile(hosts.map((h) => service(`http://${h}`)))
    const failed = t.reconciler.services().filter((s) => s.state === 'error')
    assert.equal(failed.length, 1)
    assert.equal(failed[0]!.error?.code, 'NGROKD_ERR_ADDRESS_EXHAUSTED')
    assert.equal(report.errors, 1)
    assert.equal(t.forwarder.listeners().length, 5)
    assert.equal((await t.names.list()).length, 5)
  } finally {
    await t.close()
  }
})

test('an address the interface refuses fails that service only; the batch is retried one by one', async () => {
  const t = await setup()
  try {
    await t.reconciler.reconcile([service('http://ok.prod')])
    const nextFree = '127.107.0.3'
    t.iface.injectFailure('addAddress', { address: nextFree, times: 10 })
    t.iface.injectFailure('applyAddresses', { times: 1 })
    await t.reconciler.reconcile([service('http://ok.prod'), service('http://bad.prod'), service('http://fine.prod')])
    const states = new Map(t.reconciler.services().map((s) => [s.hostname, s]))
    assert.equal(t.allocator.lookup('bad.prod'), nextFree)
    assert.equal(states.get('bad.prod')?.state, 'error')
    assert.equal(states.get('bad.prod')?.error?.code, 'NGROKD_ERR_SYSCALL')
    assert.equal(states.get('fine.prod')?.state, 'serving', JSON.stringify(states.get('fine.prod')))
    assert.equal(states.get('ok.prod')?.state, 'serving')
    assert.deepEqual((await t.names.list()).map((r) => r.hostname), ['fine.prod', 'ok.prod'])
    assert.ok(!t.forwarder.listeners().some((l) => l.address === nextFree), 'nothing listens on an address that is not there')
  } finally {
    await t.close()
  }
})
