import assert from 'node:assert/strict'
import { once } from 'node:events'
import net from 'node:net'
import { after, before, describe, it } from 'node:test'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { encodeConnResponse, frame } from '../protocol/binding-frames.js'
import { IngressDialer, parseIngressEndpoint, type IngressDialerOptions } from './ingress-dialer.js'
import { IngressRefusedError } from './ingress-refused-error.js'
import { echo, freePort, startFakeIngress, type FakeIngress } from './test-ingress.js'
import { recordingLogger } from './test-logger.js'
import { createTestPki, hasOpenssl, type TestPki } from './test-pki.js'

const skip = (await hasOpenssl()) ? false : 'openssl is not installed (needed to make the test certificates)'

/** Resolves every name to 127.0.0.1, so that SNI and name checks can be tested on loopback. */
const loopbackLookup: net.LookupFunction = (_host, options, cb) => {
  if ((options as { all?: boolean }).all) (cb as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address: '127.0.0.1', family: 4 }])
  else cb(null, '127.0.0.1', 4)
}

/** Resolves when the socket has closed, however (an error is no failure here). */
function closed(s: net.Socket): Promise<void> {
  return s.closed ? Promise.resolve() : new Promise((resolve) => s.once('close', () => resolve()))
}

async function rejection(p: Promise<unknown>): Promise<Error & { code?: string; hint?: string }> {
  try {
    await p
  } catch (e) {
    return e as Error & { code?: string; hint?: string }
  }
  assert.fail('expected a rejection')
}

