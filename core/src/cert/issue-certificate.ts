import { createHash, createPublicKey, randomBytes, sign, type KeyObject } from 'node:crypto'
import { ipFamily } from '../util/ip-family.js'
import { NgrokdError } from '../errors/index.js'
import { ecCurveOf } from './csr.js'
import {
  bitString,
  boolean,
  children,
  derToPem,
  integer,
  name,
  namedBits,
  octetString,
  oid,
  pemToDer,
  raw,
  readElement,
  seq,
  tagged,
  time,
  toDer,
  type Asn1,
} from './der.js'
import type { CertificateSubject } from './certificate-subject.js'
import { OID, ecdsaSignatureFor } from './oids.js'

/** KeyUsage bit numbers — RFC 5280 §4.2.1.3. */
const KEY_USAGE_BITS = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6 } as const

export type KeyUsage = keyof typeof KEY_USAGE_BITS
export type ExtendedKeyUsage = 'serverAuth' | 'clientAuth'

export interface CertificateSpec {
  /** The certified key: a public key, or a private key whose public half is certified. */
  publicKey: KeyObject
  subject: CertificateSubject
  /** The issuer's Name: attributes, or the DER of the issuing certificate's subject (copied verbatim). */
  issuer: CertificateSubject | Uint8Array
  /** The issuer's EC private key. It signs, and its public half gives the authorityKeyIdentifier. */
  signingKey: KeyObject
  notBefore: Date
  notAfter: Date
  /** basicConstraints cA. Default false. */
  ca?: boolean
  keyUsage: KeyUsage[]
  extendedKeyUsage?: ExtendedKeyUsage[]
  dnsNames?: string[]
  ipAddresses?: string[]
  /** Positive serial, big-endian; 16 random bytes when absent. */
  serial?: Uint8Array
}

/**
 * Builds an X.509 v3 certificate (RFC 5280 §4.1) and signs it with ECDSA (SHA-256 for a P-256
 * issuer key, SHA-384 for P-384). Extensions: basicConstraints and keyUsage (critical),
 * extKeyUsage, subjectAltName (critical when the subject is empty — §4.2.1.6),
 * subjectKeyIdentifier, and authorityKeyIdentifier unless self-signed. Returns PEM.
 *
 * ```ts
 * const certPem = issueCertificate({ publicKey, subject: { commonName: 'api' }, issuer: caSubject,
 *   signingKey: caKey, notBefore, notAfter, keyUsage: ['digitalSignature'], extendedKeyUsage: ['serverAuth'],
 *   dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] })
 * ```
 */
export function issueCertificate(spec: CertificateSpec): string {
  if (!(spec.notAfter.getTime() > spec.notBefore.getTime())) {
    throw new NgrokdError('NGROKD_ERR_CERT', 'certificate: notAfter must be later than notBefore')
  }
  const curve = ecCurveOf(spec.signingKey)
  if (spec.signingKey.type !== 'private' || curve === undefined) {
    throw new NgrokdError('NGROKD_ERR_CERT', 'certificate: the signing key must be an EC private key')
  }
  const spki = spkiOf(spec.publicKey)
  const issuerSpki = spkiOf(spec.signingKey)

  const extensions = [
    extension(OID.basicConstraints, true, seq(...(spec.ca ? [boolean(true)] : []))), // cA FALSE is the DEFAULT: omitted
    extension(OID.keyUsage, true, namedBits(spec.keyUsage.map((u) => KEY_USAGE_BITS[u]))),
  ]
  if (spec.extendedKeyUsage?.length) {
    extensions.push(extension(OID.extKeyUsage, false, seq(...spec.extendedKeyUsage.map((u) => oid(OID[u])))))
  }
  const altNames = [
    ...(spec.dnsNames ?? []).map((d) => tagged(2, dnsNameBytes(d))), // dNSName [2] IA5String
    ...(spec.ipAddresses ?? []).map((ip) => tagged(7, ipAddressBytes(ip))), // iPAddress [7] OCTET STRING
  ]
  const subjectIsEmpty = !spec.subject.commonName && !spec.subject.organization
  if (altNames.length > 0) extensions.push(extension(OID.subjectAltName, subjectIsEmpty, seq(...altNames)))
  extensions.push(extension(OID.subjectKeyIdentifier, false, octetString(keyIdentifier(spki))))
  if (!spki.equals(issuerSpki)) {
    // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING, … }
    extensions.push(extension(OID.authorityKeyIdentifier, false, seq(tagged(0, keyIdentifier(issuerSpki)))))
  }

  const signature = ecdsaSignatureFor(curve)
  const algorithm = seq(oid(signature.oid)) // parameters absent — RFC 5758 §3.2
  // TBSCertificate — RFC 5280 §4.1: version [0] EXPLICIT v3 (2), serial, signature, issuer,
  // validity, subject, subjectPublicKeyInfo, extensions [3] EXPLICIT
  const tbs = toDer(
    seq(
      tagged(0, [integer(2)]),
      integer(spec.serial ?? randomSerial()),
      algorithm,
      spec.issuer instanceof Uint8Array ? raw(spec.issuer) : name(spec.issuer),
      seq(time(spec.notBefore), time(spec.notAfter)),
      name(spec.subject),
      raw(spki),
      tagged(3, [seq(...extensions)]),
    ),
  )
  // crypto.sign on an EC key gives the DER ECDSA-Sig-Value that X.509 carries
  const signed = sign(signature.hash, tbs, spec.signingKey)
  return derToPem(toDer(seq(raw(tbs), algorithm, bitString(signed))), 'CERTIFICATE')
}

