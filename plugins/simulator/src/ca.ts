import type { X509Certificate } from 'node:crypto'
import { isIP } from 'node:net'
import { parseCertificate, type CertificateSubject } from '@ngrokd/core'
import { TestCa } from '@ngrokd/core/testing'

const YEAR_MS = 365 * 24 * 3600_000
/** notBefore of an issued client certificate lies this far before its issue time (clock skew between peers). */
const CLOCK_SKEW_MS = 60_000

export interface IssuedCertificateInfo {
  /** The leaf, followed by the CA certificates a server sends with it (the intermediate, for server certificates). */
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
 * The simulated cloud's CAs, in the shape of ngrok's (PROTOCOL.md §4.1): a root that no client is
 * ever given, and an intermediate it signed. The intermediate signs every server certificate (the
 * ingress's, the https backends'), which servers send with it as their chain; clients trust the
 * intermediate alone (`certPem`), so they verify exactly as against ngrok's published "Intermediate
 * CA" — with partial chains allowed. The root signs client certificates from operators' CSRs (the
 * ingress's client trust; ngrok does not say what signs ours). Both are core's {@link TestCa}
 * (ECDSA P-256, made at start). CSR checks are core's `parseCsr`: a bad request throws `CsrError`.
 *
 * ```ts
 * const ca = SimulatorCa.create()
 * const client = ca.signCsr(csrPem, { commonName: 'k8sop_…', validityMs: 3_600_000 })
 * tls.connect({ ca: ca.certPem, allowPartialTrustChain: true, ... }) // what a client of the ingress trusts
 * ```
 */
export class SimulatorCa {
  /** The intermediate CA certificate: the one trust anchor clients get. */
  readonly certPem: string
  readonly certificate: X509Certificate
  /** The root above the intermediate. Never given to clients; tests use it to prove that. */
  readonly rootCertPem: string

  private constructor(
    private readonly root: TestCa,
    private readonly intermediate: TestCa,
  ) {
    this.certPem = intermediate.certPem
    this.certificate = intermediate.certificate
    this.rootCertPem = root.certPem
  }

  static create(options: SimulatorCaOptions = {}): SimulatorCa {
    const notAfter = new Date(Date.now() + (options.validityMs ?? 10 * YEAR_MS))
    const organization = 'ngrokd cloud simulator'
    const root = TestCa.create({ organization, commonName: `${options.commonName ?? 'ngrokd simulator'} Root CA`, notAfter })
    return new SimulatorCa(root, root.intermediate({ organization, commonName: `${options.commonName ?? 'ngrokd simulator'} Intermediate CA`, notAfter }))
  }

  /**
   * Verifies a PKCS#10 CSR, PEM or DER (throws `CsrError` on a bad one), and issues a clientAuth
   * certificate for its public key from the root, subject `CN=<commonName>` (or empty). Default validity 1 year
   * from `issuedAt` (default now); `notBefore` is a minute before it, so a peer a little behind accepts it.
   */
  signCsr(csr: string | Uint8Array, options: { commonName?: string; validityMs?: number; issuedAt?: Date } = {}): IssuedCertificateInfo {
    const issuedAt = options.issuedAt?.getTime() ?? Date.now()
    return describe(
      this.root.signCsr(csr, {
        subject: cn(options.commonName),
        notBefore: new Date(issuedAt - CLOCK_SKEW_MS),
        notAfter: new Date(issuedAt + (options.validityMs ?? YEAR_MS)),
        usage: 'client',
      }),
    )
  }

  /**
   * A fresh P-256 key and a serverAuth certificate from the intermediate for the given DNS names and
   * IP addresses (`CN` = the first); `certPem` holds the leaf and the intermediate, as a server sends them.
   */
  issueServerCert(names: string[], options: { validityMs?: number } = {}): IssuedKeyPair {
    const { certPem, keyPem } = this.intermediate.issueKeyPair({
      subject: { commonName: names[0] ?? 'localhost' },
      dnsNames: names.filter((n) => isIP(n) === 0),
      ipAddresses: names.filter((n) => isIP(n) !== 0),
      notAfter: expiry(options.validityMs),
      usage: 'server',
    })
    return { ...describe(certPem), certPem: certPem + this.intermediate.chainPem, keyPem }
  }

  /** A fresh P-256 key and a clientAuth certificate from the root (for tests that need a client without a CSR round trip). */
  issueClientCert(options: { commonName?: string; validityMs?: number } = {}): IssuedKeyPair {
    const { certPem, keyPem } = this.root.issueKeyPair({ subject: cn(options.commonName), notAfter: expiry(options.validityMs), usage: 'client' })
    return { ...describe(certPem), keyPem }
  }

  /** True when the root signed the certificate: a client certificate the ingress accepts. */
  issued(cert: X509Certificate): boolean {
    return this.root.issued(cert)
  }
}

const cn = (commonName: string | undefined): CertificateSubject => (commonName === undefined ? {} : { commonName })
const expiry = (validityMs = YEAR_MS): Date => new Date(Date.now() + validityMs)

/** Serial and validity read back from the certificate, so they are exactly what a client sees. */
function describe(certPem: string): IssuedCertificateInfo {
  const cert = parseCertificate(certPem)
  return { certPem, serial: cert.serialNumber, notBefore: cert.notBefore, notAfter: cert.notAfter }
}
