import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { createPrivateKey, createPublicKey, generateKeyPairSync, verify, X509Certificate } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ecCurveOf, generateKeyAndCsr, parseCsr } from './csr.js'
import { children, pemToDer, readElement } from './der.js'
import { certificateMatchesKey, parseCertificate } from './parse-certificate.js'
import { TestCa } from './test-ca.js'
import { isNgrokdError } from '../errors/index.js'

const hasOpenssl = spawnSync('openssl', ['version']).status === 0

describe('generateKeyAndCsr', () => {
  const { keyPem, csrPem } = generateKeyAndCsr()

  it('makes an ECDSA P-256 key in PKCS#8 PEM', () => {
    assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----\n/)
    const key = createPrivateKey(keyPem)
    assert.equal(key.asymmetricKeyType, 'ec')
    assert.equal(ecCurveOf(key), 'prime256v1')
  })

  it('makes a PKCS#10 request whose signature verifies over the CertificationRequestInfo DER', () => {
    assert.match(csrPem, /^-----BEGIN CERTIFICATE REQUEST-----\n/)
    const der = pemToDer(csrPem, 'CERTIFICATE REQUEST')!
    const [info, algorithm, signature] = children(readElement(der))
    // AlgorithmIdentifier { ecdsa-with-SHA256 } with parameters absent: 30 0a 06 08 2a 86 48 ce 3d 04 03 02
    assert.equal(algorithm!.bytes.toString('hex'), '300a06082a8648ce3d040302')
    assert.equal(signature!.content[0], 0, 'no unused bits')
    const publicKey = createPublicKey(keyPem)
    assert.ok(verify('sha256', info!.bytes, publicKey, signature!.content.subarray(1)))
    // and a different key does not verify it
    const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey
    assert.equal(verify('sha256', info!.bytes, other, signature!.content.subarray(1)), false)
  })

  it('has version 0, an empty subject, our public key and an empty attribute set', () => {
    const der = pemToDer(csrPem, 'CERTIFICATE REQUEST')!
    const [info] = children(readElement(der))
    const [version, subject, spki, attributes] = children(info!)
    assert.equal(version!.bytes.toString('hex'), '020100')
    assert.equal(subject!.bytes.toString('hex'), '3000')
    assert.deepEqual(spki!.bytes, createPublicKey(keyPem).export({ type: 'spki', format: 'der' }))
    assert.equal(attributes!.bytes.toString('hex'), 'a000')
  })

  it('is parsed back by parseCsr, which notices tampering', () => {
    const csr = parseCsr(csrPem)
    assert.equal(csr.subjectIsEmpty, true)
    assert.deepEqual(csr.subjectAttributes, [])
    assert.equal(csr.signatureAlgorithm, '1.2.840.10045.4.3.2')
    assert.equal(ecCurveOf(csr.publicKey), 'prime256v1')
    assert.equal(csr.verify(), true)

    const der = pemToDer(csrPem, 'CERTIFICATE REQUEST')!
    const tampered = Buffer.from(der)
    tampered[tampered.length - 40]! ^= 0x01 // inside the signature's r or s: still well-formed DER
    const pem = `-----BEGIN CERTIFICATE REQUEST-----\n${tampered.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`
    assert.equal(parseCsr(pem).verify(), false)
  })

  it('makes a new key every time', () => {
    assert.notEqual(generateKeyAndCsr().keyPem, keyPem)
  })

  it('rejects what is not a CSR', () => {
    assert.throws(() => parseCsr('hello'), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CERT'))
    assert.throws(
      () => parseCsr('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----'),
      (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CERT'),
    )
  })

  it('is accepted by openssl req -verify', { skip: hasOpenssl ? false : 'openssl is not installed' }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'ngrokd-csr-'))
    try {
      writeFileSync(join(dir, 'csr.pem'), csrPem)
      const out = execFileSync('openssl', ['req', '-in', join(dir, 'csr.pem'), '-noout', '-verify', '-subject'], { encoding: 'utf8', stdio: 'pipe' })
      assert.match(out, /subject=\s*$/m)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

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

describe('TestCa', () => {
  it('issues certificates that verify against the CA and carry client auth', () => {
    const ca = TestCa.create()
    const { csrPem } = generateKeyAndCsr()
    const leaf = new X509Certificate(ca.signCsr(csrPem))
    const root = new X509Certificate(ca.certPem)
    assert.equal(root.ca, true)
    assert.equal(leaf.ca, false)
    assert.equal(leaf.verify(root.publicKey), true)
    assert.equal(leaf.checkIssued(root), true)
    assert.deepEqual(leaf.keyUsage, ['1.3.6.1.5.5.7.3.2'])
    assert.equal(leaf.verify(new X509Certificate(TestCa.create().certPem).publicKey), false)
  })

  it('puts DNS and IP names in server certificates', () => {
    const ca = TestCa.create()
    const { certPem } = ca.issueKeyPair({ usage: 'server', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] })
    const x = new X509Certificate(certPem)
    assert.equal(x.checkHost('localhost'), 'localhost')
    assert.equal(x.checkIP('127.0.0.1'), '127.0.0.1')
    assert.equal(x.checkIP('::1'), '::1')
    assert.equal(x.checkIP('127.0.0.2'), undefined)
  })

  it('refuses a CSR whose signature does not verify', () => {
    const a = generateKeyAndCsr()
    const der = pemToDer(a.csrPem, 'CERTIFICATE REQUEST')!
    der[der.length - 40]! ^= 0xff // inside the signature
    const bad = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`
    assert.throws(() => TestCa.create().signCsr(bad), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CERT'))
  })
})