describe('IngressDialer', { skip }, () => {
  let pki: TestPki
  const ingresses: FakeIngress[] = []
  const start = async (opts: Partial<Parameters<typeof startFakeIngress>[0]> = {}): Promise<FakeIngress> => {
    const i = await startFakeIngress({ pki, ...opts })
    ingresses.push(i)
    return i
  }
  const dialer = (ingress: FakeIngress | string, opts: Partial<IngressDialerOptions> = {}): IngressDialer =>
    new IngressDialer({
      logger: recordingLogger(),
      credentials: () => pki.clientA,
      endpoint: () => (typeof ingress === 'string' ? ingress : ingress.endpoint),
      ca: pki.ingressCaPem,
      ...opts,
    })

  before(async () => {
    pki = await createTestPki()
  })
  after(async () => {
    await Promise.all(ingresses.map((i) => i.close()))
  })

  it('sends exactly the PROTOCOL.md ConnRequest bytes for {host:"api.default", port:80}', async () => {
    const ingress = await start()
    const { socket, response } = await dialer(ingress).dial({ hostname: 'api.default', port: 80 })
    socket.destroy()
    assert.equal(ingress.connections[0]!.requestBytes.toString('hex'), '0f000a0b6170692e64656661756c741050')
    assert.deepEqual(ingress.connections[0]!.request, { host: 'api.default', port: 80 })
    assert.equal(response.endpointId, 'ep_test')
    assert.equal(response.proto, 'tcp')
  })

  it('sends SNI and verifies the certificate against the ingress host name; no SNI for an IP literal', async () => {
    const ingress = await start()
    const byName = await dialer(`ingress.test:${ingress.port}`, { lookup: loopbackLookup }).dial({ hostname: 'api.prod', port: 443 })
    byName.socket.destroy()
    const byIp = await dialer(ingress).dial({ hostname: 'api.prod', port: 443 })
    byIp.socket.destroy()
    assert.equal(ingress.connections[0]!.servername, 'ingress.test')
    assert.equal(ingress.connections[1]!.servername, false)

    const wrongName = await rejection(dialer(`wrong.test:${ingress.port}`, { lookup: loopbackLookup }).dial({ hostname: 'api.prod', port: 443 }))
    assert.ok(isNgrokdError(wrongName, 'NGROKD_ERR_INGRESS_TLS'), String(wrongName))
    assert.match(wrongName.message, /server certificate/)
    assert.match(wrongName.hint!, /does not name wrong\.test/)
  })

  it('returns the bytes that arrived with the ConnResponse as early, then the rest on the paused socket', async () => {
    const ingress = await start({
      onRequest: (c) => {
        c.accept('EARLY')
        setImmediate(() => c.socket.end('LATER'))
      },
    })
    const { socket, early } = await dialer(ingress).dial({ hostname: 'db.prod', port: 5432 })
    assert.equal(early.toString(), 'EARLY')
    assert.equal(socket.isPaused(), true)
    const chunks: Buffer[] = []
    socket.on('data', (d: Buffer) => chunks.push(d)).resume()
    await once(socket, 'end')
    assert.equal(Buffer.concat(chunks).toString(), 'LATER')
    socket.destroy()
  })

  it('logs ConnResponse notices as warnings', async () => {
    const ingress = await start({ onRequest: (c) => c.accept(undefined, { notices: ['endpoint is deprecated'] }) })
    const logger = recordingLogger()
    const { socket } = await dialer(ingress, { logger }).dial({ hostname: 'api.prod', port: 80 })
    socket.destroy()
    assert.ok(logger.at('warn').some((r) => r.obj.notice === 'endpoint is deprecated' && r.obj.hostname === 'api.prod'))
  })

  it('rejects a refusal with NGROKD_ERR_INGRESS_REFUSED carrying the ngrok code and message', async () => {
    const ingress = await start({
      onRequest: (c) => {
        c.socket.end(encodeConnResponse({ errorCode: 'ERR_NGROK_3200', errorMessage: 'not found.' }))
        c.socket.resume()
      },
    })
    const err = await rejection(dialer(ingress).dial({ hostname: 'gone.prod', port: 80 }))
    assert.ok(err instanceof IngressRefusedError)
    assert.equal(err.code, 'NGROKD_ERR_INGRESS_REFUSED')
    assert.equal(err.ngrokCode, 'ERR_NGROK_3200')
    assert.equal(err.ngrokMessage, 'not found.')
    assert.match(err.message, /gone\.prod:80/)
    assert.match(err.hint!, /err_ngrok_3200/)
    await closed(ingress.connections[0]!.socket) // the dialer closed its side
  })

  it('fails with NGROKD_ERR_INGRESS_TLS naming the server certificate when the CA is not trusted', async () => {
    const ingress = await start()
    const err = await rejection(dialer(ingress, { ca: pki.otherCaPem }).dial({ hostname: 'api.prod', port: 80 }))
    assert.ok(isNgrokdError(err, 'NGROKD_ERR_INGRESS_TLS'), String(err))
    assert.match(err.message, /server certificate is signed by an unknown CA/)
    assert.match(err.hint!, /ingress\.ca_file/)
    assert.equal(ingress.connections.length, 0)
  })

  it('insecureSkipVerify accepts an untrusted server certificate and warns once, at construction', async () => {
    const ingress = await start({ cert: pki.otherIngress })
    const logger = recordingLogger()
    const d = dialer(ingress, { logger, insecureSkipVerify: true })
    assert.equal(logger.at('warn').length, 1)
    assert.match(logger.at('warn')[0]!.msg, /INSECURE.*NOT verified.*ingress\.ca_file/)
    for (let i = 0; i < 2; i++) (await d.dial({ hostname: 'api.prod', port: 80 })).socket.destroy()
    assert.equal(ingress.connections.length, 2)
    assert.equal(logger.at('warn').length, 1)
    // and without the opt-in the same server is refused
    const err = await rejection(dialer(ingress).dial({ hostname: 'api.prod', port: 80 }))
    assert.ok(isNgrokdError(err, 'NGROKD_ERR_INGRESS_TLS'))
  })

  it('reads credentials() for every connection, so a renewed certificate is used at once', async () => {
    const ingress = await start()
    let calls = 0
    const d = dialer(ingress, { credentials: () => (++calls === 1 ? pki.clientA : pki.clientB) })
    for (let i = 0; i < 3; i++) (await d.dial({ hostname: 'api.prod', port: 80 })).socket.destroy()
    assert.equal(calls, 3)
    const serials = ingress.connections.map((c) => c.clientSerial)
    assert.notEqual(serials[0], serials[1])
    assert.equal(serials[1], serials[2])
  })

  for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
    it(`explains a client certificate the ingress does not accept (${maxVersion})`, async () => {
      const ingress = await start({ maxVersion })
      const err = await rejection(dialer(ingress, { credentials: () => pki.otherClient }).dial({ hostname: 'api.prod', port: 80 }))
      assert.ok(isNgrokdError(err, 'NGROKD_ERR_INGRESS_TLS'), String(err))
      assert.match(err.hint!, /does not accept our client certificate: issued for another ingress, revoked or expired/)
    })
  }

  it('fails with NGROKD_ERR_INGRESS_PROTOCOL on a ConnResponse that does not decode or is cut off', async () => {
    const garbage = await start({ onRequest: (c) => c.socket.write(frame(Buffer.from([0x0a, 0x7f]))) }) // field 1 announces 127 bytes, has 0
    const e1 = await rejection(dialer(garbage).dial({ hostname: 'api.prod', port: 80 }))
    assert.ok(isNgrokdError(e1, 'NGROKD_ERR_INGRESS_PROTOCOL'), String(e1))
    const cut = await start({ onRequest: (c) => c.socket.end(Buffer.from([0x10, 0x00, 0x0a])) }) // 16 bytes announced, 1 sent
    const e2 = await rejection(dialer(cut).dial({ hostname: 'api.prod', port: 80 }))
    assert.ok(isNgrokdError(e2, 'NGROKD_ERR_INGRESS_PROTOCOL'), String(e2))
    assert.match(e2.message, /in the middle of the ConnResponse/)
  })

  it('explains a close right after a good handshake (PROTOCOL.md §4: certificate not accepted)', async () => {
    const ingress = await start({ onRequest: (c) => c.socket.end() })
    const err = await rejection(dialer(ingress).dial({ hostname: 'api.prod', port: 80 }))
    assert.ok(isNgrokdError(err, 'NGROKD_ERR_INGRESS_TLS'), String(err))
    assert.match(err.message, /closed the connection before answering the ConnRequest/)
    assert.match(err.hint!, /issued for another ingress, revoked or expired/)
  })

  it('times out with NGROKD_ERR_INGRESS_TIMEOUT when the ConnResponse or the handshake does not come', async () => {
    const silent = await start({ onRequest: () => {} })
    const e1 = await rejection(dialer(silent, { responseTimeoutMs: 50 }).dial({ hostname: 'api.prod', port: 80 }))
    assert.ok(isNgrokdError(e1, 'NGROKD_ERR_INGRESS_TIMEOUT'), String(e1))
    assert.match(e1.message, /ConnResponse/)

    const mute = net.createServer(() => {}) // accepts TCP, never speaks TLS
    const accepted: net.Socket[] = []
    mute.on('connection', (s) => accepted.push(s.resume()))
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r))
    const port = (mute.address() as net.AddressInfo).port
    const e2 = await rejection(dialer(`127.0.0.1:${port}`, { handshakeTimeoutMs: 50 }).dial({ hostname: 'api.prod', port: 80 }))
    assert.ok(isNgrokdError(e2, 'NGROKD_ERR_INGRESS_TIMEOUT'), String(e2))
    assert.match(e2.message, /TLS handshake/)
    await closed(accepted[0]!) // the dialer destroyed its socket
    mute.close()
  })

  it('fails with NGROKD_ERR_INGRESS_UNREACHABLE when nothing listens', async () => {
    const port = await freePort()
    const err = await rejection(dialer(`127.0.0.1:${port}`).dial({ hostname: 'api.prod', port: 80 }))
    assert.ok(isNgrokdError(err, 'NGROKD_ERR_INGRESS_UNREACHABLE'), String(err))
    assert.match(err.message, /ECONNREFUSED/)
  })

  it('honours an AbortSignal, before and during the dial', async () => {
    const silent = await start({ onRequest: (c) => c.socket.on('end', () => c.socket.end()).resume() })
    const d = dialer(silent)
    const e1 = await rejection(d.dial({ hostname: 'api.prod', port: 80, signal: AbortSignal.abort() }))
    assert.ok(isNgrokdError(e1, 'NGROKD_ERR_ABORTED'))
    const ac = new AbortController()
    const pending = d.dial({ hostname: 'api.prod', port: 80, signal: ac.signal })
    while (silent.connections.length === 0) await new Promise((r) => setImmediate(r))
    ac.abort()
    const e2 = await rejection(pending)
    assert.ok(isNgrokdError(e2, 'NGROKD_ERR_ABORTED'))
    await closed(silent.connections[0]!.socket)
  })

  it('rejects unusable credentials, trust roots and targets with coded errors', async () => {
    const ingress = await start({ onRequest: echo })
    const e1 = await rejection(dialer(ingress, { credentials: () => ({ certPem: pki.clientA.certPem, keyPem: pki.clientB.keyPem }) }).dial({ hostname: 'a.b', port: 1 }))
    assert.ok(isNgrokdError(e1, 'NGROKD_ERR_CERT'), String(e1))
    assert.throws(() => dialer(ingress, { ca: 'not a certificate' }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'))
    const e2 = await rejection(dialer(ingress).dial({ hostname: 'api.prod:80', port: 80 }))
    assert.ok(isNgrokdError(e2, 'NGROKD_ERR_HOSTNAME_INVALID'))
    const e3 = await rejection(dialer('no port:here').dial({ hostname: 'api.prod', port: 80 }))
    assert.ok(isNgrokdError(e3, 'NGROKD_ERR_CONFIG_INVALID'))
    const e4 = await rejection(
      new IngressDialer({ logger: recordingLogger(), credentials: () => Promise.reject(new Error('no cert yet')), endpoint: () => ingress.endpoint }).dial({ hostname: 'a.b', port: 1 }),
    )
    assert.equal(e4.message, 'no cert yet')
  })
})

describe('parseIngressEndpoint', () => {
  it('reads host:port, [v6]:port and a bare host (port 443)', () => {
    assert.deepEqual(parseIngressEndpoint('kubernetes-binding-ingress.ngrok.io:443'), { host: 'kubernetes-binding-ingress.ngrok.io', port: 443, text: 'kubernetes-binding-ingress.ngrok.io:443' })
    assert.deepEqual(parseIngressEndpoint('ingress.example'), { host: 'ingress.example', port: 443, text: 'ingress.example:443' })
    assert.deepEqual(parseIngressEndpoint('[::1]:8443'), { host: '::1', port: 8443, text: '[::1]:8443' })
    assert.deepEqual(parseIngressEndpoint('::1'), { host: '::1', port: 443, text: '[::1]:443' })
    assert.deepEqual(parseIngressEndpoint('127.0.0.1:9'), { host: '127.0.0.1', port: 9, text: '127.0.0.1:9' })
  })
  it('rejects anything else with NGROKD_ERR_CONFIG_INVALID', () => {
    for (const bad of ['', 'host:0', 'host:65536', 'host:x', 'https://host:443', 'a b:1']) {
      assert.throws(() => parseIngressEndpoint(bad), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'), bad)
    }
  })
})
