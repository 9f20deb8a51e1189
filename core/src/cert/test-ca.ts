import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto'
import { isIP } from 'node:net'
import { NgrokdError } from '../errors/index.js'
import { parseCsr } from './csr.js'
import {
  OID_ECDSA_WITH_SHA256,
  bitString,
  boolean,
  derToPem,
  integer,
  name,
  octetString,
  oid,
  raw,
  seq,
  tagged,
  time,
  toDer,
  type Asn1,
} from './der.js'

const DAY_MS = 86_400_000

export interface CertificateSubject {
  commonName?: string
  organization?: string
}

export interface IssueOptions {
  /** Default: one minute ago (clock skew). */
  notBefore?: Date
  /** Default: `notBefore` + 365 days. */
  notAfter?: Date
  /** Default: the CSR's subject when signing a CSR, else empty. */
  subject?: CertificateSubject
  dnsNames?: string[]
  ipAddresses?: string[]
  /** Extended key usage. Default `client`. */
  usage?: 'client' | 'server' | 'both'
}

const OID_BASIC_CONSTRAINTS = '2.5.29.19'
const OID_KEY_USAGE = '2.5.29.15'
const OID_EXT_KEY_USAGE = '2.5.29.37'
const OID_SUBJECT_ALT_NAME = '2.5.29.17'
const OID_SERVER_AUTH = '1.3.6.1.5.5.7.3.1'
const OID_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2'

function extension(id: string, critical: boolean, value: Asn1): Asn1 {
  return critical ? seq(oid(id), boolean(true), octetString(toDer(value))) : seq(oid(id), octetString(toDer(value)))
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number))
  if (isIP(ip) === 6 && !ip.includes('.')) {
    const [head = '', tail = ''] = ip.split('::')
    const parts = (s: string) => (s ? s.split(':') : [])
    const h = parts(head)
    const t = parts(tail)
    const groups = ip.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h
    return Buffer.from(groups.flatMap((g) => [(parseInt(g, 16) >> 8) & 0xff, parseInt(g, 16) & 0xff]))
  }
  throw new NgrokdError('NGROKD_ERR_CERT', `test ca: ${ip} is not an IP address`)
}

/**
 * A throwaway ECDSA P-256 certificate authority: signs CSRs (as ngrok signs ours) and issues
 * server certificates, for tests and for the cloud simulator. Never for production trust.
 *
 * ```ts
 * const ca = TestCa.create()
 * const certPem = ca.signCsr(csrPem, { subject: { commonName: 'k8sop_123' } })
 * ```
 */
export class TestCa {
  readonly certPem: string
  readonly keyPem: string
  private readonly key: KeyObject
  private readonly subject: CertificateSubject

  private constructor(key: KeyObject, certPem: string, subject: CertificateSubject) {
    this.key = key
    this.certPem = certPem
    this.keyPem = key.export({ type: 'pkcs8', format: 'pem' }).toString()
    this.subject = subject
  }

  /** A new self-signed CA, valid from a minute ago for ten years unless `notAfter` says otherwise. */
  static create(options: { commonName?: string; notAfter?: Date } = {}): TestCa {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    const subject = { organization: 'ngrokd', commonName: options.commonName ?? 'ngrokd test CA' }
    const notBefore = new Date(Date.now() - 60_000)
    const notAfter = options.notAfter ?? new Date(notBefore.getTime() + 3650 * DAY_MS)
    const extensions = [
      extension(OID_BASIC_CONSTRAINTS, true, seq(boolean(true))),
      // keyCertSign (bit 5) | cRLSign (bit 6): one byte 0b0000_0110, 1 unused bit — RFC 5280 §4.2.1.3
      extension(OID_KEY_USAGE, true, bitString(Buffer.from([0x06]), 1)),
    ]
    const certPem = buildCertificate({ issuer: subject, subject, publicKey, notBefore, notAfter, extensions, signer: privateKey })
    return new TestCa(privateKey, certPem, subject)
  }

  /** Restores a CA saved as `certPem` + `keyPem` (its subject is taken as given). */
  static from(certPem: string, keyPem: string, subject: CertificateSubject = { organization: 'ngrokd', commonName: 'ngrokd test CA' }): TestCa {
    return new TestCa(createPrivateKey(keyPem), certPem, subject)
  }

