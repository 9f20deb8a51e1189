import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { connect, createServer, type TLSSocket } from 'node:tls'
import { generateKeyAndCsr, makeCsr } from '../cert/csr.js'
import { pemToDer } from '../cert/der.js'
import { CsrError } from '../cert/parse-csr.js'
import { TestCa } from './test-ca.js'
import { isNgrokdError } from '../errors/index.js'

describe('TestCa', () => {
  const ca = TestCa.create()

  it('is a self-signed CA certificate with the given names and lifetime', () => {
    assert.equal(ca.certificate.ca, true)
    assert.ok(ca.issued(ca.certificate))
    assert.equal(ca.certificate.subject, 'O=ngrokd\nCN=ngrokd test CA')
    const notAfter = new Date('2040-01-01T00:00:00Z')
    const named = TestCa.create({ organization: 'sim', commonName: 'root', notAfter })
    assert.equal(named.certificate.subject, 'O=sim\nCN=root')
    assert.equal(new Date(named.certificate.validTo).getTime(), notAfter.getTime())
  })

  it('signs a CSR: the CSR key, clientAuth, the CSR subject unless told otherwise, verifiable by the CA', () => {
    const key = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey
    const csr = makeCsr(key, { organization: 'acme' })
    const leaf = new X509Certificate(ca.signCsr(csr))
    assert.equal(leaf.ca, false)
    assert.ok(leaf.checkPrivateKey(key))
    assert.ok(ca.issued(leaf))
    assert.deepEqual(leaf.keyUsage, ['1.3.6.1.5.5.7.3.2'])
    assert.equal(leaf.subject, 'O=acme')
    assert.equal(new X509Certificate(ca.signCsr(pemToDer(csr, 'CERTIFICATE REQUEST')!, { subject: { commonName: 'k8sop_1' } })).subject, 'CN=k8sop_1')
  })

  it('issues for the requested validity, to the second', () => {
    const notBefore = new Date('2025-03-14T09:26:53Z')
    const notAfter = new Date('2025-03-14T10:26:53.900Z')
    const leaf = new X509Certificate(ca.signCsr(generateKeyAndCsr().csrPem, { notBefore, notAfter }))
    assert.equal(new Date(leaf.validFrom).getTime(), notBefore.getTime())
    assert.equal(new Date(leaf.validTo).getTime(), notAfter.getTime() - 900)
    const fresh = new X509Certificate(ca.issueKeyPair().certPem) // defaults: from a minute ago, for 365 days
    const lifetime = new Date(fresh.validTo).getTime() - new Date(fresh.validFrom).getTime()
    assert.equal(lifetime, 365 * 86_400_000)
  })

  it('refuses CSRs that parseCsr refuses, with CsrError', () => {
    const der = pemToDer(generateKeyAndCsr().csrPem, 'CERTIFICATE REQUEST')!
    der[der.length - 40]! ^= 0xff // inside the signature
    assert.throws(() => ca.signCsr(der), (e: unknown) => e instanceof CsrError && isNgrokdError(e, 'NGROKD_ERR_CERT') && /does not verify/.test(e.message))
    const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey
    assert.throws(() => ca.signCsr(makeCsr(k1)), (e: unknown) => e instanceof CsrError && /P-256 or P-384/.test(e.message))
  })

  it('puts DNS and IP names in server certificates', () => {
    const { certPem, keyPem } = ca.issueKeyPair({ usage: 'server', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] })
    const x = new X509Certificate(certPem)
    assert.ok(x.checkPrivateKey(createPrivateKey(keyPem)))
    assert.equal(x.checkHost('localhost'), 'localhost')
    assert.equal(x.checkIP('127.0.0.1'), '127.0.0.1')
    assert.equal(x.checkIP('::1'), '::1')
    assert.equal(x.checkIP('127.0.0.2'), undefined)
    assert.deepEqual(x.keyUsage, ['1.3.6.1.5.5.7.3.1'])
    assert.deepEqual(new X509Certificate(ca.issueKeyPair({ usage: 'both' }).certPem).keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'])
  })

  it('does not vouch for certificates of another CA, or for garbage', () => {
    const other = TestCa.create()
    const foreign = other.issueKeyPair().certPem
    assert.equal(ca.issued(foreign), false)
    assert.equal(other.issued(foreign), true)
    assert.equal(ca.issued('not a certificate'), false)
  })

  it('is restored from its PEM pair, and refuses a key that is not the certificate’s', () => {
    const restored = TestCa.from(ca.certPem, ca.keyPem)
    const leaf = restored.issueKeyPair().certPem
    assert.equal(ca.issued(leaf), true)
    assert.throws(() => TestCa.from(ca.certPem, TestCa.create().keyPem), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CERT') && /not the key/.test(e.message))
  })

  it('issues certificates that TLS accepts for their purpose only (loopback handshake)', async () => {
    const server = ca.issueKeyPair({ usage: 'server', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] })
    const tls = createServer({ key: server.keyPem, cert: server.certPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: false })
    tls.listen(0, '127.0.0.1')
    await once(tls, 'listening')
    const { port } = tls.address() as AddressInfo
    /** One handshake with `client` as the client certificate: what each side concluded. */
    const handshake = async (client: { certPem: string; keyPem: string }) => {
      const accepted = once(tls, 'secureConnection') as Promise<[TLSSocket]>
      const socket = connect({ host: '127.0.0.1', port, ca: ca.certPem, cert: client.certPem, key: client.keyPem, rejectUnauthorized: false })
      await once(socket, 'secureConnect')
      const [peer] = await accepted
      const result = {
        clientTrustsServer: socket.authorized,
        serverTrustsClient: peer.authorized,
        serverError: peer.authorizationError === null ? undefined : String(peer.authorizationError),
        peerSubject: peer.getPeerCertificate().subject?.CN,
      }
      socket.destroy()
      peer.destroy()
      return result
    }
    try {
      const { keyPem, csrPem } = generateKeyAndCsr()
      const client = { keyPem, certPem: ca.signCsr(csrPem, { subject: { commonName: 'k8sop_tls' } }) }
      assert.deepEqual(await handshake(client), { clientTrustsServer: true, serverTrustsClient: true, serverError: undefined, peerSubject: 'k8sop_tls' })
      // a serverAuth-only certificate is not a client certificate
      const wrongPurpose = ca.issueKeyPair({ usage: 'server', subject: { commonName: 'not-a-client' } })
      const refused = await handshake(wrongPurpose)
      assert.equal(refused.serverTrustsClient, false)
      assert.match(refused.serverError ?? '', /purpose/i)
    } finally {
      tls.close()
    }
  })

  it('makes an intermediate whose server certificates verify against the intermediate alone only with partial chains allowed', async () => {
    const root = TestCa.create({ commonName: 'test root' })
    const intermediate = root.intermediate({ commonName: 'test intermediate' })
    assert.equal(intermediate.certificate.ca, true)
    assert.ok(root.issued(intermediate.certificate))
    assert.equal(intermediate.chainPem, intermediate.certPem)
    assert.equal(root.chainPem, '')
    const leaf = intermediate.issueKeyPair({ usage: 'server', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] })
    const server = createServer({ cert: leaf.certPem + intermediate.chainPem, key: leaf.keyPem }, (s) => s.end())
    server.on('tlsClientError', () => {})
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const port = (server.address() as AddressInfo).port
    const verify = async (options: { ca: string; allowPartialTrustChain?: boolean }): Promise<string> => {
      const socket = connect({ host: '127.0.0.1', port, ...options })
      try {
        await once(socket, 'secureConnect')
        return 'verified'
      } catch (e) {
        return (e as NodeJS.ErrnoException).code ?? String(e)
      } finally {
        socket.destroy()
      }
    }
    try {
      assert.equal(await verify({ ca: root.certPem }), 'verified')
      assert.equal(await verify({ ca: intermediate.certPem, allowPartialTrustChain: true }), 'verified')
      assert.equal(await verify({ ca: intermediate.certPem }), 'UNABLE_TO_GET_ISSUER_CERT')
    } finally {
      server.close()
    }
  })
})

