/**
 * Just enough X.509 (RFC 5280) to issue certificates: DER built with node-forge's asn1 module,
 * signed with node:crypto (node-forge cannot sign with ECDSA).
 */
import { createHash, createPublicKey, randomBytes, sign, type KeyObject } from 'node:crypto'
import { isIP } from 'node:net'
import forge from 'node-forge'

const { asn1 } = forge
type Asn1 = forge.asn1.Asn1

export const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2', // RFC 5758 §3.2
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  ecdsaWithSha512: '1.2.840.10045.4.3.4',
  ecPublicKey: '1.2.840.10045.2.1', // RFC 5480 §2.1.1
  prime256v1: '1.2.840.10045.3.1.7',
  secp384r1: '1.3.132.0.34',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const

/** KeyUsage bits, numbered as in RFC 5280 §4.2.1.3 (bit 0 = digitalSignature). */
export const KEY_USAGE = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6 } as const

export const toBinary = (buf: Buffer): string => buf.toString('binary')
export const fromBinary = (s: string): Buffer => Buffer.from(s, 'binary')
export const derOf = (node: Asn1): Buffer => fromBinary(asn1.toDer(node).getBytes())

const U = asn1.Class.UNIVERSAL
const T = asn1.Type
const seq = (items: Asn1[]): Asn1 => asn1.create(U, T.SEQUENCE, true, items)
const oid = (o: string): Asn1 => asn1.create(U, T.OID, false, asn1.oidToDer(o).getBytes())
const octets = (buf: Buffer): Asn1 => asn1.create(U, T.OCTETSTRING, false, toBinary(buf))
/** BIT STRING with no unused bits. */
const bits = (buf: Buffer): Asn1 => asn1.create(U, T.BITSTRING, false, '\x00' + toBinary(buf))
const bool = (v: boolean): Asn1 => asn1.create(U, T.BOOLEAN, false, v ? '\xff' : '\x00')
const ctx = (tag: number, constructed: boolean, value: string | Asn1[]): Asn1 =>
  asn1.create(asn1.Class.CONTEXT_SPECIFIC, tag, constructed, value)

/** An unsigned big-endian integer as a DER INTEGER (leading 0x00 when the high bit is set). */
function uint(buf: Buffer): Asn1 {
  let i = 0
  while (i < buf.length - 1 && buf[i] === 0) i++
  let body = buf.subarray(i)
  if (body[0]! & 0x80) body = Buffer.concat([Buffer.from([0]), body])
  return asn1.create(U, T.INTEGER, false, toBinary(body))
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
function time(d: Date): Asn1 {
  return d.getUTCFullYear() < 2050
    ? asn1.create(U, T.UTCTIME, false, asn1.dateToUtcTime(d))
    : asn1.create(U, T.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(d))
}

export interface DistinguishedName {
  commonName?: string
  organization?: string
}

export function encodeName(dn: DistinguishedName): Asn1 {
  const rdns: Asn1[] = []
  const attr = (type: string, value: string) =>
    rdns.push(asn1.create(U, T.SET, true, [seq([oid(type), asn1.create(U, T.UTF8, false, forge.util.encodeUtf8(value))])]))
  if (dn.organization !== undefined) attr(OID.organization, dn.organization)
  if (dn.commonName !== undefined) attr(OID.commonName, dn.commonName)
  return seq(rdns)
}

function extension(id: string, critical: boolean, value: Asn1): Asn1 {
  const items = [oid(id)]
  if (critical) items.push(bool(true))
  items.push(octets(derOf(value)))
  return seq(items)
}

function keyUsage(usages: number[]): Asn1 {
  // Named bit list, DER: trailing zero bits dropped (X.690 §11.2.2).
  const highest = Math.max(...usages)
  const nbytes = (highest >> 3) + 1
  const body = Buffer.alloc(nbytes)
  for (const u of usages) body[u >> 3]! |= 0x80 >> (u & 7)
  const unused = 7 - (highest & 7)
  return asn1.create(U, T.BITSTRING, false, String.fromCharCode(unused) + toBinary(body))
}

function subjectAltName(names: string[]): Asn1 {
  return seq(
    names.map((n) => {
      const family = isIP(n)
      if (family === 0) return ctx(2, false, n) // dNSName [2] IA5String
      return ctx(7, false, toBinary(ipBytes(n, family))) // iPAddress [7] OCTET STRING
    }),
  )
}

function ipBytes(ip: string, family: number): Buffer {
  if (family === 4) return Buffer.from(ip.split('.').map(Number))
  const [head = '', tail = ''] = ip.split('::') as [string, string?]
  const h = head ? head.split(':') : []
  const t = ip.includes('::') && tail ? tail.split(':') : []
  const groups = ip.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h
  const out = Buffer.alloc(16)
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2))
  return out
}

