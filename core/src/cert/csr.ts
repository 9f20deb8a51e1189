import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto'
import { NgrokdError } from '../errors/index.js'
import {
  OID_ECDSA_WITH_SHA256,
  OID_ECDSA_WITH_SHA384,
  bitString,
  children,
  derToPem,
  fromDer,
  integer,
  name,
  oid,
  pemToDer,
  raw,
  readElement,
  seq,
  tagged,
  toDer,
} from './der.js'
import forge from 'node-forge'

export interface KeyAndCsr {
  /** PKCS#8 PEM (`BEGIN PRIVATE KEY`) of an ECDSA P-256 key. Secret: file mode 0600, never logged. */
  keyPem: string
  /** PKCS#10 PEM (`BEGIN CERTIFICATE REQUEST`) with an empty subject, signed ecdsa-with-SHA256. */
  csrPem: string
}

/**
 * A fresh ECDSA P-256 key and a PKCS#10 CSR with an empty subject, as ngrok's own operator makes
 * them (PROTOCOL.md §3). node-forge builds the ASN.1; node:crypto signs the
 * CertificationRequestInfo DER (forge cannot sign with ECDSA).
 *
 * ```ts
 * const { keyPem, csrPem } = generateKeyAndCsr()
 * await api.createOperator({ …, binding: { endpoint_selectors: ['true'], csr: csrPem } })
 * ```
 */
export function generateKeyAndCsr(): KeyAndCsr {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  const spki = publicKey.export({ type: 'spki', format: 'der' })
  // CertificationRequestInfo ::= SEQUENCE { version INTEGER (0), subject Name, subjectPKInfo,
  //   attributes [0] IMPLICIT SET OF Attribute }  — RFC 2986 §4.1; no attributes: `A0 00`.
  const infoDer = toDer(seq(integer(0), name(), raw(spki), tagged(0, [])))
  // crypto.sign on an EC key gives the DER `ECDSA-Sig-Value` that X.509 and PKCS#10 carry.
  const signature = sign('sha256', infoDer, privateKey)
  const csrDer = toDer(seq(raw(infoDer), seq(oid(OID_ECDSA_WITH_SHA256)), bitString(signature)))
  return {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    csrPem: derToPem(csrDer, 'CERTIFICATE REQUEST'),
  }
}

export interface ParsedCsr {
  /** The exact CertificationRequestInfo bytes the signature covers. */
  infoDer: Buffer
  /** The subject Name's DER; `30 00` when empty. */
  subjectDer: Buffer
  subjectIsEmpty: boolean
  /** The subject's attributes as `[oid, value]` pairs (for `O=…` on a P-384 CSR). */
  subjectAttributes: Array<[string, string]>
  publicKey: KeyObject
  /** `1.2.840.10045.4.3.2` (ecdsa-with-SHA256) or `…4.3.3` (SHA-384). */
  signatureAlgorithm: string
  signature: Buffer
  /** Checks the signature over `infoDer` with the CSR's own public key (proof of possession). */
  verify(): boolean
}

function csrError(detail: string, cause?: unknown): NgrokdError {
  return new NgrokdError('NGROKD_ERR_CERT', `certificate request: ${detail}`, cause === undefined ? {} : { cause })
}

/** Parses a PKCS#10 PEM: enough to check and sign it (the test CA and the cloud simulator use this). */
export function parseCsr(csrPem: string): ParsedCsr {
  const der = pemToDer(csrPem, 'CERTIFICATE REQUEST') ?? pemToDer(csrPem, 'NEW CERTIFICATE REQUEST')
  if (!der) throw csrError('no PEM block "CERTIFICATE REQUEST"')
  try {
    const [info, algorithm, sig] = children(readElement(der))
    if (!info || !algorithm || !sig) throw new RangeError('CertificationRequest needs three parts')
    const [, subject, spki] = children(info)
    if (!subject || !spki) throw new RangeError('CertificationRequestInfo is incomplete')
    const [algOid] = children(algorithm)
    if (!algOid || sig.content.length < 2 || sig.content[0] !== 0) throw new RangeError('bad signature fields')
    const signatureAlgorithm = forge.asn1.derToOid(algOid.content.toString('binary'))
    const publicKey = createPublicKey({ key: spki.bytes, format: 'der', type: 'spki' })
    const signature = Buffer.from(sig.content.subarray(1))
    const subjectAttributes: Array<[string, string]> = []
    const subjectNode = fromDer(subject.bytes)
    for (const rdn of subjectNode.value as forge.asn1.Asn1[]) {
      for (const atv of rdn.value as forge.asn1.Asn1[]) {
        const [type, value] = atv.value as forge.asn1.Asn1[]
        if (type && value) subjectAttributes.push([forge.asn1.derToOid(type.value as string), forge.util.decodeUtf8(value.value as string)])
      }
    }
    const infoDer = Buffer.from(info.bytes)
    return {
      infoDer,
      subjectDer: Buffer.from(subject.bytes),
      subjectIsEmpty: subject.content.length === 0,
      subjectAttributes,
      publicKey,
      signatureAlgorithm,
      signature,
      verify() {
        const hash = signatureAlgorithm === OID_ECDSA_WITH_SHA256 ? 'sha256' : signatureAlgorithm === OID_ECDSA_WITH_SHA384 ? 'sha384' : undefined
        return hash !== undefined && verify(hash, infoDer, publicKey, signature)
      },
    }
  } catch (e) {
    if (e instanceof NgrokdError) throw e
    throw csrError('not a valid PKCS#10 request', e)
  }
}

/** The named curve of an EC key (`prime256v1` for P-256), or undefined for other key types. */
export function ecCurveOf(key: string | KeyObject): string | undefined {
  const k = typeof key === 'string' ? (key.includes('PRIVATE KEY') ? createPrivateKey(key) : createPublicKey(key)) : key
  return k.asymmetricKeyType === 'ec' ? k.asymmetricKeyDetails?.namedCurve : undefined
}
