/**
 * Small DER helpers over node-forge's `asn1` (which builds and parses X.509/PKCS#10 structures
 * but cannot sign with ECDSA: signing is node:crypto's job). Buffers in, buffers out.
 */
import forge from 'node-forge'
import { OID } from './oids.js'

const { asn1 } = forge
type Asn1 = forge.asn1.Asn1

export type { Asn1 }

import type { CertificateSubject } from './certificate-subject.js'

export function toDer(node: Asn1): Buffer {
  return Buffer.from(asn1.toDer(node).getBytes(), 'binary')
}

/** Parses DER without trying to read BIT STRING contents as ASN.1 (an EC point may look like one). */
export function fromDer(der: Uint8Array): Asn1 {
  const options = { strict: true, parseAllBytes: true, decodeBitStrings: false }
  return asn1.fromDer(Buffer.from(der).toString('binary'), options as unknown as boolean)
}

export function seq(...children: Asn1[]): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, children)
}

export function set(...children: Asn1[]): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, children)
}

export function oid(dotted: string): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(dotted).getBytes())
}

/** A non-negative INTEGER from big-endian magnitude bytes (a 0x00 is prepended when the top bit is set). */
export function integer(magnitude: Uint8Array | number): Asn1 {
  if (typeof magnitude === 'number') {
    return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, asn1.integerToDer(magnitude).getBytes())
  }
  let bytes = Buffer.from(magnitude)
  while (bytes.length > 1 && bytes[0] === 0 && (bytes[1]! & 0x80) === 0) bytes = bytes.subarray(1)
  if (bytes.length === 0 || (bytes[0]! & 0x80) !== 0) bytes = Buffer.concat([Buffer.from([0]), bytes])
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, bytes.toString('binary'))
}

export function boolean(value: boolean): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BOOLEAN, false, value ? '\xff' : '\x00')
}

/** BIT STRING with `unusedBits` trailing padding bits in the last byte. */
export function bitString(bytes: Uint8Array, unusedBits = 0): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, String.fromCharCode(unusedBits) + Buffer.from(bytes).toString('binary'))
}

/**
 * A named-bit-list BIT STRING (e.g. KeyUsage) with bits numbered from 0 = most significant bit of
 * the first byte. DER drops trailing zero bits — X.690 §11.2.2.
 */
export function namedBits(bits: number[]): Asn1 {
  if (bits.length === 0) return bitString(Buffer.alloc(0))
  const highest = Math.max(...bits)
  const bytes = Buffer.alloc((highest >> 3) + 1)
  for (const bit of bits) bytes[bit >> 3]! |= 0x80 >> (bit & 7)
  return bitString(bytes, 7 - (highest & 7))
}

export function octetString(bytes: Uint8Array): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, Buffer.from(bytes).toString('binary'))
}

export function utf8String(text: string): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTF8, false, forge.util.encodeUtf8(text))
}

/** UTCTime up to 2049, GeneralizedTime after (RFC 5280 §4.1.2.5). */
export function time(date: Date): Asn1 {
  return date.getUTCFullYear() < 2050
    ? asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(date))
    : asn1.create(asn1.Class.UNIVERSAL, asn1.Type.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(date))
}

/** A context-specific `[n]` tag: constructed with children, or primitive (IMPLICIT) with raw bytes. */
export function tagged(n: number, content: Asn1[] | Uint8Array): Asn1 {
  return Array.isArray(content)
    ? asn1.create(asn1.Class.CONTEXT_SPECIFIC, n, true, content)
    : asn1.create(asn1.Class.CONTEXT_SPECIFIC, n, false, Buffer.from(content).toString('binary'))
}

/** A Name (RDNSequence) of `O`/`CN` attributes; `{}` gives the empty Name. */
export function name(attrs: CertificateSubject = {}): Asn1 {
  const rdns: Asn1[] = []
  if (attrs.organization) rdns.push(set(seq(oid(OID.organization), utf8String(attrs.organization))))
  if (attrs.commonName) rdns.push(set(seq(oid(OID.commonName), utf8String(attrs.commonName))))
  return seq(...rdns)
}

/** Embeds already-encoded DER (e.g. a SubjectPublicKeyInfo from node:crypto) as a node. */
export function raw(der: Uint8Array): Asn1 {
  return fromDer(der)
}

/** One TLV of a DER buffer: its tag byte and the exact bytes of the whole element. */
export interface DerElement {
  tag: number
  /** The whole element: tag, length and content. */
  bytes: Buffer
  content: Buffer
}

/** Reads the TLV at `offset`. Only definite lengths (DER). */
export function readElement(buf: Buffer, offset = 0): DerElement {
  if (offset + 2 > buf.length) throw new RangeError('der: truncated element')
  const tag = buf[offset]!
  let len = buf[offset + 1]!
  let header = 2
  if (len & 0x80) {
    const n = len & 0x7f
    if (n === 0 || n > 4 || offset + 2 + n > buf.length) throw new RangeError('der: bad length')
    len = 0
    for (let i = 0; i < n; i++) len = len * 256 + buf[offset + 2 + i]!
    header += n
  }
  const end = offset + header + len
  if (end > buf.length) throw new RangeError('der: truncated element')
  return { tag, bytes: buf.subarray(offset, end), content: buf.subarray(offset + header, end) }
}

/** The children of a constructed element, as exact byte slices (what was signed is what is verified). */
export function children(element: DerElement): DerElement[] {
  const out: DerElement[] = []
  for (let offset = 0; offset < element.content.length; ) {
    const child = readElement(element.content, offset)
    out.push(child)
    offset += child.bytes.length
  }
  return out
}

/** The dotted form of an OBJECT IDENTIFIER element. */
export function readOid(element: DerElement): string {
  if (element.tag !== 0x06) throw new RangeError('der: not an OBJECT IDENTIFIER')
  return asn1.derToOid(element.content.toString('binary'))
}

/** The base64 body of the first PEM block with `label`, decoded. */
export function pemToDer(pem: string, label: string): Buffer | undefined {
  const m = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`).exec(pem)
  return m ? Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64') : undefined
}

export function derToPem(der: Uint8Array, label: string): string {
  const lines = Buffer.from(der).toString('base64').match(/.{1,64}/g) ?? []
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`
}
