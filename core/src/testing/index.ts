// @ngrokd/core/testing: the conformance kit for driver and plugin authors, and fakes of the four
// contracts for tests of the core and of plugins.
export { TestFramework, type TestFrameworkHooks, type DescribeFunction, type ItFunction, type HookFunction, type TestBody } from './test-framework.js'
export { requires, type SkipReason } from './requires.js'
export { enterNetworkNamespace } from './network-namespace.js'
export { freePort, tryConnect } from './net-probes.js'
export { assertRejectsCoded, assertSameSet, isAbortError, type CodedRejectionOptions } from './assertions.js'
export { recordingLogger, type LogRecord } from './recording-logger.js'

export {
  testInterfaceDriver,
  type InterfaceSuiteOptions,
  type InterfaceSuiteSkips,
  type InterfaceSuiteEnv,
  type InterfaceSuiteContext,
  type InterfaceSession,
  type InterfaceFactory,
} from './suites/interface-suite.js'
export { testAllocator, type AllocatorSuiteOptions, type AllocatorSuiteSkips, type AllocatorSuiteEnv, type AllocatorSuiteContext, type AllocatorSession } from './suites/allocator-suite.js'
export {
  testNameResolver,
  type NameResolverSuiteOptions,
  type NameResolverSuiteSkips,
  type NameResolverSuiteEnv,
  type NameResolverSuiteContext,
  type NameResolverSession,
} from './suites/name-resolver-suite.js'
export {
  testForwarder,
  type ForwarderSuiteOptions,
  type ForwarderSuiteSkips,
  type ForwarderSuiteEnv,
  type ForwarderSuiteContext,
  type ForwarderSession,
} from './suites/forwarder-suite.js'

export { testPlugin, type PluginSuiteOptions } from './suites/plugin-suite.js'

export { FakeInterface, type FakeInterfaceOptions, type FakeSystem, type FakeInterfaceMethod, type FakeInterfaceCall, type InjectFailureOptions } from './fakes/fake-interface.js'
export { RecordingNameResolver, type PublishedNames, type RecordedPublish } from './fakes/recording-name-resolver.js'
export { LoopbackForwarder, type LoopbackForwarderOptions, type LoopbackUpstream } from './fakes/loopback-forwarder.js'
// The allocator fake is the core's own in-memory allocator.
export { MemoryAllocator, type MemoryAllocatorOptions } from '../alloc/memory-allocator.js'
// A throwaway certificate authority: the cloud simulator's CA is built on it.
export { TestCa, type IssueOptions, type TestCaOptions } from './test-ca.js'
// A bare binding ingress and the PKI around it, for testing a forwarder on its own.
export { startFakeIngress, echo, type FakeIngress, type FakeIngressConn, type FakeIngressOptions } from './fake-ingress.js'
export { createTestPki, type TestPki, type TestKeyPair } from './test-pki.js'
