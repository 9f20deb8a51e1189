export { generateKeyAndCsr, makeCsr, ecCurveOf, type KeyAndCsr } from './csr.js'
export { parseCsr, CsrError, type ParsedCsr, type CsrCurve } from './parse-csr.js'
export { parseCertificate, certificateMatchesKey, type CertificateInfo } from './parse-certificate.js'
export type { CertificateSubject } from './certificate-subject.js'
