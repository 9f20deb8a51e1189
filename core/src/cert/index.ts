export { generateKeyAndCsr, parseCsr, ecCurveOf, type KeyAndCsr, type ParsedCsr } from './csr.js'
export { parseCertificate, certificateMatchesKey, type CertificateInfo } from './parse-certificate.js'
export { TestCa, type IssueOptions, type CertificateSubject } from './test-ca.js'
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
