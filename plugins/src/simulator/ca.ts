import type { X509Certificate } from 'node:crypto'
import { isIP } from 'node:net'
import { TestCa, parseCertificate, type CertificateSubject } from '@ngrokd/core'

const YEAR_MS = 365 * 24 * 3600_000

export interface IssuedCertificateInfo {
  certPem: string
  /** Upper-case hex serial, as `X509Certificate.serialNumber` prints it. */
  serial: string
  /** As written in the certificate (whole seconds). */
  notBefore: Date
  notAfter: Date
}

export interface IssuedKeyPair extends IssuedCertificateInfo {
  keyPem: string
}

export interface SimulatorCaOptions {
  commonName?: string
  /** Validity of the CA certificate itself. Default 10 years. */
  validityMs?: number
}

/**
 * The simulated cloud's root: core's {@link TestCa} (a self-signed ECDSA P-256 CA made at start)
 * with the simulator's names and defaults. It signs the ingress's server certificate, client
 * certificates from operators' CSRs, and server certificates for https backends. CSR checks are
 * core's `parseCsr`: a bad request throws `CsrError`.
 *
 * ```ts
 * const ca = SimulatorCa.create()
 * const client = ca.signCsr(csrPem, { commonName: 'k8sop_…', validityMs: 3_600_000 })
 * ```
 */
export class SimulatorCa {
  readonly certPem: string
  readonly certificate: X509Certificate

  private constructor(private readonly ca: TestCa) {
    this.certPem = ca.certPem
    this.certificate = ca.certificate
  }

  static create(options: SimulatorCaOptions = {}): SimulatorCa {
    const notAfter = new Date(Date.now() + (options.validityMs ?? 10 * YEAR_MS))
    const commonName = options.commonName ?? 'ngrokd simulator root CA'
    return new SimulatorCa(TestCa.create({ organization: 'ngrokd cloud simulator', commonName, notAfter }))
  }

  /**
   * Verifies a PKCS#10 CSR, PEM or DER (throws `CsrError` on a bad one), and issues a clientAuth
   * certificate for its public key, subject `CN=<commonName>` (or empty). Default validity 1 year.
   */
  signCsr(csr: string | Uint8Array, options: { commonName?: string; validityMs?: number } = {}): IssuedCertificateInfo {
    return describe(this.ca.signCsr(csr, { subject: cn(options.commonName), notAfter: expiry(options.validityMs), usage: 'client' }))
  }

  /** A fresh P-256 key and a serverAuth certificate for the given DNS names and IP addresses (`CN` = the first). */
  issueServerCert(names: string[], options: { validityMs?: number } = {}): IssuedKeyPair {
    const { certPem, keyPem } = this.ca.issueKeyPair({
      subject: { commonName: names[0] ?? 'localhost' },
      dnsNames: names.filter((n) => isIP(n) === 0),
      ipAddresses: names.filter((n) => isIP(n) !== 0),
      notAfter: expiry(options.validityMs),
      usage: 'server',
    })
    return { ...describe(certPem), keyPem }
  }

  /** A fresh P-256 key and a clientAuth certificate (for tests that need a client without a CSR round trip). */
  issueClientCert(options: { commonName?: string; validityMs?: number } = {}): IssuedKeyPair {
    const { certPem, keyPem } = this.ca.issueKeyPair({ subject: cn(options.commonName), notAfter: expiry(options.validityMs), usage: 'client' })
    return { ...describe(certPem), keyPem }
  }

  /** True when this CA signed the certificate. */
  issued(cert: X509Certificate): boolean {
    return this.ca.issued(cert)
  }
}

const cn = (commonName: string | undefined): CertificateSubject => (commonName === undefined ? {} : { commonName })
const expiry = (validityMs = YEAR_MS): Date => new Date(Date.now() + validityMs)

/** Serial and validity read back from the certificate, so they are exactly what a client sees. */
function describe(certPem: string): IssuedCertificateInfo {
  const cert = parseCertificate(certPem)
  return { certPem, serial: cert.serialNumber, notBefore: cert.notBefore, notAfter: cert.notAfter }
}
