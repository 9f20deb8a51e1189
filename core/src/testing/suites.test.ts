// The kit's self-test: every suite against the fakes it ships (and the core's MemoryAllocator).
import { after, before, describe, it } from 'node:test'
import { createServer, type Server } from 'node:net'
import { TestFramework } from './test-framework.js'
import { testInterfaceDriver } from './suites/interface-suite.js'
import { testAllocator } from './suites/allocator-suite.js'
import { testNameResolver } from './suites/name-resolver-suite.js'
import { testForwarder } from './suites/forwarder-suite.js'
import { FakeInterface } from './fakes/fake-interface.js'
import { RecordingNameResolver, type PublishedNames } from './fakes/recording-name-resolver.js'
import { LoopbackForwarder } from './fakes/loopback-forwarder.js'
import { MemoryAllocator } from '../alloc/memory-allocator.js'
import { defineDriver } from '../driver/define-driver.js'

TestFramework.use({ describe, it, beforeAll: before, afterAll: after })

const system = FakeInterface.createSystem()
testInterfaceDriver({
  title: 'FakeInterface (factory): interface driver conformance',
  driver: () => new FakeInterface({ system }),
  options: { name: 'fake0', subnet: '10.250.0.0/24' },
  inspect: ({ info }) => [...(system.interfaces.get(info.name) ?? [])],
})

// The same fake through a driver module, as third-party drivers are tested.
const loopbackSystem = FakeInterface.createSystem()
const fakeDriver = defineDriver<{ name: string; subnet: string }>({
  name: 'fake-loopback',
  provides: ['interface'],
  platforms: [process.platform],
  ngrokd: '^1.0.0',
  async create() {
    return { interface: new FakeInterface({ system: loopbackSystem, driver: 'fake-loopback', capabilities: { loopbackOnly: true } }) }
  },
})
testInterfaceDriver({ driver: fakeDriver, options: { name: 'fake1', subnet: '10.250.0.0/24' }, inspect: ({ info }) => [...(loopbackSystem.interfaces.get(info.name) ?? [])] })

testAllocator({ title: 'MemoryAllocator: allocator conformance', create: () => new MemoryAllocator() })

// One published set per test folder: a second instance over the same folder sees it (a restart).
const published = new Map<string, PublishedNames>()
testNameResolver({
  title: 'RecordingNameResolver: name resolver conformance',
  create: ({ dir }) => {
    if (!published.has(dir)) published.set(dir, { records: [] })
    return new RecordingNameResolver({ published: published.get(dir)! })
  },
  readBack: ({ dir }) => published.get(dir)?.records ?? [],
})

let upstream: Server
before(async () => {
  upstream = createServer((socket) => socket.pipe(socket))
  await new Promise<void>((resolve) => upstream.listen({ host: '127.0.0.1', port: 0 }, resolve))
})
after(() => new Promise((resolve) => upstream.close(resolve)))
testForwarder({
  title: 'LoopbackForwarder: forwarder conformance',
  create: () => new LoopbackForwarder({ upstream: () => ({ host: '127.0.0.1', port: (upstream.address() as { port: number }).port }) }),
})
