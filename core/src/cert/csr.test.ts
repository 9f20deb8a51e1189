import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createPrivateKey, createPublicKey, generateKeyPairSync, verify } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ecCurveOf, generateKeyAndCsr, makeCsr } from './csr.js'
import { children, derToPem, pemToDer, readElement, readOid } from './der.js'
import { parseCsr } from './parse-csr.js'
import { isNgrokdError } from '../errors/index.js'

const hasOpenssl = spawnSync('openssl', ['version']).status === 0

/**
 * `openssl req -verify -subject` on a CSR PEM: the subject line. OpenSSL 3.0 exits 0 even on
 * "verify failure", so the verdict on stderr is checked here.
 */
function opensslVerify(csrPem: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'ngrokd-csr-'))
  try {
    writeFileSync(join(dir, 'csr.pem'), csrPem)
    const r = spawnSync('openssl', ['req', '-in', join(dir, 'csr.pem'), '-noout', '-verify', '-subject'], { encoding: 'utf8' })
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stderr + r.stdout, /verify OK/, r.stderr)
    return r.stdout
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

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
    // AlgorithmIdentifier { ecdsa-with-SHA512 } with parameters absent (RFC 5758 §3.2), as ngrok's operator signs:
    // 30 0a 06 08 2a 86 48 ce 3d 04 03 04
    assert.equal(algorithm!.bytes.toString('hex'), '300a06082a8648ce3d040304')
    assert.equal(signature!.content[0], 0, 'no unused bits')
    const publicKey = createPublicKey(keyPem)
    assert.ok(verify('sha512', info!.bytes, publicKey, signature!.content.subarray(1)))
    // and a different key does not verify it
    const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey
    assert.equal(verify('sha512', info!.bytes, other, signature!.content.subarray(1)), false)
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

  it('is accepted by parseCsr as P-256 with an empty subject', () => {
    const csr = parseCsr(csrPem)
    assert.equal(csr.curve, 'P-256')
    assert.equal(csr.subjectIsEmpty, true)
    assert.deepEqual(csr.subjectAttributes, [])
    assert.equal(csr.signatureAlgorithm, '1.2.840.10045.4.3.4')
    assert.deepEqual(csr.spkiDer, createPublicKey(keyPem).export({ type: 'spki', format: 'der' }))
  })

  it('makes a new key every time', () => {
    assert.notEqual(generateKeyAndCsr().keyPem, keyPem)
  })

  it('is accepted by openssl req -verify, which notices a flipped signature bit', { skip: hasOpenssl ? false : 'openssl is not installed' }, () => {
    assert.match(opensslVerify(csrPem), /subject=\s*$/m)
    const der = pemToDer(csrPem, 'CERTIFICATE REQUEST')!
    der[der.length - 10]! ^= 0x01 // inside the signature's s
    assert.throws(() => opensslVerify(derToPem(der, 'CERTIFICATE REQUEST')), /verify failure/)
  })
})

describe('makeCsr', () => {
  it('signs a P-384 key with ecdsa-with-SHA512 too and carries the subject O=…', () => {
    const key = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey
    const csrPem = makeCsr(key, { organization: 'acme' })
    const [, algorithm] = children(readElement(pemToDer(csrPem, 'CERTIFICATE REQUEST')!))
    assert.equal(readOid(children(algorithm!)[0]!), '1.2.840.10045.4.3.4')
    const csr = parseCsr(csrPem)
    assert.equal(csr.curve, 'P-384')
    assert.deepEqual(csr.subjectAttributes, [['2.5.4.10', 'acme']])
    assert.equal(csr.subjectIsEmpty, false)
    assert.deepEqual(csr.spkiDer, createPublicKey(key).export({ type: 'spki', format: 'der' }))
  })

  it('takes a PEM private key and writes O before CN', () => {
    const { keyPem } = generateKeyAndCsr()
    const csr = parseCsr(makeCsr(keyPem, { commonName: 'k8sop_1', organization: 'acme' }))
    assert.deepEqual(csr.subjectAttributes, [['2.5.4.10', 'acme'], ['2.5.4.3', 'k8sop_1']])
  })

  it('refuses keys that are not EC private keys', () => {
    const ed = generateKeyPairSync('ed25519').privateKey
    assert.throws(() => makeCsr(ed), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CERT') && /EC private key/.test(e.message))
    const pub = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey
    assert.throws(() => makeCsr(pub), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CERT'))
  })

  it('makes P-384 requests that openssl accepts', { skip: hasOpenssl ? false : 'openssl is not installed' }, () => {
    const key = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey
    assert.match(opensslVerify(makeCsr(key, { organization: 'acme' })), /subject=\s*O\s*=\s*acme\s*$/m)
  })
})
