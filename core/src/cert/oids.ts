/** Object identifiers of the X.509 and PKCS#10 structures ngrokd builds and reads. */
export const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2', // RFC 5758 §3.2 (parameters absent)
  ecdsaWithSha384: '1.2.840.10045.4.3.3', // RFC 5758 §3.2
  ecdsaWithSha512: '1.2.840.10045.4.3.4', // RFC 5758 §3.2
  commonName: '2.5.4.3', // RFC 5280 Appendix A.1 (X.520)
  organization: '2.5.4.10',
  subjectKeyIdentifier: '2.5.29.14', // RFC 5280 §4.2.1.2
  keyUsage: '2.5.29.15', // RFC 5280 §4.2.1.3
  subjectAltName: '2.5.29.17', // RFC 5280 §4.2.1.6
  basicConstraints: '2.5.29.19', // RFC 5280 §4.2.1.9
  authorityKeyIdentifier: '2.5.29.35', // RFC 5280 §4.2.1.1
  extKeyUsage: '2.5.29.37', // RFC 5280 §4.2.1.12
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const

/**
 * The ECDSA signature algorithm for a key on `curve`: the digest that matches the curve's
 * strength (RFC 5480 §4); SHA-256 for P-256 and any other curve.
 */
export function ecdsaSignatureFor(curve: string | undefined): { hash: 'sha256' | 'sha384' | 'sha512'; oid: string } {
  if (curve === 'secp384r1') return { hash: 'sha384', oid: OID.ecdsaWithSha384 }
  if (curve === 'secp521r1') return { hash: 'sha512', oid: OID.ecdsaWithSha512 }
  return { hash: 'sha256', oid: OID.ecdsaWithSha256 }
}
