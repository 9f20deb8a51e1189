// @ngrokd/driver-loopback-alias/darwin/testing: a fake of the macOS kernel for tests on any OS.
export { FakeDarwinKernel, FAKE_ERRNO, type FakeDarwinKernelOptions, type FakeCall, type FakeAddress, type FakeInterfaceState, type FakeRoute, type FakeDescriptor } from './fake-darwin-kernel.js'
