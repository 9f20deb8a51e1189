import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto'
import { makeCsr } from './csr.js'
import { bitString, derToPem, integer, name, oid, pemToDer, raw, seq, tagged, toDer } from './der.js'
import { CsrError, parseCsr } from './parse-csr.js'
import { isNgrokdError } from '../errors/index.js'

const p256 = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey
const p384 = () => generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey
const ECDSA_SHA256 = '1.2.840.10045.4.3.2'

/** A CSR whose info carries `subjectKey` but is signed by `signingKey`: the cases makeCsr cannot make. */
function buildCsr(o: { subjectKey: KeyObject; signingKey?: KeyObject; algorithm?: string; hash?: string | null; version?: number; unusedBits?: number }): Buffer {
  const spki = createPublicKey(o.subjectKey).export({ type: 'spki', format: 'der' })
  const info = toDer(seq(integer(o.version ?? 0), name({ organization: 'aaaa' }), raw(spki), tagged(0, [])))
  const signature = sign(o.hash === undefined ? 'sha256' : o.hash, info, o.signingKey ?? o.subjectKey)
  return toDer(seq(raw(info), seq(oid(o.algorithm ?? ECDSA_SHA256)), bitString(signature, o.unusedBits ?? 0)))
}

/** Asserts a CsrError (code NGROKD_ERR_CERT) whose message matches. */
function refused(message: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof CsrError, `not a CsrError: ${String(e)}`)
    assert.ok(isNgrokdError(e, 'NGROKD_ERR_CERT'))
    assert.equal(e.name, 'CsrError')
    assert.match(e.message, message)
    return true
  }
}

describe('parseCsr', () => {
  it('accepts a P-256 request as PEM, as DER bytes and under the old "NEW CERTIFICATE REQUEST" label', () => {
    const key = p256()
    const pem = makeCsr(key)
    const der = pemToDer(pem, 'CERTIFICATE REQUEST')!
    const spki = createPublicKey(key).export({ type: 'spki', format: 'der' })
    for (const input of [pem, der, new Uint8Array(der), derToPem(der, 'NEW CERTIFICATE REQUEST')]) {
      const csr = parseCsr(input)
      assert.equal(csr.curve, 'P-256')
      assert.deepEqual(csr.spkiDer, spki)
      assert.equal(csr.publicKey.asymmetricKeyType, 'ec')
    }
  })

  it('accepts a P-384 request with subject O=…', () => {
    const csr = parseCsr(makeCsr(p384(), { organization: 'acme' }))
    assert.equal(csr.curve, 'P-384')
    assert.equal(csr.signatureAlgorithm, '1.2.840.10045.4.3.4')
    assert.deepEqual(csr.subjectAttributes, [['2.5.4.10', 'acme']])
  })

  it('refuses a request whose signature was tampered with, with a hint', () => {
    const der = pemToDer(makeCsr(p256()), 'CERTIFICATE REQUEST')!
    der[der.length - 3]! ^= 0x01 // the last bytes are the signature's s
    assert.throws(() => parseCsr(der), (e: unknown) => refused(/^csr signature does not verify$/)(e) && /private key/.test((e as CsrError).hint ?? ''))
  })

  it('refuses a request whose signed content was changed', () => {
    const good = buildCsr({ subjectKey: p256() })
    assert.equal(parseCsr(good).subjectAttributes[0]![1], 'aaaa')
    const changed = Buffer.from(good)
    changed.write('bbbb', changed.indexOf(Buffer.from('aaaa')), 'latin1')
    assert.throws(() => parseCsr(changed), refused(/does not verify/))
  })

  it('refuses a request signed by a key other than the one it carries', () => {
    assert.throws(() => parseCsr(buildCsr({ subjectKey: p256(), signingKey: p256() })), refused(/does not verify/))
  })

  it('refuses signature algorithms other than ECDSA, and keys other than EC P-256/P-384', () => {
    const ed = generateKeyPairSync('ed25519').privateKey
    assert.throws(() => parseCsr(buildCsr({ subjectKey: ed, algorithm: '1.3.101.112', hash: null })), refused(/1\.3\.101\.112 is not supported: use ECDSA/))
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey
    assert.throws(() => parseCsr(buildCsr({ subjectKey: rsa, algorithm: '1.2.840.113549.1.1.11' })), refused(/not supported/))
    // an RSA key under an ECDSA algorithm identifier: the key is what is refused
    assert.throws(() => parseCsr(buildCsr({ subjectKey: rsa })), refused(/P-256 or P-384/))
    for (const namedCurve of ['secp256k1', 'secp521r1']) {
      const key = generateKeyPairSync('ec', { namedCurve }).privateKey
      assert.throws(() => parseCsr(makeCsr(key)), refused(/^csr key must be ECDSA P-256 or P-384$/), namedCurve)
    }
  })

  it('refuses what is not a well-formed request', () => {
    assert.throws(() => parseCsr('hello'), refused(/not a PEM "CERTIFICATE REQUEST" block/))
    assert.throws(() => parseCsr(new Uint8Array(0)), refused(/not a PEM/))
    assert.throws(() => parseCsr('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----'), refused(/not one DER SEQUENCE/))
    assert.throws(() => parseCsr(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00])), refused(/info, algorithm and signature/))
    assert.throws(() => parseCsr(Buffer.from([0x30, 0x05, 0x02, 0x01])), refused(/not valid DER/))
    const good = buildCsr({ subjectKey: p256() })
    assert.throws(() => parseCsr(Buffer.concat([good, Buffer.from([0])])), refused(/not one DER SEQUENCE/))
    assert.throws(() => parseCsr(good.subarray(0, good.length - 1)), refused(/not valid DER/))
    assert.throws(() => parseCsr(buildCsr({ subjectKey: p256(), version: 1 })), refused(/version/))
    assert.throws(() => parseCsr(buildCsr({ subjectKey: p256(), unusedBits: 1 })), refused(/signature is malformed/))
  })
})
