export { generateKeyAndCsr, makeCsr, ecCurveOf, type KeyAndCsr } from './csr.js'
export { parseCsr, CsrError, type ParsedCsr, type CsrCurve } from './parse-csr.js'
export { parseCertificate, certificateMatchesKey, type CertificateInfo } from './parse-certificate.js'
export { TestCa, type IssueOptions, type TestCaOptions } from './test-ca.js'
export type { CertificateSubject } from './der.js'
export {
  Registration,
  DEFAULT_RENEW_BEFORE_MS,
  MACHINE_ID_METADATA_KEY,
  REGISTRATION_FILES,
  machineIdOf,
  type RegistrationOptions,
  type RegistrationInfo,
  type ClientCredentials,
  type OperatorApi,
} from './registration.js'
