import { createPublicKey, verify, type KeyObject } from 'node:crypto'
import forge from 'node-forge'
import { NgrokdError, type NgrokdErrorOptions } from '../errors/index.js'
import { children, fromDer, pemToDer, readElement, readOid, type DerElement } from './der.js'
import { OID } from './oids.js'

/**
 * A certificate request a CA must refuse: malformed, not ECDSA P-256/P-384, or its signature does
 * not verify. Code `NGROKD_ERR_CERT`; the message says what is wrong and may be shown to the sender.
 */
export class CsrError extends NgrokdError<'NGROKD_ERR_CERT'> {
  override name = 'CsrError'
  constructor(message: string, options: NgrokdErrorOptions = {}) {
    super('NGROKD_ERR_CERT', message, options)
  }
}

/** The curves ngrok's operator is known to use (P-256; P-384 with subject `O=…`). */
export type CsrCurve = 'P-256' | 'P-384'

export interface ParsedCsr {
  /** The subject's attributes as `[oid, value]` pairs, in order; `[]` for the empty subject. */
  subjectAttributes: Array<[string, string]>
  subjectIsEmpty: boolean
  /** DER SubjectPublicKeyInfo exactly as in the request. */
  spkiDer: Buffer
  publicKey: KeyObject
  curve: CsrCurve
  /** `1.2.840.10045.4.3.2` (ecdsa-with-SHA256), `…4.3.3` (SHA-384) or `…4.3.4` (SHA-512). */
  signatureAlgorithm: string
}

const HASH_BY_SIGNATURE_OID: Record<string, string> = {
  [OID.ecdsaWithSha256]: 'sha256',
  [OID.ecdsaWithSha384]: 'sha384',
  [OID.ecdsaWithSha512]: 'sha512',
}
const CURVE_BY_NAME: Record<string, CsrCurve> = { prime256v1: 'P-256', secp384r1: 'P-384' }

// X.690 §8.1.2 universal tag bytes
const SEQUENCE = 0x30
const INTEGER = 0x02
const BIT_STRING = 0x03

/**
 * Parses a PKCS#10 request (PEM, or DER bytes) and checks everything a CA checks before signing:
 * DER structure (RFC 2986 §4), version 0, an ECDSA signature algorithm, an ECDSA P-256 or P-384
 * key, and the self-signature over the CertificationRequestInfo (proof of possession). Throws
 * {@link CsrError} otherwise.
 *
 * ```ts
 * const csr = parseCsr(body.binding.csr) // throws CsrError on a bad request
 * ca.issue(csr.publicKey, { usage: 'client' })
 * ```
 */
export function parseCsr(input: string | Uint8Array): ParsedCsr {
  const der =
    typeof input === 'string'
      ? (pemToDer(input, 'CERTIFICATE REQUEST') ?? pemToDer(input, 'NEW CERTIFICATE REQUEST'))
      : Buffer.from(input)
  if (!der || der.length === 0) {
    throw new CsrError('csr is not a PEM "CERTIFICATE REQUEST" block', { hint: 'send the PKCS#10 request as PEM' })
  }
  const { info, algorithm, signatureBits, subject, spki } = structure(der)

  let signatureAlgorithm: string
  try {
    const [algorithmOid] = children(algorithm) // AlgorithmIdentifier { algorithm, parameters absent }
    if (!algorithmOid) throw new RangeError('empty AlgorithmIdentifier')
    signatureAlgorithm = readOid(algorithmOid)
  } catch (cause) {
    throw new CsrError('csr signature algorithm is malformed', { cause })
  }
  const hash = HASH_BY_SIGNATURE_OID[signatureAlgorithm]
  if (!hash) throw new CsrError(`csr signature algorithm ${signatureAlgorithm} is not supported: use ECDSA`)

  const spkiDer = Buffer.from(spki.bytes)
  let publicKey: KeyObject
  try {
    publicKey = createPublicKey({ key: spkiDer, format: 'der', type: 'spki' })
  } catch (cause) {
    throw new CsrError('csr public key is malformed', { cause })
  }
  const curve = publicKey.asymmetricKeyType === 'ec' ? CURVE_BY_NAME[publicKey.asymmetricKeyDetails?.namedCurve ?? ''] : undefined
  if (!curve) throw new CsrError('csr key must be ECDSA P-256 or P-384', { hint: 'make the key with the prime256v1 or secp384r1 curve' })

  // BIT STRING: one byte of unused bits (0 for a signature), then the DER ECDSA-Sig-Value
  if (signatureBits.content.length < 2 || signatureBits.content[0] !== 0) throw new CsrError('csr signature is malformed')
  let verified = false
  try {
    verified = verify(hash, info.bytes, publicKey, signatureBits.content.subarray(1))
  } catch {
    verified = false // a signature that is not a DER ECDSA-Sig-Value
  }
  if (!verified) {
    throw new CsrError('csr signature does not verify', { hint: 'sign the request with the private key of the public key it carries' })
  }

  const subjectAttributes = readNameAttributes(subject)
  return { subjectAttributes, subjectIsEmpty: subject.content.length === 0, spkiDer, publicKey, curve, signatureAlgorithm }
}

/**
 * CertificationRequest ::= SEQUENCE { certificationRequestInfo, signatureAlgorithm, signature BIT STRING }
 * CertificationRequestInfo ::= SEQUENCE { version INTEGER (0), subject Name, subjectPKInfo, attributes [0] }
 * — RFC 2986 §4.1, §4.2. Element slices are the exact bytes: what was signed is what is verified.
 */
function structure(der: Buffer): { info: DerElement; algorithm: DerElement; signatureBits: DerElement; subject: DerElement; spki: DerElement } {
  try {
    const outer = readElement(der)
    if (outer.tag !== SEQUENCE || outer.bytes.length !== der.length) throw new CsrError('csr is not one DER SEQUENCE')
    const parts = children(outer)
    if (parts.length !== 3) throw new CsrError('csr must have info, algorithm and signature')
    const [info, algorithm, signatureBits] = parts as [DerElement, DerElement, DerElement]
    if (info.tag !== SEQUENCE || algorithm.tag !== SEQUENCE || signatureBits.tag !== BIT_STRING) throw new CsrError('csr structure is malformed')
    const [version, subject, spki] = children(info)
    if (version?.tag !== INTEGER || subject?.tag !== SEQUENCE || spki?.tag !== SEQUENCE) throw new CsrError('csr request info is malformed')
    if (version.content.length !== 1 || version.content[0] !== 0) throw new CsrError('csr version must be 1 (0)')
    return { info, algorithm, signatureBits, subject, spki }
  } catch (e) {
    if (e instanceof CsrError) throw e
    throw new CsrError('csr is not valid DER', { cause: e }) // truncated, or a bad length
  }
}

function readNameAttributes(subject: DerElement): Array<[string, string]> {
  const out: Array<[string, string]> = []
  try {
    for (const rdn of fromDer(subject.bytes).value as forge.asn1.Asn1[]) {
      for (const atv of rdn.value as forge.asn1.Asn1[]) {
        const [type, value] = atv.value as forge.asn1.Asn1[]
        if (!type || typeof type.value !== 'string' || !value || typeof value.value !== 'string') throw new RangeError('bad attribute')
        out.push([forge.asn1.derToOid(type.value), forge.util.decodeUtf8(value.value)])
      }
    }
  } catch (cause) {
    throw new CsrError('csr subject is malformed', { cause })
  }
  return out
}
