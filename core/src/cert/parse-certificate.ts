import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto'
import { NgrokdError } from '../errors/index.js'

export interface CertificateInfo {
  /** The first certificate of the PEM, re-encoded. */
  pem: string
  subject: string
  issuer: string
  serialNumber: string
  notBefore: Date
  notAfter: Date
  /** SHA-256 fingerprint, `AB:CD:…`. Safe to log. */
  fingerprint256: string
  publicKey: KeyObject
  /** True when `key` (PEM or KeyObject) is the private key of this certificate. */
  matchesKey(key: string | KeyObject): boolean
  /** Milliseconds left until `notAfter` at `nowMs` (negative once expired). */
  remainingMs(nowMs?: number): number
}

// validFromDate/validToDate exist only from Node 22.10; on Node 20 parse validFrom/validTo.
type X509WithDates = X509Certificate & { validFromDate?: Date; validToDate?: Date }

/**
 * Reads a PEM certificate with `crypto.X509Certificate`. Throws `NGROKD_ERR_CERT` when it is not one.
 *
 * ```ts
 * const cert = parseCertificate(certPem)
 * if (!cert.matchesKey(keyPem)) throw …
 * ```
 */
export function parseCertificate(pem: string): CertificateInfo {
  let x509: X509WithDates
  try {
    x509 = new X509Certificate(pem) as X509WithDates
  } catch (cause) {
    throw new NgrokdError('NGROKD_ERR_CERT', 'certificate: not a valid PEM X.509 certificate', { cause })
  }
  const notBefore = x509.validFromDate ?? new Date(x509.validFrom)
  const notAfter = x509.validToDate ?? new Date(x509.validTo)
  if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) {
    throw new NgrokdError('NGROKD_ERR_CERT', 'certificate: validity dates are unreadable')
  }
  return {
    pem: x509.toString(),
    subject: x509.subject,
    issuer: x509.issuer,
    serialNumber: x509.serialNumber,
    notBefore,
    notAfter,
    fingerprint256: x509.fingerprint256,
    publicKey: x509.publicKey,
    matchesKey(key) {
      try {
        return x509.checkPrivateKey(typeof key === 'string' ? createPrivateKey(key) : key)
      } catch {
        return false
      }
    },
    remainingMs(nowMs = Date.now()) {
      return notAfter.getTime() - nowMs
    },
  }
}

/** True when `keyPem` is the private key of `certPem`; false for any unreadable input. */
export function certificateMatchesKey(certPem: string, keyPem: string): boolean {
  try {
    return parseCertificate(certPem).matchesKey(keyPem)
  } catch {
    return false
  }
}
