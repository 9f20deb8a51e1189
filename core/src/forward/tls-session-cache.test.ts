import assert from 'node:assert/strict'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import tls from 'node:tls'
import { createTestPki, type TestPki } from '../testing/test-pki.js'
import { TlsSessionCache, withoutPeerCertificate } from './tls-session-cache.js'

interface Handshake {
  reused: boolean
  authorized: boolean
  /** The server certificate's DER as the client saw it; undefined when the client has none (resumed without it). */
  peerDer?: Buffer
  /** The newest session the server gave (TLS 1.3 tickets arrive after the handshake); none on a resumed one here. */
  session?: Buffer
}

describe('TLS sessions without the server certificate', { timeout: 60_000 }, () => {
  let pki: TestPki
  let server: tls.Server
  let port: number
  before(async () => {
    pki = createTestPki()
    // mTLS, as the ingress: the server asks for our client certificate and knows its CA
    server = tls.createServer({ cert: pki.chainedIngress.certPem, key: pki.chainedIngress.keyPem, ca: pki.clientCaPem, requestCert: true, rejectUnauthorized: true }, (s) => s.end('ok'))
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    port = (server.address() as AddressInfo).port
  })
  after(() => server.close())

  const handshake = (maxVersion: tls.SecureVersion, session?: Buffer): Promise<Handshake> =>
    new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port, servername: 'ingress.test', ca: pki.chainIntermediatePem, allowPartialTrustChain: true, cert: pki.clientA.certPem, key: pki.clientA.keyPem, maxVersion, session })
      let latest: Buffer | undefined
      socket.on('session', (s: Buffer) => (latest = s))
      socket.on('error', reject)
      socket.once('secureConnect', () => {
        const reused = socket.isSessionReused()
        const authorized = socket.authorized
        const raw = socket.getPeerCertificate().raw
        socket.resume()
        socket.once('end', () => {
          socket.destroy()
          resolve({ reused, authorized, peerDer: raw, session: latest })
        })
      })
    })

  it('drops the certificate of a TLS 1.3 session and nothing else; the session still resumes, verified, with our client certificate', async () => {
    const full = await handshake('TLSv1.3')
    assert.ok(full.session, 'a session arrived')
    assert.equal(full.reused, false)
    assert.ok(full.peerDer, 'a full handshake shows the server certificate')
    assert.ok(full.session.includes(full.peerDer), 'Node serialises the server certificate into the session')

    const stripped = withoutPeerCertificate(full.session)
    assert.equal(stripped.includes(full.peerDer), false)
    // what went is the [3] field: its tag, its length octets and the certificate, nothing more (the outer length may shrink by a byte or two)
    const n = full.peerDer.length
    const certField = 1 + (n < 0x80 ? 1 : n < 0x100 ? 2 : 3) + n
    const shrunk = full.session.length - stripped.length
    assert.ok(shrunk >= certField && shrunk <= certField + 2, `shrunk by ${shrunk} bytes, the field is ${certField}`)

    const resumed = await handshake('TLSv1.3', stripped)
    assert.deepEqual({ reused: resumed.reused, authorized: resumed.authorized }, { reused: true, authorized: true }, 'resumed, and verified when the session was made')
    assert.equal(resumed.peerDer, undefined, 'the resumed connection decoded no certificate')
  })

  it('keeps a TLS 1.2 session whole: Node would call it unverified without the certificate', async () => {
    const full = await handshake('TLSv1.2')
    assert.ok(full.session, 'a session arrived')
    assert.equal(withoutPeerCertificate(full.session), full.session)
    const resumed = await handshake('TLSv1.2', full.session)
    assert.deepEqual({ reused: resumed.reused, authorized: resumed.authorized }, { reused: true, authorized: true })
  })

  /** SEQUENCE { version 1, ssl_version TLS 1.3, ...fields }: the shape of a TLS 1.3 SSL_SESSION. */
  const tls13Session = (...fields: Buffer[]): Buffer => {
    const body = Buffer.concat([Buffer.from([0x02, 0x01, 0x01, 0x02, 0x02, 0x03, 0x04]), ...fields])
    return Buffer.concat([Buffer.from(body.length < 0x80 ? [0x30, body.length] : [0x30, 0x81, body.length]), body])
  }

  it('returns anything it cannot walk unchanged', () => {
    const peer = Buffer.from([0xa3, 0x01, 0x00])
    const whole = tls13Session(peer)
    const cases: Array<[string, Buffer]> = [
      ['empty', Buffer.alloc(0)],
      ['not a SEQUENCE', Buffer.from([0x04, 0x01, 0x00])],
      ['outer length past the end', whole.subarray(0, whole.length - 1)],
      ['bytes after the SEQUENCE', Buffer.concat([whole, Buffer.from([0x00])])],
      ['indefinite length', Buffer.concat([Buffer.from([0x30, 0x80]), whole.subarray(2), Buffer.from([0x00, 0x00])])],
      ['a field running past the SEQUENCE', tls13Session(Buffer.from([0xa3, 0x05, 0x00]))],
      ['no [3] field', tls13Session(Buffer.from([0xa4, 0x01, 0x00]))],
      ['a TLS 1.2 session', Buffer.from([0x30, 0x0a, 0x02, 0x01, 0x01, 0x02, 0x02, 0x03, 0x03, 0xa3, 0x01, 0x00])],
    ]
    for (const [what, der] of cases) assert.equal(withoutPeerCertificate(der), der, what)
  })

  it("keeps Node's envelope (prefix and servername) around the DER it shortens", () => {
    const envelope = (servername: string, der: Buffer): Buffer => {
      const name = Buffer.from(servername)
      const length = Buffer.alloc(2)
      length.writeUInt16BE(name.length)
      return Buffer.concat([Buffer.from('\0nodejs:tls:session:1\0'), length, name, der])
    }
    const kept = Buffer.from([0xa4, 0x01, 0x00])
    assert.deepEqual(withoutPeerCertificate(envelope('ingress.test', tls13Session(Buffer.from([0xa3, 0x01, 0x00]), kept))), envelope('ingress.test', tls13Session(kept)))
    const truncated = envelope('ingress.test', Buffer.alloc(0)).subarray(0, 25)
    assert.equal(withoutPeerCertificate(truncated), truncated, 'a servername running past the end')
  })

  it('re-encodes the outer length when it changes form (long → short)', () => {
    const peer = Buffer.concat([Buffer.from([0xa3, 0x81, 0x80]), Buffer.alloc(0x80, 7)])
    const rest = Buffer.from([0xa5, 0x03, 0x02, 0x01, 0x00])
    const der = tls13Session(peer, rest)
    assert.equal(der[1], 0x81, 'the input needs the long form')
    assert.deepEqual(withoutPeerCertificate(der), tls13Session(rest))
  })

  it('is what the cache keeps and offers', async () => {
    const { session } = await handshake('TLSv1.3')
    assert.ok(session, 'a session arrived')
    const cache = new TlsSessionCache()
    assert.equal(cache.get('ingress:443 a'), undefined)
    cache.set('ingress:443 a', session)
    assert.deepEqual(cache.get('ingress:443 a'), withoutPeerCertificate(session))
    assert.ok(cache.get('ingress:443 a')!.length < session.length)
  })
})
