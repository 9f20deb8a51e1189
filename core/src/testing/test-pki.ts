import { TestCa } from './test-ca.js'

/** A certificate and its private key, PEM. */
export interface TestKeyPair {
  certPem: string
  keyPem: string
}

/** Throwaway PKI for forwarder tests: one CA per role, so each trust decision can fail on its own. */
export interface TestPki {
  /** Signs the fake ingress's server certificate. */
  ingressCaPem: string
  /** The fake ingress: SAN `DNS:ingress.test`, `IP:127.0.0.1`. */
  ingress: TestKeyPair
  /** Signs the client certificates the fake ingress accepts. */
  clientCaPem: string
  /** Two client certificates from `clientCaPem` (serials differ): rotation tests switch between them. */
  clientA: TestKeyPair
  clientB: TestKeyPair
  /**
   * ngrok's shape: a root that clients never get, an intermediate CA it signed, and an ingress
   * certificate from the intermediate (`certPem` holds leaf + intermediate, as the server sends them).
   */
  chainRootPem: string
  chainIntermediatePem: string
  chainedIngress: TestKeyPair
  /** A CA nobody trusts, and a client certificate and server certificate signed by it. */
  otherCaPem: string
  otherClient: TestKeyPair
  otherIngress: TestKeyPair
}

/**
 * Makes a {@link TestPki} with {@link TestCa}: ECDSA P-256 keys (the kind ngrok's operator uses,
 * PROTOCOL.md §3).
 *
 * ```ts
 * const pki = createTestPki()
 * tls.createServer({ cert: pki.ingress.certPem, key: pki.ingress.keyPem, ca: pki.clientCaPem, requestCert: true })
 * ```
 */
export function createTestPki(): TestPki {
  const ingressCa = TestCa.create({ commonName: 'ingress-ca' })
  const clientCa = TestCa.create({ commonName: 'client-ca' })
  const otherCa = TestCa.create({ commonName: 'other-ca' })
  const chainRoot = TestCa.create({ commonName: 'chain-root' })
  const chainIntermediate = chainRoot.intermediate({ organization: 'test', commonName: 'chain-intermediate' })
  // each certificate's serial is its name's bytes, so a test can tell which one a peer presented
  const server = (ca: TestCa, commonName: string): TestKeyPair =>
    ca.issueKeyPair({ usage: 'server', subject: { commonName }, serial: Buffer.from(commonName), dnsNames: ['ingress.test'], ipAddresses: ['127.0.0.1'] })
  const client = (ca: TestCa, commonName: string): TestKeyPair => ca.issueKeyPair({ usage: 'client', subject: { commonName }, serial: Buffer.from(commonName) })
  const chainedLeaf = server(chainIntermediate, 'chained-ingress')
  return {
    ingressCaPem: ingressCa.certPem,
    ingress: server(ingressCa, 'ingress'),
    clientCaPem: clientCa.certPem,
    clientA: client(clientCa, 'client-a'),
    clientB: client(clientCa, 'client-b'),
    chainRootPem: chainRoot.certPem,
    chainIntermediatePem: chainIntermediate.certPem,
    chainedIngress: { certPem: chainedLeaf.certPem + chainIntermediate.certPem, keyPem: chainedLeaf.keyPem },
    otherCaPem: otherCa.certPem,
    otherClient: client(otherCa, 'other-client'),
    otherIngress: server(otherCa, 'other-ingress'),
  }
}
