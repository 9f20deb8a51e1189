import assert from 'node:assert/strict'
import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { describe, it } from 'node:test'
import { isNgrokdError } from '@ngrokd/core'
import { SimulatorCa } from './ca.js'
// through the package's public entry: the CSR helpers are core's, re-exported
import { CsrError, makeCsr, parseCsr } from './index.js'

const p256 = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey
const p384 = () => generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey

const csrDer = (pem: string) => Buffer.from(pem.replace(/-----[A-Z ]+-----|\s+/g, ''), 'base64')
const spkiOf = (key: KeyObject) => createPublicKey(key).export({ type: 'spki', format: 'der' })
const isCsrError = (message: RegExp) => (e: unknown) => e instanceof CsrError && isNgrokdError(e, 'NGROKD_ERR_CERT') && message.test(e.message)

describe('SimulatorCa', () => {
  const ca = SimulatorCa.create()

  it('is ngrok\'s shape: a root clients never get, and the intermediate it signed as the anchor clients get', () => {
    const root = new X509Certificate(ca.rootCertPem)
    assert.equal(root.ca, true)
    assert.ok(root.checkIssued(root) && root.verify(root.publicKey), 'the root is self-signed')
    assert.equal(root.subject, 'O=ngrokd cloud simulator\nCN=ngrokd simulator Root CA')
    assert.equal(ca.certificate.ca, true)
    assert.equal(ca.certificate.subject, 'O=ngrokd cloud simulator\nCN=ngrokd simulator Intermediate CA')
    assert.ok(ca.certificate.checkIssued(root) && ca.certificate.verify(root.publicKey), 'the root signed the intermediate')
    assert.equal(ca.certificate.checkIssued(ca.certificate), false, 'the intermediate is not self-signed')
    assert.equal(ca.certPem, ca.certificate.toString())
  })

  it('signs a valid P-256 CSR with an empty subject: same key, clientAuth, requested validity', () => {
    const key = p256()
    const csr = makeCsr(key)
    const issued = ca.signCsr(csr, { commonName: 'k8sop_x', validityMs: 3_600_000 })
    const cert = new X509Certificate(issued.certPem)
    assert.ok(ca.issued(cert))
    assert.equal(cert.ca, false)
    assert.ok(cert.checkPrivateKey(key), 'certificate carries the CSR public key')
    assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.2'])
    assert.equal(cert.subject, 'CN=k8sop_x')
    assert.equal(cert.serialNumber, issued.serial)
    assert.equal(Date.parse(cert.validTo), issued.notAfter.getTime())
    assert.equal(Date.parse(cert.validFrom), issued.notBefore.getTime())
    const lifetime = issued.notAfter.getTime() - Date.now()
    assert.ok(lifetime > 3_590_000 && lifetime <= 3_600_000, `lifetime ${lifetime}`)
    assert.ok(Date.now() - issued.notBefore.getTime() >= 59_000, 'backdated for clock skew')
  })

  it('signs a P-384 CSR with subject O=… (PEM or DER)', () => {
    const key = p384()
    const csr = makeCsr(key, { organization: 'acme' })
    assert.deepEqual(parseCsr(csr).subjectAttributes, [['2.5.4.10', 'acme']])
    assert.equal(parseCsr(csr).curve, 'P-384')
    const cert = new X509Certificate(ca.signCsr(csrDer(csr)).certPem)
    assert.ok(cert.checkPrivateKey(key))
    // default validity: one year
    assert.ok(Date.parse(cert.validTo) - Date.now() > 364 * 24 * 3600_000)
  })

  it('gives every certificate a different serial', () => {
    const csr = makeCsr(p256())
    assert.notEqual(ca.signCsr(csr).serial, ca.signCsr(csr).serial)
  })

  it('refuses a CSR whose signature does not verify', () => {
    const der = csrDer(makeCsr(p256()))
    der[der.length - 3]! ^= 0x01 // the last bytes are the signature
    assert.throws(() => ca.signCsr(der), isCsrError(/does not verify/))
  })

  it('refuses a CSR whose signed content was changed', () => {
    const a = csrDer(makeCsr(p256(), { organization: 'aaaa' }))
    const b = Buffer.from(a)
    b.write('bbbb', b.indexOf(Buffer.from('aaaa')), 'latin1')
    assert.throws(() => ca.signCsr(b), isCsrError(/does not verify/))
    assert.doesNotThrow(() => ca.signCsr(a))
  })

  it('refuses a CSR that carries a key other than the one that signed it', () => {
    const signer = p256()
    const der = csrDer(makeCsr(signer))
    const other = spkiOf(p256())
    other.copy(der, der.indexOf(spkiOf(signer))) // same length: the structure stays valid
    assert.throws(() => ca.signCsr(der), isCsrError(/does not verify/))
  })

  it('refuses garbage and keys on other curves', () => {
    assert.throws(() => ca.signCsr('hello'), isCsrError(/not a PEM/))
    assert.throws(() => ca.signCsr(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00])), isCsrError(/./))
    const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey
    assert.throws(() => ca.signCsr(makeCsr(k1)), isCsrError(/P-256 or P-384/))
  })

  it('issues server certificates with the requested names', () => {
    const s = ca.issueServerCert(['localhost', '127.0.0.1', '::1'], { validityMs: 7_200_000 })
    const cert = new X509Certificate(s.certPem)
    assert.ok(cert.checkIssued(ca.certificate) && cert.verify(ca.certificate.publicKey), 'the intermediate signed it')
    assert.equal(ca.issued(cert), false, 'not a client certificate of the root')
    assert.ok(s.certPem.endsWith(ca.certPem), 'sent with the intermediate as its chain')
    assert.ok(cert.checkPrivateKey(createPrivateKey(s.keyPem)))
    assert.equal(cert.subject, 'CN=localhost')
    assert.equal(cert.checkHost('localhost'), 'localhost')
    assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1')
    assert.equal(cert.checkIP('::1'), '::1')
    assert.equal(cert.checkHost('example.com'), undefined)
    assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1'])
    const lifetime = s.notAfter.getTime() - Date.now()
    assert.ok(lifetime > 7_190_000 && lifetime <= 7_200_000, `lifetime ${lifetime}`)
  })

  it('issues client certificates without a CSR, and does not vouch for those of another CA', () => {
    const other = SimulatorCa.create({ commonName: 'other' })
    const issued = other.issueClientCert({ commonName: 'k8sop_y' })
    const cert = new X509Certificate(issued.certPem)
    assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.2'])
    assert.equal(cert.subject, 'CN=k8sop_y')
    assert.ok(cert.checkPrivateKey(createPrivateKey(issued.keyPem)))
    assert.equal(ca.issued(cert), false)
    assert.equal(other.issued(cert), true)
  })
})

