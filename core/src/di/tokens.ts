import type { InjectionToken } from './tsyringe.js'
import type { Interface } from '../contracts/interface.js'
import type { Allocator } from '../contracts/allocator.js'
import type { NameResolver } from '../contracts/name-resolver.js'
import type { Forwarder } from '../contracts/forwarder.js'
import type { Logger } from '../contracts/logger.js'

// Symbol.for keeps tokens equal across duplicate copies of core.
export const INTERFACE: InjectionToken<Interface> = Symbol.for('ngrokd.Interface')
export const ALLOCATOR: InjectionToken<Allocator> = Symbol.for('ngrokd.Allocator')
export const NAME_RESOLVER: InjectionToken<NameResolver> = Symbol.for('ngrokd.NameResolver')
export const FORWARDER: InjectionToken<Forwarder> = Symbol.for('ngrokd.Forwarder')
export const LOGGER: InjectionToken<Logger> = Symbol.for('ngrokd.Logger')
