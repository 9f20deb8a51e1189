import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { TestFramework } from './test-framework.js'
import { testInterfaceDriver } from './suites/interface-suite.js'
import { FakeInterface } from './fakes/fake-interface.js'
import { isNgrokdError } from '../errors/ngrokd-error.js'

TestFramework.use({ describe, it, beforeAll: before, afterAll: after })

const system = FakeInterface.createSystem()
testInterfaceDriver({ driver: () => new FakeInterface({ system }), options: { name: 'fake0', subnet: '10.250.0.0/24' } })

const loopbackSystem = FakeInterface.createSystem()
testInterfaceDriver({
  title: 'fake-interface (loopbackOnly): interface driver conformance',
  driver: () => new FakeInterface({ system: loopbackSystem, capabilities: { loopbackOnly: true } }),
  options: { name: 'fake1', subnet: '10.250.0.0/24' },
})
