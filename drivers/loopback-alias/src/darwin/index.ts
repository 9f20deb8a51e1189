/**
 * @ngrokd/driver-loopback-alias/darwin: the macOS layer shared by the lo0 alias code and the
 * darwin-utun driver — constants, struct encoders, interface address ioctls and the libSystem
 * bindings. Loads on every OS: koffi is imported only by `loadLibSystem()`.
 *
 * ```ts
 * import { changeInterfaceAddresses, loadLibSystem } from '@ngrokd/driver-loopback-alias/darwin'
 * const sys = await loadLibSystem('darwin-utun')
 * changeInterfaceAddresses(sys, { driver: 'darwin-utun', privilegeHint: 'run ngrokd with sudo', ifname: 'utun4', add: ['10.107.0.2'], remove: [], pointToPoint: true })
 * ```
 */
export * from './constants.js'
export * from './structs.js'
export { DARWIN_ERRNO, errnoName, type DarwinSyscalls, type IfaddrsEntry, type LengthResult, type ReadableWatch } from './darwin-syscalls.js'
export { changeInterfaceAddresses, setInterfaceMtu, interfaceAddresses, darwinError, HOST_MASK, type Caller, type InterfaceAddressChange } from './interface-addresses.js'
export { loadLibSystem } from './load-libsystem.js'
