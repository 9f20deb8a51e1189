import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyAndCsr } from './csr.js'
import { certificateMatchesKey, parseCertificate } from './parse-certificate.js'
import { TestCa } from '../testing/test-ca.js'
import { isNgrokdError } from '../errors/index.js'

describe('parseCertificate', () => {
  const ca = TestCa.create()
  const { keyPem, csrPem } = generateKeyAndCsr()
  const notBefore = new Date('2025-03-14T09:26:53Z')
  const notAfter = new Date('2026-03-14T09:26:53Z')
  const certPem = ca.signCsr(csrPem, { notBefore, notAfter, subject: { commonName: 'k8sop_test' } })

  it('reads validity, subject and fingerprint', () => {
    const cert = parseCertificate(certPem)
    assert.equal(cert.notBefore.toISOString(), notBefore.toISOString())
    assert.equal(cert.notAfter.toISOString(), notAfter.toISOString())
    assert.equal(cert.subject, 'CN=k8sop_test')
    assert.equal(cert.issuer, 'O=ngrokd\nCN=ngrokd test CA')
    assert.match(cert.fingerprint256, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/)
    assert.equal(cert.remainingMs(notAfter.getTime() - 1000), 1000)
  })

  it('tells whether a key belongs to the certificate', () => {
    const cert = parseCertificate(certPem)
    assert.equal(cert.matchesKey(keyPem), true)
    assert.equal(cert.matchesKey(generateKeyAndCsr().keyPem), false)
    assert.equal(cert.matchesKey('not a key'), false)
    assert.equal(certificateMatchesKey(certPem, keyPem), true)
    assert.equal(certificateMatchesKey('junk', keyPem), false)
  })

  it('rejects what is not a certificate with NGROKD_ERR_CERT', () => {
    assert.throws(() => parseCertificate(csrPem), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CERT'))
  })
})
