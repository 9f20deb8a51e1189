// Proves the suites can fail: each is run, through a recording TestFramework, against fakes with
// one rule broken, and exactly the checks for that rule must fail.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:net'
import { TestFramework, type TestBody } from './test-framework.js'
import { testInterfaceDriver } from './suites/interface-suite.js'
import { testAllocator } from './suites/allocator-suite.js'
import { testNameResolver } from './suites/name-resolver-suite.js'
import { testForwarder } from './suites/forwarder-suite.js'
import { testPlugin } from './suites/plugin-suite.js'
import { withDeadlines } from './suites/suite-support.js'
import { definePlugin } from '../plugin/define-plugin.js'
import { defineDriver, type DriverKind } from '../driver/define-driver.js'
import { FakeInterface, type FakeSystem } from './fakes/fake-interface.js'
import { RecordingNameResolver } from './fakes/recording-name-resolver.js'
import { LoopbackForwarder } from './fakes/loopback-forwarder.js'
import { MemoryAllocator } from '../alloc/memory-allocator.js'
import { NgrokdError, SyscallError } from '../errors/ngrokd-error.js'
import type { Allocation } from '../contracts/allocator.js'
import type { InterfaceInfo, InterfaceOpenOptions } from '../contracts/interface.js'
import type { NameRecord } from '../contracts/name-resolver.js'
import type { ListenOptions } from '../contracts/forwarder.js'

const nodeTest = { describe, it, beforeAll: before, afterAll: after }
TestFramework.use(nodeTest)

interface Recorded {
  tests: Array<{ name: string; body: TestBody }>
  skipped: string[]
  beforeAll: TestBody[]
  afterAll: TestBody[]
}

/** Registers a suite with a recording framework and runs it; returns the names of failed checks. */
async function failuresOf(register: () => void): Promise<string[]> {
  const r: Recorded = { tests: [], skipped: [], beforeAll: [], afterAll: [] }
  const recordIt = Object.assign((name: string, body: TestBody) => void r.tests.push({ name, body }), {
    skip: (name: string) => void r.skipped.push(name),
  })
  TestFramework.use({ describe: (_name, fn) => fn(), it: recordIt, beforeAll: (fn) => r.beforeAll.push(fn), afterAll: (fn) => r.afterAll.push(fn) })
  try {
    register()
  } finally {
    TestFramework.use(nodeTest)
  }
  assert.ok(r.tests.length > 5, 'the suite registered its checks')
  const failed: string[] = []
  for (const hook of r.beforeAll) await hook()
  try {
    for (const t of r.tests) await t.body().catch(() => failed.push(t.name))
  } finally {
    for (const hook of r.afterAll) await hook()
  }
  return failed
}

const tick = () => new Promise((resolve) => setImmediate(resolve))

/** The fake system's own view of an interface, read without the driver (the suite's `inspect`). */
const inspectOf = (system: FakeSystem) => ({ info }: { info: InterfaceInfo }) => [...(system.interfaces.get(info.name) ?? [])]

