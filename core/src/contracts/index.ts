export type { Check } from './check.js'
export { silentLogger, type Logger, type LogFn } from './logger.js'
export {
  InterfaceBase,
  type Interface,
  type InterfaceCapabilities,
  type InterfaceInfo,
  type InterfaceOpenOptions,
  type AddressChange,
} from './interface.js'
export type { Allocator, AllocatorOpenOptions, Allocation, AllocationEntry } from './allocator.js'
export type { NameResolver, NameRecord, NameResolverHealth } from './name-resolver.js'
export type { Forwarder, ForwardTarget, ListenOptions, ListenerFigures, ListenerStatus, EndpointProto } from './forwarder.js'