  /** Checks the CSR's signature (proof of possession), then issues a certificate for its key. */
  signCsr(csrPem: string, options: IssueOptions = {}): string {
    const csr = parseCsr(csrPem)
    if (!csr.verify()) throw new NgrokdError('NGROKD_ERR_CERT', 'test ca: the certificate request signature does not verify')
    const fromCsr: CertificateSubject = {}
    for (const [type, value] of csr.subjectAttributes) {
      if (type === '2.5.4.3') fromCsr.commonName = value
      if (type === '2.5.4.10') fromCsr.organization = value
    }
    return this.issue(csr.publicKey, { subject: fromCsr, ...options })
  }

  /** Issues a certificate for `publicKey` (PEM or KeyObject). */
  issue(publicKey: string | KeyObject, options: IssueOptions = {}): string {
    const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey
    const notBefore = options.notBefore ?? new Date(Date.now() - 60_000)
    const notAfter = options.notAfter ?? new Date(notBefore.getTime() + 365 * DAY_MS)
    const usage = options.usage ?? 'client'
    const eku = [
      ...(usage === 'server' || usage === 'both' ? [oid(OID_SERVER_AUTH)] : []),
      ...(usage === 'client' || usage === 'both' ? [oid(OID_CLIENT_AUTH)] : []),
    ]
    const extensions = [
      extension(OID_BASIC_CONSTRAINTS, true, seq()),
      // digitalSignature (bit 0): one byte 0b1000_0000, 7 unused bits — RFC 5280 §4.2.1.3
      extension(OID_KEY_USAGE, true, bitString(Buffer.from([0x80]), 7)),
      extension(OID_EXT_KEY_USAGE, false, seq(...eku)),
    ]
    const sans = [
      ...(options.dnsNames ?? []).map((d) => tagged(2, Buffer.from(d, 'ascii'))), // dNSName [2] IA5String
      ...(options.ipAddresses ?? []).map((ip) => tagged(7, ipBytes(ip))), // iPAddress [7] OCTET STRING
    ]
    const subject = options.subject ?? {}
    const subjectEmpty = !subject.commonName && !subject.organization
    // an empty subject requires a critical subjectAltName — RFC 5280 §4.2.1.6
    if (sans.length > 0) extensions.push(extension(OID_SUBJECT_ALT_NAME, subjectEmpty, seq(...sans)))
    return buildCertificate({ issuer: this.subject, subject, publicKey: key, notBefore, notAfter, extensions, signer: this.key })
  }

  /** A new P-256 key and a certificate for it (a TLS server for tests). */
  issueKeyPair(options: IssueOptions = {}): { certPem: string; keyPem: string } {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    return { certPem: this.issue(publicKey, options), keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() }
  }
}

function buildCertificate(p: {
  issuer: CertificateSubject
  subject: CertificateSubject
  publicKey: KeyObject
  notBefore: Date
  notAfter: Date
  extensions: Asn1[]
  signer: KeyObject
}): string {
  const serial = randomBytes(16)
  serial[0] = (serial[0]! & 0x7f) | 0x01 // positive and non-zero — RFC 5280 §4.1.2.2
  const algorithm = seq(oid(OID_ECDSA_WITH_SHA256))
  // TBSCertificate — RFC 5280 §4.1: version [0] EXPLICIT v3 (2), serial, signature, issuer,
  // validity, subject, subjectPublicKeyInfo, extensions [3] EXPLICIT
  const tbs = toDer(
    seq(
      tagged(0, [integer(2)]),
      integer(serial),
      algorithm,
      name(p.issuer),
      seq(time(p.notBefore), time(p.notAfter)),
      name(p.subject),
      raw(p.publicKey.export({ type: 'spki', format: 'der' })),
      tagged(3, [seq(...p.extensions)]),
    ),
  )
  const signature = sign('sha256', tbs, p.signer)
  return derToPem(toDer(seq(raw(tbs), seq(oid(OID_ECDSA_WITH_SHA256)), bitString(signature))), 'CERTIFICATE')
}
