// Everything a driver author needs, and nothing of the daemon.
export * from '../contracts/index.js'
export * from '../errors/index.js'
export {
  defineDriver,
  isDriverModule,
  type DriverDefinition,
  type DriverModule,
  type DriverContext,
  type DriverInstances,
  type DriverKind,
  type DriverRequirement,
} from './define-driver.js'
export { parseSubnet, subnetContains, subnetsOverlap, ipv4ToInt, intToIpv4, isIpv4, type Ipv4Subnet } from '../util/ipv4.js'
export { writeFileAtomic, type AtomicWriteOptions } from '../util/atomic-file.js'
export { assertTrustedPath, runsAsRoot, type TrustedPathOptions } from '../util/trusted-path.js'
export { Lifecycle, requireOpen } from '../util/lifecycle.js'
export { parseKoffiPrototypes } from '../util/win32-koffi.js'
