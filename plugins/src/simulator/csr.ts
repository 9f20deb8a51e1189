/**
 * PKCS#10 certification requests (RFC 2986): parse and verify the self-signature.
 *
 *   CertificationRequest ::= SEQUENCE { certificationRequestInfo, signatureAlgorithm, signature BIT STRING }
 *   CertificationRequestInfo ::= SEQUENCE { version INTEGER (0), subject Name, subjectPKInfo, attributes [0] }
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto'
import forge from 'node-forge'
import { OID, fromPem, toBinary } from './x509.js'

const { asn1 } = forge

/** A request the simulated API refuses; the message goes into the ngrok error body. */
export class CsrError extends Error {
  override name = 'CsrError'
}

export interface ParsedCsr {
  /** DER SubjectPublicKeyInfo, copied byte for byte into the issued certificate. */
  spkiDer: Buffer
  publicKey: KeyObject
  /** `P-256` or `P-384`: the curves ngrok's operator is known to use (PROTOCOL.md §3). */
  curve: 'P-256' | 'P-384'
  /** Subject attributes by OID, e.g. `{ '2.5.4.10': 'acme' }`; empty for an empty subject. */
  subject: Record<string, string>
}

const HASH_BY_SIG_OID: Record<string, string> = {
  [OID.ecdsaWithSha256]: 'sha256',
  [OID.ecdsaWithSha384]: 'sha384',
  [OID.ecdsaWithSha512]: 'sha512',
}

const CURVES: Record<string, ParsedCsr['curve']> = { prime256v1: 'P-256', secp384r1: 'P-384' }

interface Tlv {
  tag: number
  /** Offset of the tag byte. */
  start: number
  /** Offset of the first content byte. */
  contentStart: number
  /** Offset just past the content. */
  end: number
}

/** One DER TLV at `offset` (definite lengths only, as DER requires). */
function readTlv(buf: Buffer, offset: number, limit = buf.length): Tlv {
  if (offset + 2 > limit) throw new CsrError('csr is truncated')
  const tag = buf[offset]!
  let len = buf[offset + 1]!
  let contentStart = offset + 2
  if (len & 0x80) {
    const n = len & 0x7f
    if (n === 0 || n > 4 || contentStart + n > limit) throw new CsrError('csr has a bad DER length')
    len = 0
    for (let i = 0; i < n; i++) len = len * 256 + buf[contentStart + i]!
    contentStart += n
  }
  const end = contentStart + len
  if (end > limit) throw new CsrError('csr is truncated')
  return { tag, start: offset, contentStart, end }
}

function children(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = []
  for (let pos = parent.contentStart; pos < parent.end; ) {
    const t = readTlv(buf, pos, parent.end)
    out.push(t)
    pos = t.end
  }
  return out
}

const SEQUENCE = 0x30
const BIT_STRING = 0x03
const INTEGER = 0x02

/** Parses a PEM (or DER) PKCS#10 request and verifies its signature. Throws {@link CsrError}. */
export function parseCsr(input: string | Buffer): ParsedCsr {
  const der =
    typeof input === 'string'
      ? (fromPem('CERTIFICATE REQUEST', input) ?? fromPem('NEW CERTIFICATE REQUEST', input))
      : input
  if (!der || der.length === 0) throw new CsrError('csr is not a PEM "CERTIFICATE REQUEST" block')

  const outer = readTlv(der, 0)
  if (outer.tag !== SEQUENCE || outer.end !== der.length) throw new CsrError('csr is not a DER SEQUENCE')
  const parts = children(der, outer)
  if (parts.length !== 3) throw new CsrError('csr must have info, algorithm and signature')
  const [info, alg, sig] = parts as [Tlv, Tlv, Tlv]
  if (info.tag !== SEQUENCE || alg.tag !== SEQUENCE || sig.tag !== BIT_STRING) throw new CsrError('csr structure is malformed')

  const infoFields = children(der, info)
  const [version, subject, spki] = infoFields
  if (!version || !subject || !spki || version.tag !== INTEGER || subject.tag !== SEQUENCE || spki.tag !== SEQUENCE) {
    throw new CsrError('csr request info is malformed')
  }
  if (version.end - version.contentStart !== 1 || der[version.contentStart] !== 0) throw new CsrError('csr version must be 1 (0)')

  let algOid: string
  try {
    const algNode = asn1.fromDer(toBinary(der.subarray(alg.start, alg.end)))
    algOid = asn1.derToOid((algNode.value as forge.asn1.Asn1[])[0]!.value as string)
  } catch {
    throw new CsrError('csr signature algorithm is malformed')
  }
  const hash = HASH_BY_SIG_OID[algOid]
  if (!hash) throw new CsrError(`csr signature algorithm ${algOid} is not supported: use ECDSA`)

  const spkiDer = Buffer.from(der.subarray(spki.start, spki.end))
  let publicKey: KeyObject
  try {
    publicKey = createPublicKey({ key: spkiDer, format: 'der', type: 'spki' })
  } catch {
    throw new CsrError('csr public key is malformed')
  }
  const curve = publicKey.asymmetricKeyType === 'ec' ? CURVES[publicKey.asymmetricKeyDetails?.namedCurve ?? ''] : undefined
  if (!curve) throw new CsrError('csr key must be ECDSA P-256 or P-384')

  if (sig.end - sig.contentStart < 2 || der[sig.contentStart] !== 0) throw new CsrError('csr signature is malformed')
  const signature = der.subarray(sig.contentStart + 1, sig.end)
  let ok = false
  try {
    ok = verify(hash, der.subarray(info.start, info.end), publicKey, signature)
  } catch {
    ok = false
  }
  if (!ok) throw new CsrError('csr signature does not verify')

  return { spkiDer, publicKey, curve, subject: readName(der.subarray(subject.start, subject.end)) }
}

function readName(nameDer: Buffer): Record<string, string> {
  const out: Record<string, string> = {}
  try {
    const name = asn1.fromDer(toBinary(nameDer))
    for (const rdn of name.value as forge.asn1.Asn1[]) {
      for (const atv of rdn.value as forge.asn1.Asn1[]) {
        const [type, value] = atv.value as forge.asn1.Asn1[]
        if (type && value && typeof value.value === 'string') {
          out[asn1.derToOid(type.value as string)] = forge.util.decodeUtf8(value.value)
        }
      }
    }
  } catch {
    throw new CsrError('csr subject is malformed')
  }
  return out
}