/** SubjectKeyIdentifier method 1 of RFC 5280 §4.2.1.2: SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(spkiDer: Buffer): Buffer {
  const spki = asn1.fromDer(toBinary(spkiDer))
  const bitString = (spki.value as Asn1[])[1]!.value as string
  return createHash('sha1').update(fromBinary(bitString).subarray(1)).digest()
}

export interface CertificateSpec {
  subject: DistinguishedName
  issuer: DistinguishedName
  /** DER SubjectPublicKeyInfo of the certified key. */
  spkiDer: Buffer
  /** DER SubjectPublicKeyInfo of the issuer's key (for authorityKeyIdentifier). */
  issuerSpkiDer: Buffer
  notBefore: Date
  notAfter: Date
  ca?: boolean
  keyUsage: number[]
  extKeyUsage?: string[]
  altNames?: string[]
  /** Positive serial; 16 random bytes when absent. */
  serial?: Buffer
}

export interface IssuedCertificate {
  der: Buffer
  pem: string
  /** Upper-case hex, as `X509Certificate.serialNumber` prints it. */
  serialHex: string
}

/** Builds the TBSCertificate, signs it with an EC key (ecdsa-with-SHA256) and returns the certificate. */
export function issueCertificate(spec: CertificateSpec, signingKey: KeyObject): IssuedCertificate {
  const serial = spec.serial ?? randomSerial()
  const exts: Asn1[] = [
    extension(OID.basicConstraints, true, seq(spec.ca ? [bool(true)] : [])),
    extension(OID.keyUsage, true, keyUsage(spec.keyUsage)),
  ]
  if (spec.extKeyUsage?.length) exts.push(extension(OID.extKeyUsage, false, seq(spec.extKeyUsage.map(oid))))
  if (spec.altNames?.length) exts.push(extension(OID.subjectAltName, false, subjectAltName(spec.altNames)))
  exts.push(extension(OID.subjectKeyIdentifier, false, octets(keyIdentifier(spec.spkiDer))))
  if (!spec.ca || !spec.issuerSpkiDer.equals(spec.spkiDer)) {
    exts.push(extension(OID.authorityKeyIdentifier, false, seq([ctx(0, false, toBinary(keyIdentifier(spec.issuerSpkiDer)))])))
  }
  const sigAlg = seq([oid(OID.ecdsaWithSha256)]) // RFC 5758 §3.2: parameters absent
  const tbs = seq([
    ctx(0, true, [asn1.create(U, T.INTEGER, false, '\x02')]), // version v3
    uint(serial),
    sigAlg,
    encodeName(spec.issuer),
    seq([time(spec.notBefore), time(spec.notAfter)]),
    encodeName(spec.subject),
    asn1.fromDer(toBinary(spec.spkiDer)),
    ctx(3, true, [seq(exts)]),
  ])
  const tbsDer = derOf(tbs)
  const signature = sign('sha256', tbsDer, signingKey) // DER ECDSA-Sig-Value, as X.509 wants
  const der = derOf(seq([asn1.fromDer(toBinary(tbsDer)), seq([oid(OID.ecdsaWithSha256)]), bits(signature)]))
  return { der, pem: toPem('CERTIFICATE', der), serialHex: serialHex(serial) }
}

export function randomSerial(): Buffer {
  const s = randomBytes(16)
  s[0] = (s[0]! & 0x7f) | 0x01 // positive, and never a leading zero byte (RFC 5280 §4.1.2.2)
  return s
}

function serialHex(serial: Buffer): string {
  let i = 0
  while (i < serial.length - 1 && serial[i] === 0) i++
  return serial.subarray(i).toString('hex').toUpperCase()
}

export function toPem(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '')
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`
}

/** The DER body of the first PEM block with this label, or undefined. */
export function fromPem(label: string, pem: string): Buffer | undefined {
  const re = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`)
  const m = re.exec(pem)
  return m ? Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64') : undefined
}

/** DER SubjectPublicKeyInfo of a key. */
export function spkiOf(key: KeyObject): Buffer {
  return createPublicKey(key).export({ type: 'spki', format: 'der' })
}