describe('the interface suite catches broken drivers', () => {
  it('a driver module the daemon would refuse: made for another core (ngrokd ^2.0.0), or providing no interface', async () => {
    const system = FakeInterface.createSystem()
    const module = (ngrokd: string, provides: DriverKind[]) =>
      defineDriver({ name: 'fake-module', provides, platforms: [process.platform], ngrokd, create: async () => ({ interface: new FakeInterface({ system }) }) })
    const rule = 'is a driver module this core loads: its core range (ngrokd) includes this core, and it provides an interface'
    const options = { name: 'b9', subnet: '10.250.0.0/24' }
    assert.deepEqual(await failuresOf(() => testInterfaceDriver({ driver: module('^2.0.0', ['interface']), options, inspect: inspectOf(system) })), [rule])
    assert.deepEqual(await failuresOf(() => testInterfaceDriver({ driver: module('^1.0.0', ['name-resolver']), options, inspect: inspectOf(system) })), [rule])
    assert.deepEqual(await failuresOf(() => testInterfaceDriver({ driver: module('^1.0.0', ['interface']), options, inspect: inspectOf(system) })), [])
  })

  it('a correct fake passes every check', async () => {
    const system = FakeInterface.createSystem()
    assert.deepEqual(await failuresOf(() => testInterfaceDriver({ driver: () => new FakeInterface({ system }), options: { name: 'ok0', subnet: '10.250.0.0/24' }, inspect: inspectOf(system) })), [])
  })

  it('a method that never settles fails the checks that call it, naming the method, instead of hanging the run', async () => {
    class Hangs extends FakeInterface {
      override removeAddress(_options: { address: string; signal?: AbortSignal }): Promise<void> {
        return new Promise(() => {}) // holds nothing open: without a deadline node:test cancels the rest unnamed
      }
    }
    const system = FakeInterface.createSystem()
    const failed = await failuresOf(() => testInterfaceDriver({ driver: () => new Hangs({ system }), options: { name: 'h0', subnet: '10.250.0.0/24' }, inspect: inspectOf(system), callTimeoutMs: 50 }))
    assert.ok(failed.includes('listAddresses() equals what was added, after adds and after removes'), failed.join('; '))
    const hung = withDeadlines(new Hangs({ system }), 'interface', 20)
    await hung.open({ name: 'h1', subnet: '10.250.0.0/24' })
    await assert.rejects(hung.removeAddress({ address: '10.250.0.2' }), /^AssertionError.*interface\.removeAddress\(\) did not settle within 20 ms/)
    await hung.close({ removeInterface: true })
  })

  it('addAddress() failing with EEXIST', async () => {
    class Broken extends FakeInterface {
      override async addAddress(o: { address: string; signal?: AbortSignal }) {
        if (this.addresses.has(o.address)) throw new SyscallError('add', 17, 'EEXIST')
        return super.addAddress(o)
      }
    }
    const system = FakeInterface.createSystem()
    assert.deepEqual(await failuresOf(() => testInterfaceDriver({ driver: () => new Broken({ system }), options: { name: 'b0', subnet: '10.250.0.0/24' }, inspect: inspectOf(system) })), [
      'addAddress() of an address already present resolves (idempotent)',
      'applyAddresses() adds and removes in one change',
    ])
  })

  it('removeAddress() failing for an absent address', async () => {
    class Broken extends FakeInterface {
      override async removeAddress(o: { address: string; signal?: AbortSignal }) {
        if (!this.addresses.has(o.address)) throw new SyscallError('remove', 99, 'EADDRNOTAVAIL')
        return super.removeAddress(o)
      }
    }
    const system = FakeInterface.createSystem()
    const failed = await failuresOf(() => testInterfaceDriver({ driver: () => new Broken({ system }), options: { name: 'b1', subnet: '10.250.0.0/24' }, inspect: inspectOf(system) }))
    assert.deepEqual(failed, ['removeAddress() of an absent address resolves (idempotent)', 'applyAddresses() adds and removes in one change'])
  })

  it('open() not adopting a leftover interface', async () => {
    class Broken extends FakeInterface {
      override async open(o: InterfaceOpenOptions): Promise<InterfaceInfo> {
        this.system.interfaces.delete(o.name)
        return super.open(o)
      }
    }
    const system = FakeInterface.createSystem()
    const failed = await failuresOf(() => testInterfaceDriver({ driver: () => new Broken({ system }), options: { name: 'b2', subnet: '10.250.0.0/24' }, inspect: inspectOf(system) }))
    assert.deepEqual(failed, [
      'open() of an existing interface adopts it with its addresses',
      'close() may be called more than once; close({ removeInterface: false }) leaves the interface for the next open() to adopt',
      'open({ adoptOnly: true }) adopts what a stopped instance left, and its close({ removeInterface: true }) deletes it (what ngrokd cleanup does)',
    ])
  })

  it('uncoded errors before open()', async () => {
    class Broken extends FakeInterface {
      #opened = false
      override async open(o: InterfaceOpenOptions) {
        this.#opened = true
        return super.open(o)
      }
      override async listAddresses(o?: { signal?: AbortSignal }) {
        if (!this.#opened) throw new Error('not open')
        return super.listAddresses(o)
      }
    }
    const system = FakeInterface.createSystem()
    const failed = await failuresOf(() => testInterfaceDriver({ driver: () => new Broken({ system }), options: { name: 'b3', subnet: '10.250.0.0/24' }, inspect: inspectOf(system) }))
    assert.deepEqual(failed, ['methods called before open() reject with a coded error'])
  })

  it('lost updates under concurrent adds (read-modify-write of a stale snapshot)', async () => {
    class Broken extends FakeInterface {
      override async addAddress(o: { address: string; signal?: AbortSignal }) {
        const snapshot = new Set(this.addresses)
        await tick()
        for (const a of [...this.addresses]) if (!snapshot.has(a)) await super.removeAddress({ address: a })
        return super.addAddress(o)
      }
    }
    const system = FakeInterface.createSystem()
    const failed = await failuresOf(() => testInterfaceDriver({ driver: () => new Broken({ system }), options: { name: 'b4', subnet: '10.250.0.0/24' }, inspect: inspectOf(system) }))
    assert.deepEqual(failed, ['concurrent addAddress() and removeAddress() calls all take effect'])
  })

  it('ignoring an aborted signal', async () => {
    class Broken extends FakeInterface {
      override async addAddress(o: { address: string; signal?: AbortSignal }) {
        return super.addAddress({ address: o.address })
      }
    }
    const system = FakeInterface.createSystem()
    const failed = await failuresOf(() => testInterfaceDriver({ driver: () => new Broken({ system }), options: { name: 'b5', subnet: '10.250.0.0/24' }, inspect: inspectOf(system) }))
    assert.deepEqual(failed, ['an already-aborted AbortSignal rejects and changes nothing'])
  })

  it('close() failing the second time, and removeInterface keeping the interface', async () => {
    class Broken extends FakeInterface {
      #closed = 0
      override async close() {
        if (++this.#closed > 1) throw new Error('already closed')
        return super.close({}) // never removes the interface
      }
    }
    const system = FakeInterface.createSystem()
    const failed = await failuresOf(() => testInterfaceDriver({ driver: () => new Broken({ system }), options: { name: 'b6', subnet: '10.250.0.0/24' }, inspect: inspectOf(system) }))
    assert.ok(failed.includes('close() may be called more than once; close({ removeInterface: false }) leaves the interface for the next open() to adopt'), failed.join('; '))
    assert.ok(failed.includes('close({ removeInterface: true }) deletes what open() made'), failed.join('; '))
  })

  it('addresses kept only in the driver\'s memory, never put on the system', async () => {
    // every call checked as the real one checks it, but an address added is taken off the system again
    class Broken extends FakeInterface {
      readonly #held = new Set<string>()
      override async addAddress(o: { address: string; signal?: AbortSignal }) {
        await super.addAddress(o)
        await super.removeAddress({ address: o.address })
        this.#held.add(o.address)
      }
      override async removeAddress(o: { address: string; signal?: AbortSignal }) {
        await super.removeAddress(o)
        this.#held.delete(o.address)
      }
      override async applyAddresses(c: { add: readonly string[]; remove: readonly string[]; signal?: AbortSignal }) {
        c.signal?.throwIfAborted()
        for (const address of c.remove) await this.removeAddress({ address })
        for (const address of c.add) await this.addAddress({ address })
      }
      override async listAddresses(o?: { signal?: AbortSignal }) {
        await super.listAddresses(o)
        return [...this.#held]
      }
    }
    const system = FakeInterface.createSystem()
    const failed = await failuresOf(() => testInterfaceDriver({ driver: () => new Broken({ system }), options: { name: 'b8', subnet: '10.250.0.0/24' }, inspect: inspectOf(system), skip: { reopen: true } }))
    assert.deepEqual(failed, ['the system shows the addresses listAddresses() lists, read without the driver (inspect)'])
  })

  it('close({ removeInterface: false }) deleting the interface', async () => {
    class Broken extends FakeInterface {
      override async close() {
        return super.close({ removeInterface: true })
      }
    }
    const system = FakeInterface.createSystem()
    const failed = await failuresOf(() => testInterfaceDriver({ driver: () => new Broken({ system }), options: { name: 'b9', subnet: '10.250.0.0/24' }, inspect: inspectOf(system) }))
    assert.deepEqual(failed, ['close() may be called more than once; close({ removeInterface: false }) leaves the interface for the next open() to adopt', 'open({ adoptOnly: true }) adopts what a stopped instance left, and its close({ removeInterface: true }) deletes it (what ngrokd cleanup does)'])
  })

  it('close({ removeInterface: true }) deleting only an interface the instance made, never one it adopted', async () => {
    class Broken extends FakeInterface {
      #adopted = false
      override async open(o: InterfaceOpenOptions): Promise<InterfaceInfo> {
        const info = await super.open(o)
        this.#adopted = info.adopted
        return info
      }
      override async close(o?: { removeInterface?: boolean }) {
        return super.close({ removeInterface: (o?.removeInterface ?? true) && !this.#adopted })
      }
    }
    const system = FakeInterface.createSystem()
    const failed = await failuresOf(() => testInterfaceDriver({ driver: () => new Broken({ system }), options: { name: 'b12', subnet: '10.250.0.0/24' }, inspect: inspectOf(system) }))
    assert.deepEqual(failed, ['open({ adoptOnly: true }) adopts what a stopped instance left, and its close({ removeInterface: true }) deletes it (what ngrokd cleanup does)'])
  })

  it('listAddresses() showing the interface’s own address', async () => {
    class Broken extends FakeInterface {
      override async listAddresses(o?: { signal?: AbortSignal }) {
        return [...(await super.listAddresses(o)), '10.250.0.1']
      }
    }
    const system = FakeInterface.createSystem()
    const failed = await failuresOf(() => testInterfaceDriver({ driver: () => new Broken({ system }), options: { name: 'b7', subnet: '10.250.0.0/24' }, inspect: inspectOf(system) }))
    assert.ok(failed.includes('open() describes a fresh interface with no endpoint addresses'), failed.join('; '))
    assert.ok(failed.includes('listAddresses() equals what was added, after adds and after removes'), failed.join('; '))
  })
})

describe('the allocator suite catches broken allocators', () => {
  it('MemoryAllocator passes every check', async () => {
    assert.deepEqual(await failuresOf(() => testAllocator({ create: () => new MemoryAllocator() })), [])
  })

  it('handing out the broadcast address', async () => {
    class Broken extends MemoryAllocator {
      override async allocate(o: { hostnames: readonly string[] }): Promise<Allocation[]> {
        const results = await super.allocate(o)
        return results.map((r) => ('address' in r && r.address.endsWith('.6') ? { ...r, address: r.address.replace(/\.6$/, '.7') } : r))
      }
    }
    const failed = await failuresOf(() => testAllocator({ create: () => new Broken() }))
    assert.ok(failed.includes('never gives the network, broadcast or a reserved address; exhaustion fails only the hostnames not served'), failed.join('; '))
  })

  it('exhaustion reported without a code', async () => {
    class Broken extends MemoryAllocator {
      override async allocate(o: { hostnames: readonly string[] }): Promise<Allocation[]> {
        return (await super.allocate(o)).map((r) => ('error' in r ? { hostname: r.hostname, error: new Error('full') } : r))
      }
    }
    const failed = await failuresOf(() => testAllocator({ create: () => new Broken() }))
    assert.deepEqual(failed, ['never gives the network, broadcast or a reserved address; exhaustion fails only the hostnames not served'])
  })

  it('forgetting a released mapping', async () => {
    class Broken extends MemoryAllocator {
      readonly #gone = new Set<string>()
      override async release(o: { hostnames: readonly string[] }) {
        o.hostnames.forEach((h) => this.#gone.add(h))
        return super.release(o)
      }
      override lookup(hostname: string) {
        return this.#gone.has(hostname) ? undefined : super.lookup(hostname)
      }
    }
    const failed = await failuresOf(() => testAllocator({ create: () => new Broken() }))
    assert.ok(failed.includes('a released address is not given to another hostname while never-used ones remain'), failed.join('; '))
  })
})

describe('the name resolver suite catches broken resolvers', () => {
  it('publish() adding to the set instead of replacing it', async () => {
    class Broken extends RecordingNameResolver {
      override async publish(o: { records: readonly NameRecord[]; signal?: AbortSignal }) {
        return super.publish({ ...o, records: [...this.published.records, ...o.records] })
      }
    }
    const failed = await failuresOf(() => testNameResolver({ create: () => new Broken(), skip: { restart: true } }))
    assert.ok(failed.includes('publish() replaces the whole published set'), failed.join('; '))
    assert.ok(failed.includes('publish({ records: [] }) removes everything published'), failed.join('; '))
  })

  it('publish() always reporting changed: true', async () => {
    class Broken extends RecordingNameResolver {
      override async publish(o: { records: readonly NameRecord[]; signal?: AbortSignal }) {
        await super.publish(o)
        return { changed: true }
      }
    }
    const failed = await failuresOf(() => testNameResolver({ create: () => new Broken(), skip: { restart: true } }))
    assert.ok(failed.includes('publishing the same set again reports changed: false'), failed.join('; '))
    assert.ok(failed.includes('the order of records does not matter'), failed.join('; '))
  })
})

describe('the forwarder suite catches broken forwarders', () => {
  let upstream: Server
  before(async () => {
    upstream = createServer((s) => s.pipe(s))
    await new Promise<void>((resolve) => upstream.listen({ host: '127.0.0.1', port: 0 }, resolve))
  })
  after(() => new Promise((resolve) => upstream.close(resolve)))
  const to = () => ({ host: '127.0.0.1', port: (upstream.address() as { port: number }).port })

  it('listen() twice failing', async () => {
    class Broken extends LoopbackForwarder {
      override async listen(o: ListenOptions) {
        if (this.listeners().some((l) => l.address === o.address && l.port === o.port)) throw new NgrokdError('NGROKD_ERR_LISTEN', 'already listening')
        return super.listen(o)
      }
    }
    const failed = await failuresOf(() => testForwarder({ create: () => new Broken({ upstream: to }) }))
    assert.ok(failed.includes('listen() twice with the same target is idempotent'), failed.join('; '))
    assert.ok(failed.includes('listen() with another target keeps one listener and takes the new target'), failed.join('; '))
  })

  it('unlisten() forgetting a listener it leaves open', async () => {
    class Broken extends LoopbackForwarder {
      #hidden = new Set<string>()
      override async unlisten(o: { address: string; port: number }) {
        this.#hidden.add(`${o.address}:${o.port}`)
      }
      override listeners() {
        return super.listeners().filter((l) => !this.#hidden.has(`${l.address}:${l.port}`))
      }
      override async close() {
        for (const l of super.listeners()) await super.unlisten(l)
      }
    }
    const failed = await failuresOf(() => testForwarder({ create: () => new Broken({ upstream: to }) }))
    assert.ok(failed.includes('unlisten() stops accepting at once'), failed.join('; '))
  })
})

describe('the plugin suite catches broken plugins', () => {
  const good = definePlugin<{ greeting: string }>({
    name: 'greeter',
    version: '1.0.0',
    ngrokd: '^1.0.0',
    optionsSchema: { type: 'object', properties: { greeting: { type: 'string', default: 'hello' } } },
    register(ctx) {
      let served = 0
      ctx.hooks.onStart(async () => void (await ctx.interface()))
      ctx.hooks.afterReconcile((serving) => void (served = serving.length))
      ctx.addRoute('GET', '/served', () => ({ served, greeting: ctx.options.greeting }))
      ctx.addDoctorChecks(async () => [{ id: 'greeter.served', status: 'ok', summary: `${served} served` }])
    },
  })

  it('a correct plugin passes every check', async () => {
    assert.deepEqual(await failuresOf(() => testPlugin({ plugin: good })), [])
  })

  it('a plugin that awaits the interface in register(), throws in a hook, or writes malformed checks fails those checks', async () => {
    const early = definePlugin({ name: 'early', version: '1.0.0', ngrokd: '^1.0.0', async register(ctx) { await ctx.interface() } })
    assert.deepEqual(await failuresOf(() => testPlugin({ plugin: early })), ['registers with the given options, and does not ask for the interface before it is open'])
    const throwing = definePlugin({ name: 'throwing', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) { ctx.hooks.afterReconcile(() => { throw new Error('no') }) } })
    assert.deepEqual(await failuresOf(() => testPlugin({ plugin: throwing })), ['runs start → afterReconcile (twice, and with nothing served) → stop without a hook throwing'])
    const sloppy = definePlugin({ name: 'sloppy', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) { ctx.addDoctorChecks(async () => [{ id: 'NoArea', status: 'fine' as 'ok', summary: '' }]) } })
    assert.deepEqual(await failuresOf(() => testPlugin({ plugin: sloppy })), ['its doctor checks have the documented shape'])
    assert.deepEqual(await failuresOf(() => testPlugin({ plugin: { name: 'not-defined' } })).then((f) => f[0]), 'is a definePlugin module with a kebab-case name, a version and a core range this core satisfies')
  })

  it('a route outside /v1/plugins/<name>/ (no leading "/", or a method other than GET and POST) fails the plugin, as the daemon fails it', async () => {
    const register = 'registers with the given options, and does not ask for the interface before it is open'
    for (const [method, path] of [['GET', 'be/served'], ['DELETE', '/nopath']] as const) {
      const escaping = definePlugin({ name: 'pro', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) { ctx.addRoute(method as 'GET', path as '/x', () => ({})) } })
      assert.ok((await failuresOf(() => testPlugin({ plugin: escaping }))).includes(register), `${method} ${path}`)
    }
  })

  it("a route that answers with an NgrokdError (the daemon's coded error) passes; one that throws anything else, or answers what JSON cannot carry, fails", async () => {
    const route = 'its control routes live under /v1/plugins/<name> and answer JSON (or a coded error)'
    const withRoute = (name: string, handler: () => unknown) => definePlugin({ name, version: '1.0.0', ngrokd: '^1.0.0', register(ctx) { ctx.addRoute('GET', '/last', handler) } })
    const coded = () => new NgrokdError('NGROKD_ERR_PLUGIN_FAILED', 'nothing written yet', { hint: 'wait for the first reconcile' })
    assert.deepEqual(await failuresOf(() => testPlugin({ plugin: withRoute('refuses', () => { throw coded() }) })), [])
    assert.deepEqual(await failuresOf(() => testPlugin({ plugin: withRoute('refuses-later', async () => { throw coded() }) })), [])
    assert.deepEqual(await failuresOf(() => testPlugin({ plugin: withRoute('buggy', async () => { throw new TypeError('x is undefined') }) })), [route])
    assert.deepEqual(await failuresOf(() => testPlugin({ plugin: withRoute('bigint', async () => ({ n: 1n })) })), [route])
  })
})

