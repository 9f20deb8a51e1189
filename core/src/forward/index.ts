export { IngressDialer, parseIngressEndpoint, type IngressDialerOptions, type IngressCredentials, type Dialer, type DialOptions, type DialResult } from './ingress-dialer.js'
export { IngressRefusedError } from './ingress-refused-error.js'
export { InThreadForwarder, type InThreadForwarderOptions } from './in-thread-forwarder.js'
export { loadTrustRoots } from './load-trust-roots.js'
