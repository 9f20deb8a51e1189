export { CloudSimulator, type CloudSimulatorOptions } from './cloud-simulator.js'
export { SimulatorCa, type IssuedCertificateInfo, type IssuedKeyPair } from './ca.js'
// CSR building blocks live in @ngrokd/core; re-exported here for the simulator's users.
export { CsrError, parseCsr, makeCsr, type ParsedCsr } from '@ngrokd/core'
export { Backends, bulkByteAt, type BackendTarget, type EchoReply } from './backends.js'
export { NGROK_ERRORS, ApiErrorReply, type ErrorReplyBody } from './ngrok-errors.js'
export type { SimulatorAdmin } from './admin-api.js'
export type {
  AddEndpointInput,
  ApiFault,
  ApiRequestRecord,
  ConnRequestRecord,
  BackendKind,
  EndpointObject,
  IngressFault,
  OperatorObject,
  SimulatorStats,
} from './types.js'