/** The subject Name's DER of a certificate (PEM or DER), for use as `issuer` of what it signs. */
export function subjectNameDer(cert: string | Uint8Array): Buffer {
  const der = typeof cert === 'string' ? (pemToDer(cert, 'CERTIFICATE') ?? Buffer.alloc(0)) : Buffer.from(cert)
  try {
    const [tbs] = children(readElement(der))
    const fields = children(tbs!)
    // version [0] is present in v2/v3 certificates; then serial, signature, issuer, validity, subject
    const subject = fields[fields[0]!.tag === 0xa0 ? 5 : 4]
    if (subject?.tag !== 0x30) throw new RangeError('no subject Name')
    return Buffer.from(subject.bytes)
  } catch (cause) {
    throw new NgrokdError('NGROKD_ERR_CERT', 'certificate: not a DER X.509 certificate', { cause })
  }
}

function extension(id: string, critical: boolean, value: Asn1): Asn1 {
  // Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
  return critical ? seq(oid(id), boolean(true), octetString(toDer(value))) : seq(oid(id), octetString(toDer(value)))
}

/** DER SubjectPublicKeyInfo of a public key, or of a private key's public half. */
function spkiOf(key: KeyObject): Buffer {
  return (key.type === 'public' ? key : createPublicKey(key)).export({ type: 'spki', format: 'der' })
}

/** Key identifier method (1) of RFC 5280 §4.2.1.2: SHA-1 of the subjectPublicKey BIT STRING's bits. */
function keyIdentifier(spkiDer: Buffer): Buffer {
  const [, subjectPublicKey] = children(readElement(spkiDer))
  return createHash('sha1').update(subjectPublicKey!.content.subarray(1)).digest()
}

function randomSerial(): Buffer {
  const serial = randomBytes(16)
  serial[0] = (serial[0]! & 0x7f) | 0x01 // positive and non-zero — RFC 5280 §4.1.2.2
  return serial
}

function dnsNameBytes(dnsName: string): Buffer {
  if (!/^[\x21-\x7e]+$/.test(dnsName)) throw new NgrokdError('NGROKD_ERR_CERT', `certificate: ${JSON.stringify(dnsName)} is not an ASCII DNS name`)
  return Buffer.from(dnsName, 'ascii')
}

function ipAddressBytes(ip: string): Buffer {
  const family = ipFamily(ip)
  if (family === 4) return Buffer.from(ip.split('.').map(Number))
  if (family === 6 && !ip.includes('%')) {
    // The WHATWG URL parser prints IPv6 as hex groups only (dotted IPv4 tails converted), with at most one `::`.
    const canonical = new URL(`http://[${ip}]/`).hostname.slice(1, -1)
    const [head = '', tail] = canonical.split('::')
    const groups = (s: string) => (s ? s.split(':') : [])
    const h = groups(head)
    const t = tail === undefined ? [] : groups(tail)
    const all = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t]
    const out = Buffer.alloc(16)
    all.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2))
    return out
  }
  const hint = ip.includes('%') ? 'a zone id (fe80::1%eth0) cannot go in a certificate: drop it' : 'give an IPv4 or IPv6 address'
  throw new NgrokdError('NGROKD_ERR_CERT', `certificate: ${ip} is not an IP address`, { hint })
}
