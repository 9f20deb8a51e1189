export { CloudSimulator, type CloudSimulatorOptions } from './cloud-simulator.js'
export { SimulatorCa, type IssuedCertificateInfo, type IssuedKeyPair } from './ca.js'
export { CsrError, parseCsr, type ParsedCsr } from './csr.js'
export { makeCsr } from './make-csr.js'
export { dialIngress, type DialIngressOptions, type IngressConnection } from './ingress-client.js'
export { Backends, bulkByteAt, type BackendTarget, type EchoReply } from './backends.js'
export { NGROK_ERRORS, NgrokApiError, type NgrokErrorBody } from './ngrok-errors.js'
export type { SimulatorAdmin } from './admin-api.js'
export type {
  AddEndpointInput,
  ApiFault,
  ApiRequestRecord,
  BackendKind,
  EndpointObject,
  IngressFault,
  OperatorObject,
  SimulatorStats,
} from './types.js'
