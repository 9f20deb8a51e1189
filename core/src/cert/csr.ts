import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto'
import { NgrokdError } from '../errors/index.js'
import { bitString, derToPem, integer, name, oid, raw, seq, tagged, toDer } from './der.js'
import type { CertificateSubject } from './certificate-subject.js'
import { OID } from './oids.js'

export interface KeyAndCsr {
  /** PKCS#8 PEM (`BEGIN PRIVATE KEY`) of an ECDSA P-256 key. Secret: file mode 0600, never logged. */
  keyPem: string
  /** PKCS#10 PEM (`BEGIN CERTIFICATE REQUEST`) with an empty subject, signed ecdsa-with-SHA512. */
  csrPem: string
}

/**
 * A fresh ECDSA P-256 key and a PKCS#10 CSR with an empty subject, as ngrok's own Kubernetes
 * operator makes them.
 *
 * ```ts
 * const { keyPem, csrPem } = generateKeyAndCsr()
 * await api.createOperator({ …, binding: { endpoint_selectors: ['true'], csr: csrPem } })
 * ```
 */
export function generateKeyAndCsr(): KeyAndCsr {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  return { keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), csrPem: makeCsr(privateKey) }
}

/**
 * A PKCS#10 CSR (RFC 2986) for an EC private key (PEM or KeyObject), with `subject` (default empty)
 * and no attributes; signed ecdsa-with-SHA512 whatever the curve, as ngrok's operator signs its P-256 CSR
 * (`generateCSR`: `x509.ECDSAWithSHA512`), so the API gets the request it is known to accept.
 * node-forge builds the ASN.1; node:crypto signs (forge cannot sign with ECDSA). Any EC curve is
 * encoded, so tests can make requests a CA must refuse; `parseCsr` decides what is acceptable.
 *
 * ```ts
 * const key = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey
 * const csrPem = makeCsr(key, { organization: 'acme' })
 * ```
 */
export function makeCsr(privateKey: KeyObject | string, subject: CertificateSubject = {}): string {
  const key = typeof privateKey === 'string' ? createPrivateKey(privateKey) : privateKey
  const curve = ecCurveOf(key)
  if (key.type !== 'private' || curve === undefined) {
    throw new NgrokdError('NGROKD_ERR_CERT', 'csr: the key must be an EC private key', { hint: 'make one with the prime256v1 curve' })
  }
  const signature = { hash: 'sha512', oid: OID.ecdsaWithSha512 }
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' })
  // CertificationRequestInfo ::= SEQUENCE { version INTEGER (0), subject Name, subjectPKInfo,
  //   attributes [0] IMPLICIT SET OF Attribute }  — RFC 2986 §4.1; no attributes: `A0 00`.
  const infoDer = toDer(seq(integer(0), name(subject), raw(spki), tagged(0, [])))
  // crypto.sign on an EC key gives the DER `ECDSA-Sig-Value` that X.509 and PKCS#10 carry.
  const signed = sign(signature.hash, infoDer, key)
  return derToPem(toDer(seq(raw(infoDer), seq(oid(signature.oid)), bitString(signed))), 'CERTIFICATE REQUEST')
}

/**
 * The named curve of an EC key (`prime256v1` for P-256), or undefined for other key types.
 *
 * A KeyObject is read through a copy of its own: on Node 20, reading `asymmetricKeyDetails` of a key that
 * `generateKeyPairSync` made can deadlock the thread, when the collection that string allocation starts
 * destroys the finished key-generation job, which takes the lock the read holds (seen in a test run: the main
 * thread in `~KeyGenJob` → `uv_mutex_lock` under `GetEcKeyDetail`).
 */
export function ecCurveOf(key: string | KeyObject): string | undefined {
  if (typeof key !== 'string' && key.type === 'secret') return undefined
  const k =
    typeof key === 'string'
      ? key.includes('PRIVATE KEY')
        ? createPrivateKey(key)
        : createPublicKey(key)
      : key.type === 'private'
        ? createPrivateKey({ key: key.export({ type: 'pkcs8', format: 'der' }), format: 'der', type: 'pkcs8' })
        : createPublicKey({ key: key.export({ type: 'spki', format: 'der' }), format: 'der', type: 'spki' })
  return k.asymmetricKeyType === 'ec' ? k.asymmetricKeyDetails?.namedCurve : undefined
}
