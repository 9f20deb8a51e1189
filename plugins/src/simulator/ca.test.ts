import assert from 'node:assert/strict'
import { X509Certificate, generateKeyPairSync, sign, type KeyObject } from 'node:crypto'
import { describe, it } from 'node:test'
import { SimulatorCa } from './ca.js'
import { CsrError, parseCsr } from './csr.js'
import { makeCsr } from './make-csr.js'
import forge from 'node-forge'
import { OID, derOf, encodeName, fromPem, spkiOf, toBinary, toPem } from './x509.js'

const p256 = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey
const p384 = () => generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey

/** Flips one bit at a byte offset counted from the end of the DER. */
function tamper(pem: string, fromEnd: number): string {
  const der = Buffer.from(fromPem('CERTIFICATE REQUEST', pem)!)
  der[der.length - fromEnd]! ^= 0x01
  return toPem('CERTIFICATE REQUEST', der)
}

describe('SimulatorCa', () => {
  const ca = SimulatorCa.create()

  it('is a self-signed CA certificate', () => {
    assert.equal(ca.certificate.ca, true)
    assert.ok(ca.certificate.checkIssued(ca.certificate))
    assert.ok(ca.certificate.verify(ca.certificate.publicKey))
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
  })

  it('signs a P-384 CSR with subject O=…', () => {
    const key = p384()
    const csr = makeCsr(key, { organization: 'acme' })
    assert.deepEqual(parseCsr(csr).subject, { '2.5.4.10': 'acme' })
    assert.equal(parseCsr(csr).curve, 'P-384')
    const cert = new X509Certificate(ca.signCsr(csr).certPem)
    assert.ok(cert.checkPrivateKey(key))
    // default validity: one year
    assert.ok(Date.parse(cert.validTo) - Date.now() > 364 * 24 * 3600_000)
  })

  it('gives every certificate a different serial', () => {
    const csr = makeCsr(p256())
    assert.notEqual(ca.signCsr(csr).serial, ca.signCsr(csr).serial)
  })

  it('refuses a CSR whose signature does not verify', () => {
    const csr = makeCsr(p256())
    // the last bytes are the signature; a flipped bit there must be caught
    assert.throws(() => ca.signCsr(tamper(csr, 3)), (e: unknown) => e instanceof CsrError && /does not verify/.test(e.message))
  })

  it('refuses a CSR whose signed content was changed', () => {
    const key = p256()
    const a = fromPem('CERTIFICATE REQUEST', makeCsr(key, { organization: 'aaaa' }))!
    const b = Buffer.from(a)
    const at = b.indexOf(Buffer.from('aaaa'))
    b.write('bbbb', at, 'latin1')
    assert.throws(() => parseCsr(b), /does not verify/)
    assert.doesNotThrow(() => parseCsr(a))
  })

  it('refuses a CSR signed by a key other than the one it certifies', () => {
    assert.throws(() => parseCsr(buildCsr(p256(), p256(), OID.ecdsaWithSha256, 'sha256')), /does not verify/)
    // the same construction with matching keys is accepted, so the refusal is about the key
    const key = p256()
    assert.doesNotThrow(() => parseCsr(buildCsr(key, key, OID.ecdsaWithSha256, 'sha256')))
  })

  it('refuses garbage, non-ECDSA signatures and other curves', () => {
    assert.throws(() => parseCsr('hello'), /not a PEM/)
    assert.throws(() => parseCsr(toPem('CERTIFICATE REQUEST', Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]))), CsrError)
    const ed = generateKeyPairSync('ed25519').privateKey
    assert.throws(() => parseCsr(buildCsr(ed, ed, '1.3.101.112', null)), /not supported/)
    const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey
    assert.throws(() => parseCsr(buildCsr(k1, k1, OID.ecdsaWithSha256, 'sha256')), /P-256 or P-384/)
  })

  it('issues server certificates with the requested names', () => {
    const s = ca.issueServerCert(['localhost', '127.0.0.1', '::1'])
    const cert = new X509Certificate(s.certPem)
    assert.ok(ca.issued(cert))
    assert.equal(cert.checkHost('localhost'), 'localhost')
    assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1')
    assert.equal(cert.checkIP('::1'), '::1')
    assert.equal(cert.checkHost('example.com'), undefined)
    assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1'])
  })

  it('does not vouch for certificates of another CA', () => {
    const other = SimulatorCa.create()
    const cert = new X509Certificate(other.issueClientCert().certPem)
    assert.equal(ca.issued(cert), false)
    assert.equal(other.issued(cert), true)
  })
})

/** A CSR whose info names `subjectKey` but is signed by `signingKey` with the given algorithm. */
function buildCsr(subjectKey: KeyObject, signingKey: KeyObject, algOid: string, hash: string | null): Buffer {
  const { asn1 } = forge
  const U = asn1.Class.UNIVERSAL
  const T = asn1.Type
  const info = derOf(
    asn1.create(U, T.SEQUENCE, true, [
      asn1.create(U, T.INTEGER, false, '\x00'),
      encodeName({}),
      asn1.fromDer(toBinary(spkiOf(subjectKey))),
      asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, []),
    ]),
  )
  const sig = sign(hash, info, signingKey)
  return derOf(
    asn1.create(U, T.SEQUENCE, true, [
      asn1.fromDer(toBinary(info)),
      asn1.create(U, T.SEQUENCE, true, [asn1.create(U, T.OID, false, asn1.oidToDer(algOid).getBytes())]),
      asn1.create(U, T.BITSTRING, false, '\x00' + toBinary(sig)),
    ]),
  )
}
