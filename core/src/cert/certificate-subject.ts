/** The Name attributes ngrokd writes: `O` then `CN`. Empty: the empty Name. */
export interface CertificateSubject {
  commonName?: string
  organization?: string
}
