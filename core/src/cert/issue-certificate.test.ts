import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { X509Certificate, createHash, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { children, name, pemToDer, readElement, readOid, toDer, type DerElement } from './der.js'
import { issueCertificate, subjectNameDer, type CertificateSpec } from './issue-certificate.js'
import { isNgrokdError } from '../errors/index.js'

const hasOpenssl = spawnSync('openssl', ['version']).status === 0
const ecKey = (namedCurve = 'prime256v1') => generateKeyPairSync('ec', { namedCurve }).privateKey
const HOUR = 3_600_000

/** Extensions of a PEM certificate by OID: criticality and the extnValue's inner DER. */
function extensionsOf(pem: string): Map<string, { critical: boolean; value: Buffer }> {
  const [tbs] = children(readElement(pemToDer(pem, 'CERTIFICATE')!))
  const wrapper = children(tbs!).find((f) => f.tag === 0xa3)! // extensions [3] EXPLICIT
  const out = new Map<string, { critical: boolean; value: Buffer }>()
  for (const ext of children(children(wrapper)[0]!)) {
    const parts = children(ext)
    const critical = parts.length === 3 && parts[1]!.content[0] === 0xff
    out.set(readOid(parts[0]!), { critical, value: Buffer.from(parts[parts.length - 1]!.content) })
  }
  return out
}

function skiOf(key: KeyObject): Buffer {
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' })
  return createHash('sha1').update(children(readElement(spki))[1]!.content.subarray(1)).digest()
}

function makeCa(signingKey = ecKey()): { pem: string; key: KeyObject } {
  const subject = { organization: 'o', commonName: 'ca' }
  const now = Date.now()
  const pem = issueCertificate({
    publicKey: signingKey,
    subject,
    issuer: subject,
    signingKey,
    notBefore: new Date(now - HOUR),
    notAfter: new Date(now + HOUR),
    ca: true,
    keyUsage: ['keyCertSign', 'cRLSign'],
  })
  return { pem, key: signingKey }
}

function leaf(ca: { pem: string; key: KeyObject }, extra: Partial<CertificateSpec> = {}): { pem: string; key: KeyObject } {
  const key = ecKey()
  const now = Date.now()
  const pem = issueCertificate({
    publicKey: createPublicKey(key),
    subject: { commonName: 'leaf' },
    issuer: subjectNameDer(ca.pem),
    signingKey: ca.key,
    notBefore: new Date(now - HOUR),
    notAfter: new Date(now + HOUR),
    keyUsage: ['digitalSignature'],
    ...extra,
  })
  return { pem, key }
}

describe('issueCertificate', () => {
  const ca = makeCa()

  it('makes a self-signed CA: cA true and critical, keyCertSign|cRLSign, a key id and no authority key id', () => {
    const x = new X509Certificate(ca.pem)
    assert.equal(x.ca, true)
    assert.ok(x.verify(x.publicKey))
    assert.ok(x.checkIssued(x))
    const ext = extensionsOf(ca.pem)
    assert.deepEqual(ext.get('2.5.29.19'), { critical: true, value: Buffer.from('30030101ff', 'hex') })
    assert.deepEqual(ext.get('2.5.29.15'), { critical: true, value: Buffer.from('03020106', 'hex') })
    assert.deepEqual(ext.get('2.5.29.14')!.value, Buffer.concat([Buffer.from([0x04, 20]), skiOf(ca.key)]))
    assert.equal(ext.has('2.5.29.35'), false)
  })

  it('makes a leaf: cA false, digitalSignature, EKU, and authorityKeyIdentifier = the CA key id', () => {
    const l = leaf(ca, { extendedKeyUsage: ['serverAuth', 'clientAuth'] })
    const x = new X509Certificate(l.pem)
    assert.equal(x.ca, false)
    assert.ok(x.checkIssued(new X509Certificate(ca.pem)))
    assert.ok(x.verify(new X509Certificate(ca.pem).publicKey))
    assert.ok(x.checkPrivateKey(l.key))
    assert.deepEqual(x.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'])
    const ext = extensionsOf(l.pem)
    assert.deepEqual(ext.get('2.5.29.19'), { critical: true, value: Buffer.from('3000', 'hex') })
    assert.deepEqual(ext.get('2.5.29.15'), { critical: true, value: Buffer.from('03020780', 'hex') })
    assert.equal(ext.get('2.5.29.37')!.critical, false)
    // AuthorityKeyIdentifier ::= SEQUENCE { [0] keyIdentifier }: 30 16 80 14 <20 bytes>
    assert.deepEqual(ext.get('2.5.29.35')!.value, Buffer.concat([Buffer.from('30168014', 'hex'), skiOf(ca.key)]))
    assert.deepEqual(ext.get('2.5.29.14')!.value.subarray(2), skiOf(l.key))
  })

  it('writes DNS and IPv4/IPv6 names, critical only when the subject is empty (RFC 5280 §4.2.1.6)', () => {
    const ips = ['127.0.0.1', '::1', '2001:db8::8:1', '::ffff:192.0.2.1', '1:2:3:4:5:6:7:8']
    const named = leaf(ca, { dnsNames: ['localhost', 'api.prod'], ipAddresses: ips })
    const x = new X509Certificate(named.pem)
    assert.equal(x.checkHost('api.prod'), 'api.prod')
    assert.equal(x.checkHost('example.com'), undefined)
    for (const ip of ips) assert.equal(x.checkIP(ip), ip, ip)
    assert.equal(x.checkIP('127.0.0.2'), undefined)
    assert.equal(x.checkIP('2001:db8::1:8'), undefined)
    assert.equal(extensionsOf(named.pem).get('2.5.29.17')!.critical, false)
    const anonymous = leaf(ca, { subject: {}, dnsNames: ['localhost'] })
    assert.equal(extensionsOf(anonymous.pem).get('2.5.29.17')!.critical, true)
    const [tbs] = children(readElement(pemToDer(anonymous.pem, 'CERTIFICATE')!))
    assert.equal(children(tbs!)[5]!.bytes.toString('hex'), '3000', 'the empty subject Name')
  })

  it('copies the issuer Name DER verbatim and keeps a given serial', () => {
    const l = leaf(ca, { serial: Buffer.from([0x00, 0x9a, 0xbc]) })
    const [tbs] = children(readElement(pemToDer(l.pem, 'CERTIFICATE')!))
    const fields = children(tbs!) as DerElement[]
    assert.deepEqual(fields[3]!.bytes, subjectNameDer(ca.pem))
    assert.deepEqual(subjectNameDer(ca.pem), toDer(name({ organization: 'o', commonName: 'ca' })))
    assert.equal(fields[1]!.bytes.toString('hex'), '0203009abc') // leading 00: the value stays positive
    assert.equal(new X509Certificate(l.pem).serialNumber.replace(/^0+/, '').toUpperCase(), '9ABC')
  })

  it('gives random serials that are positive and differ', () => {
    const serial = (pem: string) => children(children(readElement(pemToDer(pem, 'CERTIFICATE')!))[0]!)[1]!.content
    const a = serial(leaf(ca).pem)
    const b = serial(leaf(ca).pem)
    assert.notDeepEqual(a, b)
    for (const s of [a, b]) assert.equal(s[0]! & 0x80, 0)
  })

  it('signs with ecdsa-with-SHA384 when the issuer key is P-384', () => {
    const ca384 = makeCa(ecKey('secp384r1'))
    const l = leaf(ca384)
    const [, algorithm] = children(readElement(pemToDer(l.pem, 'CERTIFICATE')!))
    assert.equal(readOid(children(algorithm!)[0]!), '1.2.840.10045.4.3.3')
    assert.ok(new X509Certificate(l.pem).verify(new X509Certificate(ca384.pem).publicKey))
  })

  it('writes validity to the second, in GeneralizedTime after 2049', () => {
    const notBefore = new Date('2049-06-01T00:00:00.750Z')
    const notAfter = new Date('2051-01-02T03:04:05.999Z')
    const x = new X509Certificate(leaf(ca, { notBefore, notAfter }).pem)
    assert.equal(new Date(x.validFrom).toISOString(), '2049-06-01T00:00:00.000Z')
    assert.equal(new Date(x.validTo).toISOString(), '2051-01-02T03:04:05.000Z')
  })

  it('refuses bad input with NGROKD_ERR_CERT', () => {
    const coded = (re: RegExp) => (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CERT') && re.test(e.message)
    const now = new Date()
    assert.throws(() => leaf(ca, { notBefore: now, notAfter: now }), coded(/notAfter must be later/))
    assert.throws(() => leaf(ca, { ipAddresses: ['localhost'] }), coded(/localhost is not an IP address/))
    assert.throws(() => leaf(ca, { ipAddresses: ['fe80::1%eth0'] }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CERT') && /zone id/.test(e.hint ?? ''))
    assert.throws(() => leaf(ca, { dnsNames: ['bücher.example'] }), coded(/not an ASCII DNS name/))
    assert.throws(() => leaf({ pem: ca.pem, key: generateKeyPairSync('ed25519').privateKey }), coded(/EC private key/))
    assert.throws(() => subjectNameDer('not a certificate'), coded(/not a DER X.509 certificate/))
  })

  it('makes chains openssl verifies, per purpose', { skip: hasOpenssl ? false : 'openssl is not installed' }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'ngrokd-x509-'))
    try {
      writeFileSync(join(dir, 'ca.pem'), ca.pem)
      const verify = (pem: string, purpose: string) => {
        writeFileSync(join(dir, 'leaf.pem'), pem)
        const r = spawnSync('openssl', ['verify', '-CAfile', join(dir, 'ca.pem'), '-purpose', purpose, join(dir, 'leaf.pem')], { encoding: 'utf8' })
        return r.status === 0 && /: OK$/m.test(r.stdout)
      }
      const server = leaf(ca, { extendedKeyUsage: ['serverAuth'], dnsNames: ['localhost'] }).pem
      const client = leaf(ca, { extendedKeyUsage: ['clientAuth'] }).pem
      assert.equal(verify(server, 'sslserver'), true)
      assert.equal(verify(server, 'sslclient'), false)
      assert.equal(verify(client, 'sslclient'), true)
      assert.equal(verify(client, 'sslserver'), false)
      assert.equal(verify(leaf(makeCa(), { extendedKeyUsage: ['clientAuth'] }).pem, 'sslclient'), false, 'another CA')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
