import { sign, type KeyObject } from 'node:crypto'
import forge from 'node-forge'
import { OID, derOf, encodeName, spkiOf, toBinary, toPem, type DistinguishedName } from './x509.js'

const { asn1 } = forge

/**
 * Builds a PKCS#10 CSR (RFC 2986) for an EC key, signed with ecdsa-with-SHA256 (or SHA-384 for
 * P-384 keys). Used by the simulator's tests and by test clients that register without the daemon.
 */
export function makeCsr(privateKey: KeyObject, subject: DistinguishedName = {}): string {
  const U = asn1.Class.UNIVERSAL
  const T = asn1.Type
  const p384 = privateKey.asymmetricKeyDetails?.namedCurve === 'secp384r1'
  const info = asn1.create(U, T.SEQUENCE, true, [
    asn1.create(U, T.INTEGER, false, '\x00'),
    encodeName(subject),
    asn1.fromDer(toBinary(spkiOf(privateKey))),
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, []),
  ])
  const infoDer = derOf(info)
  const signature = sign(p384 ? 'sha384' : 'sha256', infoDer, privateKey)
  const csr = asn1.create(U, T.SEQUENCE, true, [
    asn1.fromDer(toBinary(infoDer)),
    asn1.create(U, T.SEQUENCE, true, [
      asn1.create(U, T.OID, false, asn1.oidToDer(p384 ? OID.ecdsaWithSha384 : OID.ecdsaWithSha256).getBytes()),
    ]),
    asn1.create(U, T.BITSTRING, false, '\x00' + toBinary(signature)),
  ])
  return toPem('CERTIFICATE REQUEST', derOf(csr))
}

