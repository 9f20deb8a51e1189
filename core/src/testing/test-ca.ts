import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { NgrokdError } from '../errors/index.js'
import type { CertificateSubject } from '../cert/certificate-subject.js'
import { issueCertificate, subjectNameDer } from '../cert/issue-certificate.js'
import { OID } from '../cert/oids.js'
import { parseCsr } from '../cert/parse-csr.js'

const DAY_MS = 86_400_000
/** notBefore is backdated by this much, so that a peer whose clock is a little behind accepts a fresh certificate. */
const CLOCK_SKEW_MS = 60_000

export interface IssueOptions {
  /** Default: one minute ago (clock skew). */
  notBefore?: Date
  /** Default: `notBefore` + 365 days. */
  notAfter?: Date
  /** Default: the CSR's `CN`/`O` when signing a CSR, else empty. */
  subject?: CertificateSubject
  dnsNames?: string[]
  ipAddresses?: string[]
  /** Extended key usage. Default `client`. */
  usage?: 'client' | 'server' | 'both'
  /** Positive serial, big-endian. Default: 16 random bytes. */
  serial?: Uint8Array
}

export interface TestCaOptions {
  /** Default `ngrokd test CA`. */
  commonName?: string
  /** Default `ngrokd`. */
  organization?: string
  /** Default: ten years from now. */
  notAfter?: Date
}

/**
 * A throwaway ECDSA P-256 certificate authority: checks and signs CSRs (as ngrok signs ours) and
 * issues server and client certificates, for tests and for the cloud simulator. Never for
 * production trust. Times in certificates have one-second resolution (milliseconds are dropped).
 *
 * ```ts
 * const ca = TestCa.create()
 * const certPem = ca.signCsr(csrPem, { subject: { commonName: 'k8sop_123' } }) // throws CsrError on a bad CSR
 * const server = ca.issueKeyPair({ usage: 'server', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] })
 * ```
 */
export class TestCa {
  readonly certPem: string
  readonly keyPem: string
  readonly certificate: X509Certificate
  /**
   * The CA certificates a server sends after its leaf: this CA and those above it, root excluded
   * (empty for a self-signed root). PEM, concatenated.
   */
  readonly chainPem: string
  private readonly key: KeyObject
  /** This CA's subject Name DER: the issuer of everything it signs, byte for byte. */
  private readonly nameDer: Buffer

  private constructor(key: KeyObject, certPem: string, chainPem = '') {
    this.key = key
    this.certPem = certPem
    this.chainPem = chainPem
    this.keyPem = key.export({ type: 'pkcs8', format: 'pem' }).toString()
    this.certificate = new X509Certificate(certPem)
    this.nameDer = subjectNameDer(certPem)
  }

  /** A new self-signed CA with a new P-256 key, valid from a minute ago. */
  static create(options: TestCaOptions = {}): TestCa {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    const subject = { organization: options.organization ?? 'ngrokd', commonName: options.commonName ?? 'ngrokd test CA' }
    const notBefore = new Date(Date.now() - CLOCK_SKEW_MS)
    const certPem = issueCertificate({
      publicKey: privateKey,
      subject,
      issuer: subject,
      signingKey: privateKey,
      notBefore,
      notAfter: options.notAfter ?? new Date(notBefore.getTime() + 3650 * DAY_MS),
      ca: true,
      keyUsage: ['keyCertSign', 'cRLSign'],
    })
    return new TestCa(privateKey, certPem)
  }

  /**
   * A new CA (new P-256 key) signed by this one: an intermediate, as ngrok's binding ingress is
   * signed by ngrok's "Intermediate CA" under a root it does not publish. Its `chainPem` is itself
   * plus this CA's chain.
   */
  intermediate(options: TestCaOptions = {}): TestCa {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    const notBefore = new Date(Date.now() - CLOCK_SKEW_MS)
    const certPem = issueCertificate({
      publicKey: privateKey,
      subject: { organization: options.organization ?? 'ngrokd', commonName: options.commonName ?? 'ngrokd test intermediate CA' },
      issuer: this.nameDer,
      signingKey: this.key,
      notBefore,
      notAfter: options.notAfter ?? new Date(this.certificate.validTo), // not beyond its issuer
      ca: true,
      keyUsage: ['keyCertSign', 'cRLSign'],
    })
    return new TestCa(privateKey, certPem, certPem + this.chainPem)
  }

  /** Restores a CA saved as `certPem` + `keyPem`. Throws `NGROKD_ERR_CERT` when the key is not the certificate's. */
  static from(certPem: string, keyPem: string): TestCa {
    const key = createPrivateKey(keyPem)
    let matches = false
    try {
      matches = new X509Certificate(certPem).checkPrivateKey(key)
    } catch (cause) {
      throw new NgrokdError('NGROKD_ERR_CERT', 'test ca: certPem is not a PEM X.509 certificate', { cause })
    }
    if (!matches) throw new NgrokdError('NGROKD_ERR_CERT', 'test ca: keyPem is not the key of certPem', { hint: 'pass the pair saved together' })
    return new TestCa(key, certPem)
  }

  /**
   * Checks the CSR (PEM or DER) with `parseCsr` — structure, ECDSA P-256/P-384, proof of
   * possession — then issues a certificate for its key. Throws `CsrError` on a bad request.
   */
  signCsr(csr: string | Uint8Array, options: IssueOptions = {}): string {
    const parsed = parseCsr(csr)
    const fromCsr: CertificateSubject = {}
    for (const [type, value] of parsed.subjectAttributes) {
      if (type === OID.commonName) fromCsr.commonName = value
      if (type === OID.organization) fromCsr.organization = value
    }
    return this.issue(parsed.publicKey, { subject: fromCsr, ...options })
  }

  /** Issues a certificate for `publicKey` (PEM or KeyObject): digitalSignature, EKU per `usage`. */
  issue(publicKey: string | KeyObject, options: IssueOptions = {}): string {
    const notBefore = options.notBefore ?? new Date(Date.now() - CLOCK_SKEW_MS)
    const usage = options.usage ?? 'client'
    return issueCertificate({
      publicKey: typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey,
      subject: options.subject ?? {},
      issuer: this.nameDer,
      signingKey: this.key,
      notBefore,
      notAfter: options.notAfter ?? new Date(notBefore.getTime() + 365 * DAY_MS),
      keyUsage: ['digitalSignature'],
      extendedKeyUsage: usage === 'both' ? ['serverAuth', 'clientAuth'] : usage === 'server' ? ['serverAuth'] : ['clientAuth'],
      ...(options.dnsNames ? { dnsNames: options.dnsNames } : {}),
      ...(options.ipAddresses ? { ipAddresses: options.ipAddresses } : {}),
      ...(options.serial ? { serial: options.serial } : {}),
    })
  }

  /** A new P-256 key and a certificate for it (e.g. a TLS server for tests). */
  issueKeyPair(options: IssueOptions = {}): { certPem: string; keyPem: string } {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    return { certPem: this.issue(privateKey, options), keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() }
  }

  /** True when this CA signed `cert` (names match and the signature verifies). */
  issued(cert: X509Certificate | string): boolean {
    try {
      const x509 = typeof cert === 'string' ? new X509Certificate(cert) : cert
      return x509.checkIssued(this.certificate) && x509.verify(this.certificate.publicKey)
    } catch {
      return false
    }
  }
}
