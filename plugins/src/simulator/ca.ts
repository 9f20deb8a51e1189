import { X509Certificate, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { parseCsr } from './csr.js'
import { KEY_USAGE, OID, issueCertificate, spkiOf, type DistinguishedName } from './x509.js'

/** Backdating of notBefore, so that a peer whose clock is a little behind accepts a fresh certificate. */
const CLOCK_SKEW_MS = 60_000
const YEAR_MS = 365 * 24 * 3600_000

export interface IssuedCertificateInfo {
  certPem: string
  /** Upper-case hex serial, as `X509Certificate.serialNumber` prints it. */
  serial: string
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

/** X.509 times have one-second resolution; keep the Dates we report equal to what the certificate says. */
const floorToSecond = (ms: number): Date => new Date(Math.floor(ms / 1000) * 1000)

/**
 * A self-signed ECDSA P-256 root made at start. It signs the ingress's server certificate, client
 * certificates from operators' CSRs, and server certificates for https backends.
 *
 * ```ts
 * const ca = SimulatorCa.create()
 * const client = ca.signCsr(csrPem, { commonName: 'k8sop_…', validityMs: 3_600_000 })
 * ```
 */
export class SimulatorCa {
  readonly certPem: string
  readonly certificate: X509Certificate
  private readonly subject: DistinguishedName
  private readonly spkiDer: Buffer

  private constructor(
    private readonly key: KeyObject,
    options: SimulatorCaOptions,
  ) {
    this.subject = { organization: 'ngrokd cloud simulator', commonName: options.commonName ?? 'ngrokd simulator root CA' }
    this.spkiDer = spkiOf(key)
    const now = Date.now()
    const cert = issueCertificate(
      {
        subject: this.subject,
        issuer: this.subject,
        spkiDer: this.spkiDer,
        issuerSpkiDer: this.spkiDer,
        notBefore: floorToSecond(now - CLOCK_SKEW_MS),
        notAfter: floorToSecond(now + (options.validityMs ?? 10 * YEAR_MS)),
        ca: true,
        keyUsage: [KEY_USAGE.digitalSignature, KEY_USAGE.keyCertSign, KEY_USAGE.cRLSign],
      },
      key,
    )
    this.certPem = cert.pem
    this.certificate = new X509Certificate(cert.der)
  }

  static create(options: SimulatorCaOptions = {}): SimulatorCa {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    return new SimulatorCa(privateKey, options)
  }

  /**
   * Verifies a PKCS#10 CSR (throws `CsrError` on a bad one) and issues a clientAuth certificate
   * for its public key. Default validity 1 year.
   */
  signCsr(csr: string | Buffer, options: { commonName?: string; validityMs?: number } = {}): IssuedCertificateInfo {
    const parsed = parseCsr(csr)
    return this.issue(parsed.spkiDer, {
      subject: options.commonName === undefined ? {} : { commonName: options.commonName },
      validityMs: options.validityMs ?? YEAR_MS,
      extKeyUsage: [OID.clientAuth],
      keyUsage: [KEY_USAGE.digitalSignature],
    })
  }

  /** A fresh P-256 key and a serverAuth certificate for the given DNS names and IP addresses. */
  issueServerCert(names: string[], options: { validityMs?: number } = {}): IssuedKeyPair {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    const info = this.issue(spkiOf(privateKey), {
      subject: { commonName: names[0] ?? 'localhost' },
      validityMs: options.validityMs ?? YEAR_MS,
      extKeyUsage: [OID.serverAuth],
      keyUsage: [KEY_USAGE.digitalSignature],
      altNames: names,
    })
    return { ...info, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() }
  }

  /** A fresh P-256 key and a clientAuth certificate (for tests that need a client without a CSR round trip). */
  issueClientCert(options: { commonName?: string; validityMs?: number } = {}): IssuedKeyPair {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    const info = this.issue(spkiOf(privateKey), {
      subject: options.commonName === undefined ? {} : { commonName: options.commonName },
      validityMs: options.validityMs ?? YEAR_MS,
      extKeyUsage: [OID.clientAuth],
      keyUsage: [KEY_USAGE.digitalSignature],
    })
    return { ...info, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() }
  }

  /** True when this CA signed the certificate. */
  issued(cert: X509Certificate): boolean {
    return cert.checkIssued(this.certificate) && cert.verify(this.certificate.publicKey)
  }

  private issue(
    spkiDer: Buffer,
    o: { subject: DistinguishedName; validityMs: number; extKeyUsage: string[]; keyUsage: number[]; altNames?: string[] },
  ): IssuedCertificateInfo {
    const now = Date.now()
    const notBefore = floorToSecond(now - CLOCK_SKEW_MS)
    const notAfter = floorToSecond(now + o.validityMs)
    const cert = issueCertificate(
      {
        subject: o.subject,
        issuer: this.subject,
        spkiDer,
        issuerSpkiDer: this.spkiDer,
        notBefore,
        notAfter,
        keyUsage: o.keyUsage,
        extKeyUsage: o.extKeyUsage,
        ...(o.altNames ? { altNames: o.altNames } : {}),
      },
      this.key,
    )
    return { certPem: cert.pem, serial: cert.serialHex, notBefore, notAfter }
  }
}
