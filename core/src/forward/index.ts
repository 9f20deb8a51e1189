export {
  IngressDialer,
  parseIngressEndpoint,
  DEFAULT_PREDIAL_MAX_AGE_MS,
  INGRESS_CIPHERS,
  type IngressDialerOptions,
  type IngressDialerStats,
  type IngressCredentials,
  type Dialer,
  type DialOptions,
  type DialResult,
  type IngressProbe,
} from './ingress-dialer.js'
export { IngressRefusedError } from './ingress-refused-error.js'
export { resetUnderEnd } from './carry-connection.js'
export { socketCallsLoaded } from './socket-state.js'
export { InThreadForwarder, type InThreadForwarderOptions } from './in-thread-forwarder.js'
export { loadTrustRoots, loadIngressTrust, verifyingAnchor, ngrokIntermediateCa, NGROK_INTERMEDIATE_CA_FILE, type IngressTrust, type TrustAnchor, type TrustAnchorSource, type CaMode } from './ingress-trust.js'
export { createForwarder, resolveWorkerCount, FORWARDER_DEFAULTS, AUTO_MAX_WORKERS, AUTO_IN_THREAD_MAX_CORES, type CreateForwarderOptions, type CreatedForwarder, type ForwarderMode, type ForwarderSettings } from './create-forwarder.js'
export { WorkerPoolForwarder, type WorkerPoolForwarderOptions } from './pool/worker-pool-forwarder.js'
export { ConnectionLimits, refuseConnection, openFilesIssue, openFilesLimit, type ConnectionLimitOptions, type LimitHit } from './connection-limits.js'
