import 'reflect-metadata'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, connect, type Server } from 'node:net'
import { container } from 'tsyringe'
import { FakeInterface, RecordingNameResolver, LoopbackForwarder, recordingLogger } from '../testing/index.js'
import { MemoryAllocator } from '../alloc/memory-allocator.js'
import { silentLogger, type Logger } from '../contracts/logger.js'
import { ALLOCATOR, FORWARDER, INTERFACE, LOGGER, NAME_RESOLVER } from '../di/tokens.js'
import type { DesiredService } from '../protocol/endpoints.js'
import type { ListenOptions } from '../contracts/forwarder.js'
import { NetworkPorts } from '../network/network-ports.js'
import { Reconciler, type NetworkModeOptions } from './reconciler.js'
import { NgrokdError } from '../errors/ngrokd-error.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

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

async function setup(subnet = SUBNET, logger: Logger = silentLogger, allocator = new MemoryAllocator()) {
  const upstream = await echoServer()
  const iface = new FakeInterface()
  await iface.open({ name: 'ngrkt0', subnet })
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
  scope.register(LOGGER, { useValue: logger })
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

test('adds in order allocate → address → listen → name (a name only once its listeners are ours), shares one IP per hostname, and is idempotent', async () => {
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
    assert.deepEqual(events, ['address', 'listen', 'listen', 'listen', 'name'])
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

test('a frozen name resolver: only the hostnames it does not have as wanted carry the name error (a new endpoint\'s), not every one it kept', async () => {
  const t = await setup()
  try {
    await t.reconciler.reconcile([service('http://api.prod')])
    t.names.publish = async () => {
      throw new NgrokdError('NGROKD_ERR_NAMES_FROZEN', 'hosts-file: name changes are frozen: cannot write /etc/hosts: EROFS', { hint: 'make it writable' })
    }
    await t.reconciler.reconcile([service('http://api.prod'), service('http://web.prod')])
    const byHost = new Map(t.reconciler.services().map((s) => [s.hostname, s]))
    assert.equal(byHost.get('api.prod')?.nameError, undefined, 'published before, and still in place')
    assert.equal(byHost.get('web.prod')?.nameError?.code, 'NGROKD_ERR_NAMES_FROZEN')
  } finally {
    await t.close()
  }
})

test('removes in reverse (name → unlisten → address: the name goes first), keeps the mapping, and gives the same IP back', async () => {
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
    assert.deepEqual(events, ['name', 'unlisten', 'name', 'remove-address'], 'unpublished before the listener goes; the final publish changes nothing')
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

test('a hostname with a port another program holds is not published, and every service of it says why', async () => {
  const t = await setup()
  try {
    const listen = t.forwarder.listen.bind(t.forwarder)
    t.forwarder.listen = async (o) => {
      if (o.port === 5432) throw new NgrokdError('NGROKD_ERR_LISTEN', `cannot listen on ${o.address}:5432: EADDRINUSE: held by postgres (pid 812) on 0.0.0.0:5432`)
      return listen(o)
    }
    const report = await t.reconciler.reconcile([service('http://db.prod'), service('tcp://db.prod:5432'), service('http://web.prod')])
    assert.deepEqual((await t.names.list()).map((r) => r.hostname), ['web.prod'], 'db.prod must not point at an address where another program holds a port')
    const byUrl = new Map(t.reconciler.services().map((s) => [s.url, s]))
    assert.equal(byUrl.get('tcp://db.prod:5432')?.error?.code, 'NGROKD_ERR_LISTEN')
    assert.match(byUrl.get('tcp://db.prod:5432')!.error!.message, /postgres \(pid 812\)/)
    assert.equal(byUrl.get('http://db.prod')?.state, 'error')
    assert.equal(byUrl.get('http://db.prod')?.error?.code, 'NGROKD_ERR_NAME_WITHHELD')
    assert.match(byUrl.get('http://db.prod')!.error!.message, /db\.prod is not published: tcp:\/\/db\.prod:5432 cannot be served \(.*postgres/)
    assert.equal(byUrl.get('http://web.prod')?.state, 'serving')
    assert.equal(report.errors, 2)

    // once the port is free again, the next reconcile publishes the name
    t.forwarder.listen = listen
    await t.reconciler.reconcile([service('http://db.prod'), service('tcp://db.prod:5432'), service('http://web.prod')])
    assert.deepEqual((await t.names.list()).map((r) => r.hostname).sort(), ['db.prod', 'web.prod'])
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

test('names removed under the daemon again and again (another program rewrites the hosts file): said once, once more the third time with who likely does it, then at debug', async () => {
  const logger = recordingLogger()
  const t = await setup(SUBNET, logger)
  try {
    const desired = [service('http://api.prod'), service('http://web.prod')]
    await t.reconciler.reconcile(desired)
    for (let i = 0; i < 6; i++) {
      t.names.published.records = [] // the block gone again
      await t.reconciler.reconcile(desired)
      assert.deepEqual(t.names.published.records.map((r) => r.hostname).sort(), ['api.prod', 'web.prod'], 'put back each time')
    }
    const said = logger.at('warn').filter((r) => r.msg.includes('under the daemon')).map((r) => r.msg)
    assert.equal(said.length, 2, said.join('\n'))
    assert.equal(said[0], '2 names (api.prod, web.prod) were removed from name resolver recording under the daemon: publishing them again')
    assert.match(said[1]!, /^2 names \(api\.prod, web\.prod\) were removed .* \(3 times within 1 min\): something else changes name resolver recording; each time they are published again, said at debug until 10 minutes pass without it$/)
    assert.equal(logger.at('debug').filter((r) => r.msg.includes('under the daemon')).length, 4)
  } finally {
    await t.close()
  }
})

test('an address or a name removed under the daemon is put back with one warning each, said again only once it was back in place', async () => {
  const logger = recordingLogger()
  const t = await setup(SUBNET, logger)
  try {
    const desired = [service('http://api.prod'), service('http://web.prod')]
    await t.reconciler.reconcile(desired)
    await t.reconciler.reconcile(desired)
    assert.deepEqual(logger.at('warn'), [], 'nothing changed under it: nothing said')
    const api = t.allocator.lookup('api.prod')!
    await t.iface.removeAddress({ address: api }) // `ip addr del`
    t.names.published.records = t.names.published.records.filter((r) => r.hostname !== 'web.prod') // the block edited
    await t.reconciler.reconcile(desired)
    assert.deepEqual(logger.at('warn').map((r) => r.msg), [
      '1 name (web.prod) was removed from name resolver recording under the daemon: publishing it again',
      `1 address (${api}) was removed from the interface under the daemon: adding it back`,
    ])
    assert.deepEqual((await t.iface.listAddresses()).sort(), [api, t.allocator.lookup('web.prod')!].sort())
    assert.deepEqual(t.names.published.records.map((r) => r.hostname).sort(), ['api.prod', 'web.prod'])
    await t.reconciler.reconcile(desired)
    assert.equal(logger.at('warn').length, 2, 'back in place: nothing more said')

    // put back, then removed again: said again; an address that cannot be added back is said once, not at every poll
    const add = t.iface.addAddress.bind(t.iface)
    const applyAddresses = t.iface.applyAddresses.bind(t.iface)
    t.iface.addAddress = async () => { throw new NgrokdError('NGROKD_ERR_PERMISSION', 'refused') }
    t.iface.applyAddresses = async (c) => { if (c.add.length) throw new NgrokdError('NGROKD_ERR_PERMISSION', 'refused'); return applyAddresses(c) }
    await t.iface.removeAddress({ address: api })
    await t.reconciler.reconcile(desired)
    await t.reconciler.reconcile(desired)
    assert.equal(logger.at('warn').filter((r) => r.msg.includes('removed from the interface')).length, 2)
    t.iface.addAddress = add
    t.iface.applyAddresses = applyAddresses
    await t.reconciler.reconcile(desired)
    assert.equal(logger.at('warn').filter((r) => r.msg.includes('removed from the interface')).length, 2, 'added back: nothing was removed')
    await t.reconciler.teardown()
    assert.equal(logger.at('warn').filter((r) => r.msg.includes('under the daemon')).length, 3, 'teardown removes its own: nothing said')
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

test('a name that cannot be unpublished keeps its address from every other hostname until it is withdrawn', async () => {
  const t = await setup('127.107.0.0/29') // .2–.6 usable: five hostnames fill it
  try {
    const hosts = ['a.prod', 'b.prod', 'c.prod', 'd.prod', 'e.prod']
    await t.reconciler.reconcile(hosts.map((h) => service(`http://${h}`)))
    const aAddress = t.allocator.lookup('a.prod')!
    const publish = t.names.publish.bind(t.names)
    t.names.publish = async () => {
      throw new NgrokdError('NGROKD_ERR_NAMES_FROZEN', 'the hosts file is read-only')
    }
    // a.prod goes away while its name cannot: the stale name must never reach f.prod's endpoint
    const next = ['b.prod', 'c.prod', 'd.prod', 'e.prod', 'f.prod'].map((h) => service(`http://${h}`))
    const report = await t.reconciler.reconcile(next)
    assert.deepEqual(report.namesNotWithdrawn, ['a.prod'])
    assert.ok((await t.names.list()).some((r) => r.hostname === 'a.prod' && r.address === aAddress), 'a.prod is still published')
    assert.ok((await t.iface.listAddresses()).includes(aAddress), 'and its address stays on the interface: removed, the name would lead off the machine')
    assert.ok(!t.forwarder.listeners().some((l) => l.address === aAddress), 'with no listener: a connection is refused here')
    assert.equal(t.allocator.lookup('f.prod'), undefined, 'f.prod got no address: the only free one is still named a.prod')
    assert.equal(t.reconciler.services().find((s) => s.hostname === 'f.prod')?.error?.code, 'NGROKD_ERR_ADDRESS_EXHAUSTED')
    // once names can change again, a.prod is withdrawn and its address goes to f.prod
    t.names.publish = publish
    assert.equal((await t.reconciler.reconcile(next)).namesNotWithdrawn, undefined)
    assert.ok(!(await t.names.list()).some((r) => r.hostname === 'a.prod'))
    assert.ok(!(await t.iface.listAddresses()).includes(aAddress), 'withdrawn, the address goes')
    await t.reconciler.reconcile(next)
    assert.equal(t.allocator.lookup('f.prod'), aAddress)
    assert.equal(t.reconciler.services().find((s) => s.hostname === 'f.prod')?.state, 'serving')
  } finally {
    await t.close()
  }
})

test('a withdrawal that fails once and works when the pass publishes its names holds nothing back (a stop then reports nothing left)', async () => {
  const t = await setup()
  try {
    await t.reconciler.reconcile([service('http://a.prod'), service('http://b.prod')])
    const publish = t.names.publish.bind(t.names)
    let failures = 1
    t.names.publish = async (options) => {
      if (failures-- > 0) throw new NgrokdError('NGROKD_ERR_HOSTS_FILE', 'EMFILE: too many open files')
      return publish(options)
    }
    const report = await t.reconciler.teardown()
    assert.equal(report.namesNotWithdrawn, undefined)
    assert.deepEqual(await t.names.list(), [])
  } finally {
    await t.close()
  }
})

test('names that can never be read (an unreadable hosts file): said once, and a stop reports none left (none was published); one read earlier are held', async () => {
  const logger = recordingLogger()
  const t = await setup(SUBNET, logger)
  try {
    const unreadable = new NgrokdError('NGROKD_ERR_HOSTS_FILE', 'hosts-file: cannot read /etc/hosts: EACCES')
    const { list, publish } = { list: t.names.list.bind(t.names), publish: t.names.publish.bind(t.names) }
    t.names.list = async () => {
      throw unreadable
    }
    t.names.publish = async () => {
      throw unreadable
    }
    for (let pass = 0; pass < 3; pass++) await t.reconciler.reconcile([service('http://a.prod'), service('http://b.prod')])
    const said = () => logger.at('warn').filter((r) => r.msg.startsWith('cannot read the published names')).length
    assert.equal(said(), 1, 'said once while it repeats')
    assert.equal((await t.reconciler.teardown()).namesNotWithdrawn, undefined, 'never published: nothing left behind')
    assert.equal(said(), 1)
    // once read (and published), a name the store then cannot be asked about may still be there: held
    t.names.list = list
    t.names.publish = publish
    await t.reconciler.reconcile([service('http://a.prod'), service('http://b.prod')])
    t.names.list = async () => {
      throw unreadable
    }
    t.names.publish = async () => {
      throw unreadable
    }
    assert.deepEqual((await t.reconciler.teardown()).namesNotWithdrawn?.sort(), ['a.prod', 'b.prod'])
  } finally {
    await t.close()
  }
})

test('an interface that cannot be put back (a link of another kind took its name) is said once while it repeats, and again once it was repaired', async () => {
  const logger = recordingLogger()
  const t = await setup(SUBNET, logger)
  try {
    let broken = true
    t.iface.repair = async () => {
      if (broken) throw new NgrokdError('NGROKD_ERR_INTERFACE_FOREIGN', 'interface ngrkt0 already exists (a veth link) and is not ngrokd\'s')
      return undefined
    }
    const desired = [service('http://a.prod')]
    for (let pass = 0; pass < 4; pass++) await t.reconciler.reconcile(desired)
    const said = () => logger.at('error').filter((r) => r.msg.includes('could not be put back')).length
    assert.equal(said(), 1)
    broken = false
    await t.reconciler.reconcile(desired)
    broken = true
    await t.reconciler.reconcile(desired)
    assert.equal(said(), 2, 'a new episode is said again')
  } finally {
    await t.close()
  }
})

test('an address the interface refuses fails that service only; the batch is retried one by one', async () => {
  const logger = recordingLogger()
  const t = await setup(SUBNET, logger)
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
    // the same failure on the next poll is not logged again above debug
    const said = (level: 'warn' | 'error') => logger.at(level).filter((r) => /address|batch/.test(r.msg)).length
    assert.deepEqual([said('warn'), said('error')], [1, 1])
    t.iface.injectFailure('applyAddresses', { times: 1 })
    await t.reconciler.reconcile([service('http://ok.prod'), service('http://bad.prod'), service('http://fine.prod')])
    assert.equal(t.reconciler.services().find((s) => s.hostname === 'bad.prod')?.state, 'error')
    assert.deepEqual([said('warn'), said('error')], [1, 1], 'repeats go to debug')
    assert.ok(logger.at('debug').some((r) => r.msg.startsWith(`add address ${nextFree} failed:`)), 'the repeat at debug')
  } finally {
    await t.close()
  }
})

// --- network mode -------------------------------------------------------------------------------

/** Stands for a LAN address of this machine: every 127/8 address is bindable on Linux. */
const LAN = '127.109.0.1'

/** The first of `count` ports in a row that nothing holds on {@link LAN} now: no test needs a fixed port free. */
async function freePortRun(count: number): Promise<number> {
  const bindable = (port: number) =>
    new Promise<boolean>((resolve) => {
      const probe = createServer()
      probe.once('error', () => resolve(false))
      probe.listen(port, LAN, () => probe.close(() => resolve(true)))
    })
  for (let base = 20_000 + Math.floor(Math.random() * 20_000); ; base = base >= 60_000 ? 20_000 : base + count) {
    let free = true
    for (let port = base; free && port < base + count; port++) free = await bindable(port)
    if (free) return base
  }
}

async function withNetwork(
  fn: (t: Awaited<ReturnType<typeof setup>> & { ports: NetworkPorts; stateDir: string; listens: ListenOptions[]; events: string[]; startPort: number }) => Promise<void>,
  mode: Partial<NetworkModeOptions> = {},
): Promise<void> {
  const stateDir = await mkdtemp(join(tmpdir(), 'ngrokd-rec-net-'))
  const t = await setup()
  const ports = new NetworkPorts({ stateDir })
  const startPort = await freePortRun(8)
  await ports.open({ startPort })
  t.reconciler.setNetworkMode({ listen: LAN, ports, ...mode })
  const listens: ListenOptions[] = []
  const events: string[] = []
  const listen = t.forwarder.listen.bind(t.forwarder)
  t.forwarder.listen = async (o) => {
    listens.push(o)
    events.push(`listen ${o.address === LAN ? 'network' : 'local'}`)
    return listen(o)
  }
  const unlisten = t.forwarder.unlisten.bind(t.forwarder)
  t.forwarder.unlisten = async (o) => {
    events.push(`unlisten ${o.address === LAN ? 'network' : 'local'}`)
    return unlisten(o)
  }
  const publish = t.names.publish.bind(t.names)
  t.names.publish = async (o) => {
    events.push('name')
    return publish(o)
  }
  try {
    await fn({ ...t, ports, stateDir, listens, events, startPort })
  } finally {
    await t.close()
    await ports.close()
    await rm(stateDir, { recursive: true, force: true })
  }
}

test('network mode on the wildcard: a service whose network port moves (another endpoint uses that port itself) keeps its open connections, drained as a move, not as a removed endpoint', async () => {
  const drains: Array<[string, number | undefined]> = []
  await withNetwork(
    async (t) => {
      const unlisten = t.forwarder.unlisten.bind(t.forwarder)
      t.forwarder.unlisten = async (o) => {
        drains.push([`${o.address}:${o.port}`, o.drainMs])
        return unlisten(o)
      }
      const p = t.startPort
      await t.reconciler.reconcile([service('tcp://echo.lab:7000')], { drainMs: 5_000 })
      assert.equal(t.reconciler.services()[0]!.network?.port, p)
      // an endpoint whose own port is echo.lab's network port: on the wildcard the two would collide, echo.lab moves
      await t.reconciler.reconcile([service('tcp://echo.lab:7000'), service(`tcp://moved.lab:${p}`)], { drainMs: 5_000 })
      assert.notEqual(t.reconciler.services().find((s) => s.hostname === 'echo.lab')!.network?.port, p)
      assert.deepEqual(drains, [[`0.0.0.0:${p}`, 3_600_000]], 'the moved port drains for idle_timeout, not drain_timeout')
      await t.reconciler.reconcile([service(`tcp://moved.lab:${p}`)], { drainMs: 5_000 })
      assert.equal(drains.at(-1)![1], 5_000, 'a removed endpoint drains for drain_timeout')
    },
    { listen: '0.0.0.0', movedDrainMs: 3_600_000 },
  )
})

test('network mode: each service also listens on listen:<stable port>, after the local listeners, Host rewritten for http only', async () => {
  await withNetwork(async (t) => {
    const p = t.startPort
    const desired = [service('http://api.prod'), service('tcp://api.prod:5432'), service('http://web.prod:8080')]
    const report = await t.reconciler.reconcile(desired)
    assert.equal(report.errors, 0)
    assert.equal(report.listenersAdded, 6)
    assert.deepEqual(t.events, ['listen local', 'listen local', 'listen local', 'name', 'listen network', 'listen network', 'listen network'])
    const net = new Map(t.listens.filter((l) => l.address === LAN).map((l) => [`${l.target.hostname}:${l.target.port}`, l]))
    assert.equal(net.get('api.prod:80')?.port, p)
    assert.equal(net.get('api.prod:5432')?.port, p + 1)
    assert.equal(net.get('web.prod:8080')?.port, p + 2)
    assert.equal(net.get('api.prod:80')?.rewriteHost, 'api.prod')
    assert.equal(net.get('web.prod:8080')?.rewriteHost, 'web.prod:8080', 'a non-default port is part of the Host value')
    assert.equal(net.get('api.prod:5432')?.rewriteHost, undefined, 'tcp bytes are never touched')
    assert.ok(t.listens.filter((l) => l.address !== LAN).every((l) => l.rewriteHost === undefined), 'local listeners never rewrite')

    // services() (ngrokd list --json) shows where the LAN reaches each service
    const byUrl = new Map(t.reconciler.services().map((s) => [s.url, s]))
    assert.deepEqual(byUrl.get('http://api.prod')?.network, { address: LAN, port: p, rewriteHost: 'api.prod', openConnections: 0, totalConnections: 0 })
    assert.equal(byUrl.get('tcp://api.prod:5432')?.network?.port, p + 1)
    assert.equal(await roundTrip(LAN, p + 1), 'ping')
    assert.equal(t.reconciler.services().find((s) => s.url === 'tcp://api.prod:5432')?.network?.totalConnections, 1)

    t.events.length = 0
    const again = await t.reconciler.reconcile(desired)
    assert.equal(again.listenersAdded + again.listenersRemoved + again.errors, 0, 'idempotent')
  })
})

test('network mode on a specific address: an endpoint whose own port is a service\'s network port takes nothing from it', async () => {
  await withNetwork(async (t) => {
    const p = t.startPort
    assert.equal((await t.reconciler.reconcile([service('http://api.prod')])).errors, 0)
    assert.equal(t.ports.lookup('api.prod:80'), p)
    // tcp://late.prod:<p> listens on its own address, 127.109.0.1:<p> on the LAN one: no collision, no move
    const report = await t.reconciler.reconcile([service('http://api.prod'), service(`tcp://late.prod:${p}`)])
    assert.equal(report.errors, 0)
    assert.equal(t.ports.lookup('api.prod:80'), p, 'the port stays api.prod\'s')
    assert.equal(t.ports.lookup(`late.prod:${p}`), p + 1)
  })
})

test('network mode: removal unlistens the network listener first; the port is kept for the service and survives a restart', async () => {
  await withNetwork(async (t) => {
    const p = t.startPort
    await t.reconciler.reconcile([service('http://api.prod'), service('http://web.prod')])
    const webPort = t.ports.lookup('web.prod:80')
    assert.equal(webPort, p + 1)
    t.events.length = 0
    const report = await t.reconciler.reconcile([service('http://api.prod')])
    assert.deepEqual(t.events.filter((e) => e !== 'listen local' && e !== 'listen network'), ['name', 'unlisten network', 'unlisten local', 'name'])
    assert.equal(report.listenersRemoved, 2)
    assert.ok(!t.forwarder.listeners().some((l) => l.address === LAN && l.port === webPort))
    assert.deepEqual(t.ports.list().find((e) => e.key === 'web.prod:80'), { key: 'web.prod:80', port: webPort, active: false })

    await t.reconciler.reconcile([service('http://api.prod'), service('http://db.prod'), service('http://web.prod')])
    assert.equal(t.ports.lookup('web.prod:80'), webPort, 'a returning service gets its port back')
    assert.equal(t.ports.lookup('db.prod:80'), p + 2, 'a new one does not take a released port')

    // a restart: a new allocator state, the same state file
    const restarted = new NetworkPorts({ stateDir: t.stateDir })
    await restarted.open({ startPort: p })
    assert.deepEqual(restarted.list(), t.ports.list())
    await restarted.close()

    t.events.length = 0
    const down = await t.reconciler.teardown()
    assert.equal(down.listenersRemoved, 6)
    assert.deepEqual(t.events.slice(0, 4), ['name', 'unlisten network', 'unlisten network', 'unlisten network'], 'names go first, then network listeners before local ones')
    assert.deepEqual(t.forwarder.listeners(), [])
    assert.ok(t.ports.list().every((e) => !e.active))
  })
})

test('network mode: a port another program holds fails only the network side, and heals on the next reconcile', async () => {
  await withNetwork(async (t) => {
    const p = t.startPort
    const squatter = createServer()
    await new Promise<void>((r) => squatter.listen(p, LAN, r))
    const report = await t.reconciler.reconcile([service('http://api.prod'), service(`tcp://db.prod:${p + 1}`)])
    assert.equal(report.errors, 1)
    const api = t.reconciler.services().find((s) => s.hostname === 'api.prod')!
    assert.equal(api.state, 'serving', 'the service still serves locally')
    assert.equal(api.network?.error?.code, 'NGROKD_ERR_LISTEN')
    assert.ok(t.forwarder.listeners().some((l) => l.address === api.address && l.port === 80))
    assert.equal(t.ports.lookup(`db.prod:${p + 1}`), p + 1, "a specific listen address does not collide with an endpoint's own port on its own address")

    await new Promise<void>((r) => squatter.close(() => r()))
    const healed = await t.reconciler.reconcile([service('http://api.prod'), service(`tcp://db.prod:${p + 1}`)])
    assert.equal(healed.errors, 0)
    assert.equal(healed.listenersAdded, 1)
    assert.equal(t.reconciler.services().find((s) => s.hostname === 'api.prod')!.network?.error, undefined)
  })
})

test('network mode off: services() has no network field and no port state is touched', async () => {
  const t = await setup()
  try {
    await t.reconciler.reconcile([service('http://api.prod')])
    assert.equal(t.reconciler.services()[0]!.network, undefined)
    assert.ok(t.forwarder.listeners().every((l) => l.address.startsWith('127.107.')))
  } finally {
    await t.close()
  }
})

test('a drain does not hold up the next reconcile: its address stays until the drain ends, a later pass removes it, and teardown waits for it', async () => {
  const t = await setup()
  try {
    await t.reconciler.reconcile([service('tcp://hold.prod:7000')])
    const hold = t.allocator.lookup('hold.prod')!
    // a forwarder whose unlisten closes the listener at once and whose drain ends only when told
    const drains: Array<() => void> = []
    const unlisten = t.forwarder.unlisten.bind(t.forwarder)
    t.forwarder.unlisten = async (o) => {
      await unlisten({ ...o, drainMs: 0 })
      await new Promise<void>((resolve) => drains.push(resolve))
    }
    const soon = <T>(p: Promise<T>, what: string) => Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} waited for the drain`)), 5_000).unref())])

    const swapped = await soon(t.reconciler.reconcile([service('http://added.prod')], { drainMs: 30_000 }), 'the reconcile that removed hold.prod')
    assert.equal(swapped.listenersRemoved, 1)
    assert.equal(swapped.listenersAdded, 1)
    const added = t.allocator.lookup('added.prod')!
    assert.deepEqual(t.forwarder.listeners().map((l) => `${l.address}:${l.port}`), [`${added}:80`])
    assert.deepEqual((await t.names.list()).map((r) => r.hostname), ['added.prod'])
    assert.ok((await t.iface.listAddresses()).includes(hold), 'the address of a listener still draining stays')
    assert.equal(drains.length, 1)

    // the next poll: still draining, still there
    const next = await soon(t.reconciler.reconcile([service('http://added.prod'), service('http://more.prod')], { drainMs: 30_000 }), 'the next reconcile')
    assert.equal(next.addressesRemoved, 0)
    assert.ok((await t.iface.listAddresses()).includes(hold))

    drains.shift()!()
    await new Promise((r) => setImmediate(r))
    const after = await t.reconciler.reconcile([service('http://added.prod'), service('http://more.prod')], { drainMs: 30_000 })
    assert.equal(after.addressesRemoved, 1, 'the poll after the drain removes its address')
    assert.ok(!(await t.iface.listAddresses()).includes(hold))

    // a drain begun by a normal pass, then teardown: addresses go only once every drain is over
    await t.reconciler.reconcile([service('http://added.prod')], { drainMs: 30_000 })
    const more = t.allocator.lookup('more.prod')!
    assert.equal(drains.length, 1)
    let down = false
    const teardown = t.reconciler.teardown({ drainMs: 30_000 }).then((r) => ((down = true), r))
    await until(() => drains.length === 2) // teardown began the unlisten of added.prod
    await new Promise((r) => setTimeout(r, 20))
    assert.equal(down, false, 'teardown waits for the drains, the earlier pass\'s included')
    assert.deepEqual(new Set(await t.iface.listAddresses()), new Set([added, more]))
    drains.shift()!() // more.prod's, begun by the earlier pass: teardown's own still holds it
    await new Promise((r) => setTimeout(r, 20))
    assert.equal(down, false)
    drains.shift()!()
    const report = await teardown
    assert.equal(report.listenersRemoved, 1)
    assert.deepEqual(await t.iface.listAddresses(), [])
  } finally {
    await t.close()
  }
})

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 2))
}

/** An allocator whose saves fail while `full` (a full state_dir), remembering that it has unsaved changes as the persistent one does. */
class FullDiskAllocator extends MemoryAllocator {
  full = false
  private unsaved = false
  protected override async persist(): Promise<void> {
    this.unsaved = this.full
    if (this.full) throw new NgrokdError('NGROKD_ERR_STATE', 'allocator: cannot write /var/lib/ngrokd/allocations.json: no space left on its device (ENOSPC)', { hint: 'free space on the file system of /var/lib/ngrokd (df -h /var/lib/ngrokd)' })
  }
  protected override hasUnsavedChanges(): boolean {
    return this.unsaved
  }
}

test('while addresses cannot be saved, a new endpoint is held back in error with the reason and the fix; the ones placed keep serving; served once a save works', async () => {
  const allocator = new FullDiskAllocator()
  const logger = recordingLogger()
  const t = await setup(SUBNET, logger, allocator)
  try {
    const a = service('http://a.full'), b = service('tcp://b.full:5432'), c = service('http://c.full')
    await t.reconciler.reconcile([a, c])
    const placed = new Map(t.reconciler.services().map((s) => [s.hostname, s.address]))
    allocator.full = true
    const report = await t.reconciler.reconcile([a, b])
    assert.equal(report.errors, 1)
    const byHost = new Map(t.reconciler.services().map((s) => [s.hostname, s]))
    assert.equal(byHost.get('a.full')?.state, 'serving')
    assert.equal(byHost.get('a.full')?.address, placed.get('a.full'))
    assert.equal(byHost.has('c.full'), false, 'an endpoint that went away goes, its release saved with the next change')
    const held = byHost.get('b.full')!
    assert.equal(held.state, 'error')
    assert.equal(held.address, undefined)
    assert.equal(held.error?.code, 'NGROKD_ERR_STATE')
    assert.match(held.error!.message, /^not served until its address is saved \(so that a restart gives it the same one\): allocator: cannot write .*allocations\.json: no space left on its device \(ENOSPC\)$/)
    assert.equal(held.error!.hint, 'free space on the file system of /var/lib/ngrokd (df -h /var/lib/ngrokd); ngrokd serves it at the first poll after')
    assert.deepEqual(t.names.published.records.map((r) => r.hostname).sort(), ['a.full'])
    assert.equal(logger.at('error').filter((r) => r.msg.startsWith('cannot serve tcp://b.full:5432')).length, 1)
    allocator.full = false
    await t.reconciler.reconcile([a, b])
    const after = new Map(t.reconciler.services().map((s) => [s.hostname, s]))
    assert.equal(after.get('b.full')?.state, 'serving')
    assert.equal(after.get('a.full')?.address, placed.get('a.full'))
    assert.equal(allocator.list().find((e) => e.hostname === 'c.full')?.active, false)
  } finally {
    await t.close()
  }
})
