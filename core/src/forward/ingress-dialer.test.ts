import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import net from 'node:net'
import { dirname, join } from 'node:path'
import { after, afterEach, before, describe, it } from 'node:test'
import tls from 'node:tls'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { FrameReader, decodeConnRequestBody, encodeConnResponse, frame } from '../protocol/binding-frames.js'
import { IngressDialer, parseIngressEndpoint, type DialResult, type IngressDialerOptions } from './ingress-dialer.js'
import { IngressRefusedError } from './ingress-refused-error.js'
import { echo, startFakeIngress, type FakeIngress } from '../testing/fake-ingress.js'
import { freePort } from '../testing/net-probes.js'
import { recordingLogger } from '../testing/recording-logger.js'
import { createTestPki, type TestPki } from '../testing/test-pki.js'
import { exposedGc } from '../util/exposed-gc.js'


/** One PKI for the whole file (openssl takes a while). */
let sharedPki: TestPki | undefined
const testPki = async (): Promise<TestPki> => (sharedPki ??= createTestPki())

/** Every existing behaviour must hold with each optimisation on and off. */
const MODES = [
  { name: 'full handshakes', sessionResumption: false, predial: 0 },
  { name: 'session resumption', sessionResumption: true, predial: 0 },
  { name: 'dialled ahead', sessionResumption: false, predial: 2 },
  { name: 'session resumption + dialled ahead', sessionResumption: true, predial: 2 },
] as const

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

/** Waits until `cond` holds (the test's own timeout bounds it). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 2))
}

/**
 * An ingress that counts what the dialer does to it: TLS connections, ConnRequests, connections still
 * waiting for their ConnRequest, and anything sent after the first ConnRequest (a violation of "one
 * ConnRequest per connection": the tests never write payload).
 */
interface CountingIngress {
  port: number
  endpoint: string
  /** Completed TLS handshakes. */
  accepted: number
  requests: number
  violations: number
  /** Per ConnRequest: server-side `isSessionReused()` and the client certificate serial. */
  resumed: boolean[]
  serials: string[]
  /** Open TLS connections, and those of them still without a ConnRequest, with their client serial. */
  open: Set<tls.TLSSocket>
  waiting: Map<tls.TLSSocket, string>
  /** Closes (or resets) every connection still without a ConnRequest. */
  closeWaiting(how: 'destroy' | 'reset'): void
  close(): Promise<void>
}

/** The counting ingress refuses this host (ERR_NGROK_3200) and accepts every other. */
const REFUSED_HOST = 'gone.prod'

async function startCountingIngress(pki: TestPki, maxVersion?: tls.SecureVersion): Promise<CountingIngress> {
  const server = tls.createServer({ cert: pki.ingress.certPem, key: pki.ingress.keyPem, ca: pki.clientCaPem, requestCert: true, rejectUnauthorized: true, maxVersion })
  const raws = new Map<number, net.Socket>()
  server.on('connection', (raw: net.Socket) => {
    raws.set(raw.remotePort!, raw)
    raw.once('close', () => raws.delete(raw.remotePort!))
  })
  server.on('tlsClientError', () => {})
  const c: CountingIngress = {
    port: 0,
    endpoint: '',
    accepted: 0,
    requests: 0,
    violations: 0,
    resumed: [],
    serials: [],
    open: new Set(),
    waiting: new Map(),
    closeWaiting(how) {
      for (const s of c.waiting.keys()) {
        if (how === 'reset') raws.get(s.remotePort!)?.resetAndDestroy()
        s.destroy()
      }
    },
    async close() {
      for (const s of c.open) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  server.on('secureConnection', (s: tls.TLSSocket) => {
    c.accepted++
    c.open.add(s)
    c.waiting.set(s, s.getPeerCertificate().serialNumber)
    s.on('error', () => {})
    s.once('close', () => {
      c.open.delete(s)
      c.waiting.delete(s)
    })
    const reader = new FrameReader()
    let answered = false
    s.on('data', (chunk: Buffer) => {
      if (answered) return void c.violations++
      const f = reader.push(chunk)
      if (!f) return
      answered = true
      if (f.rest.length > 0) c.violations++
      c.waiting.delete(s)
      c.requests++
      c.resumed.push(s.isSessionReused())
      c.serials.push(s.getPeerCertificate().serialNumber)
      const { host } = decodeConnRequestBody(f.body)
      if (host === REFUSED_HOST) s.write(encodeConnResponse({ errorCode: 'ERR_NGROK_3200', errorMessage: 'endpoint is offline' }))
      else s.write(encodeConnResponse({ endpointId: 'ep_count', proto: 'tcp' }))
    })
    s.on('end', () => s.end())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  c.port = (server.address() as net.AddressInfo).port
  c.endpoint = `127.0.0.1:${c.port}`
  return c
}

/** A TCP relay on 127.0.0.1 whose target is chosen per connection: another ingress, or 'drop' (close at once). */
async function startSwitchProxy(): Promise<{ endpoint: string; target: number | 'drop'; accepted: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((client) => {
    proxy.accepted++
    sockets.add(client)
    client.once('close', () => sockets.delete(client))
    client.on('error', () => {})
    if (proxy.target === 'drop') return void client.destroy()
    const upstream = net.connect(proxy.target, '127.0.0.1')
    sockets.add(upstream)
    upstream.once('close', () => sockets.delete(upstream))
    upstream.on('error', () => {})
    client.pipe(upstream).pipe(client)
    client.once('close', () => upstream.destroy())
    upstream.once('close', () => client.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const proxy = {
    endpoint: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    target: 'drop' as number | 'drop',
    accepted: 0,
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  return proxy
}

const tcpHandles = (): number => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length

for (const mode of MODES) {
describe(`IngressDialer (${mode.name})`, () => {
  let pki: TestPki
  const ingresses: FakeIngress[] = []
  const dialers: IngressDialer[] = []
  const start = async (opts: Partial<Parameters<typeof startFakeIngress>[0]> = {}): Promise<FakeIngress> => {
    const i = await startFakeIngress({ pki, ...opts })
    ingresses.push(i)
    return i
  }
  const dialer = (ingress: FakeIngress | string, opts: Partial<IngressDialerOptions> = {}): IngressDialer => {
    const d = new IngressDialer({
      logger: recordingLogger(),
      credentials: () => pki.clientA,
      endpoint: () => (typeof ingress === 'string' ? ingress : ingress.endpoint),
      ca: pki.ingressCaPem,
      sessionResumption: mode.sessionResumption,
      predial: mode.predial,
      ...opts,
    })
    dialers.push(d)
    return d
  }

  before(async () => {
    pki = await testPki()
  })
  afterEach(async () => {
    await Promise.all(dialers.splice(0).map((d) => d.close()))
  })
  after(async () => {
    await Promise.all(ingresses.map((i) => i.close()))
  })

  it('sends exactly the PROTOCOL.md ConnRequest bytes for {host:"api.default", port:80}, with the empty pod_identity', async () => {
    const ingress = await start()
    const { socket, response } = await dialer(ingress).dial({ hostname: 'api.default', port: 80 })
    socket.destroy()
    // length 17 LE | field 1 (0x0a) len 11 "api.default" | field 2 varint (0x10) 80 | field 3 (0x1a) len 0
    assert.equal(ingress.connections[0]!.requestBytes.toString('hex'), '11000a0b6170692e64656661756c7410501a00')
    assert.deepEqual(ingress.connections[0]!.request, { host: 'api.default', port: 80, podIdentity: {} })
    assert.equal(response.endpointId, 'ep_test')
    assert.equal(response.proto, 'tcp')
  })

  it('sends configured pod_identity fields with the operator proto field numbers (uid 1, name 2, namespace 3, annotations 4)', async () => {
    const ingress = await start()
    const podIdentity = { uid: 'u1', name: 'n', namespace: 'ns', annotations: { 'k8s.ngrok.com/b': '', 'k8s.ngrok.com/a': 'x' } }
    const { socket } = await dialer(ingress, { podIdentity }).dial({ hostname: 'db.prod', port: 5432 })
    socket.destroy()
    const entry = (k: string, v: string) => Buffer.concat([Buffer.from([0x0a, k.length]), Buffer.from(k), Buffer.from([0x12, v.length]), Buffer.from(v)])
    const entries = [entry('k8s.ngrok.com/a', 'x'), entry('k8s.ngrok.com/b', '')] // key order; an empty value is still written
    const pod = Buffer.concat([
      Buffer.from([0x0a, 2]), Buffer.from('u1'),
      Buffer.from([0x12, 1]), Buffer.from('n'),
      Buffer.from([0x1a, 2]), Buffer.from('ns'),
      ...entries.flatMap((e) => [Buffer.from([0x22, e.length]), e]),
    ])
    const body = Buffer.concat([Buffer.from([0x0a, 7]), Buffer.from('db.prod'), Buffer.from([0x10, 0xb8, 0x2a]) /* 5432 as a varint */, Buffer.from([0x1a, pod.length]), pod])
    const framed = Buffer.concat([Buffer.from([body.length & 0xff, body.length >> 8]), body])
    assert.equal(ingress.connections[0]!.requestBytes.toString('hex'), framed.toString('hex'))
    assert.deepEqual(ingress.connections[0]!.request, { host: 'db.prod', port: 5432, podIdentity })
  })

  it('refuses a dial whose ConnRequest would not fit in one frame with a coded error, not a bare RangeError', async () => {
    const ingress = await start()
    const podIdentity = { annotations: { 'k8s.ngrok.com/big': 'x'.repeat(70_000) } }
    const e = await rejection(dialer(ingress, { podIdentity }).dial({ hostname: 'db.prod', port: 5432 }))
    assert.ok(isNgrokdError(e, 'NGROKD_ERR_INGRESS_PROTOCOL'), `${e.name}: ${e.message}`)
    assert.match(e.message, /does not fit in one frame/)
    assert.match(e.hint ?? '', /ingress\.pod_identity/)
    assert.equal(ingress.connections.length, 0, 'nothing reached the ingress')
  })

  it('offers TLS_AES_128_GCM_SHA256 first (Go order), so a server that follows the client picks it', async () => {
    const ingress = await start({ followClientCipherOrder: true })
    const { socket } = await dialer(ingress).dial({ hostname: 'api.prod', port: 443 })
    assert.equal(socket.getCipher().standardName, 'TLS_AES_128_GCM_SHA256')
    socket.destroy()
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

  it('logs a ConnResponse notice as a warning once for its host:port, its repeats at debug', async () => {
    const ingress = await start({ onRequest: (c) => c.accept(undefined, { notices: ['endpoint is deprecated'] }) })
    const logger = recordingLogger()
    const d = dialer(ingress, { logger })
    for (const hostname of ['api.prod', 'api.prod', 'web.prod']) (await d.dial({ hostname, port: 80 })).socket.destroy()
    const notices = (level: 'warn' | 'debug') => logger.at(level).filter((r) => r.obj.notice === 'endpoint is deprecated').map((r) => r.obj.hostname)
    assert.deepEqual(notices('warn'), ['api.prod', 'web.prod'])
    assert.deepEqual(notices('debug'), ['api.prod'])
    assert.match(logger.at('warn')[0]!.msg, /binding ingress notice for api\.prod:80: endpoint is deprecated/)
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

  it('verifies a certificate from an intermediate CA when only that intermediate is trusted (ngrok\'s shape)', async () => {
    const ingress = await start({ cert: pki.chainedIngress })
    const { socket } = await dialer(ingress, { ca: pki.chainIntermediatePem }).dial({ hostname: 'api.prod', port: 80 })
    assert.equal(socket.authorized, true)
    socket.destroy()
    // and beside Node's roots, as the default trust has it
    const withRoots = await dialer(ingress, { ca: [...tls.rootCertificates, pki.chainIntermediatePem] }).dial({ hostname: 'api.prod', port: 80 })
    withRoots.socket.destroy()
    // added to Node's own root store (ingress.ca_mode add): the same, without the roots as PEMs
    const added = await dialer(ingress, { ca: [pki.chainIntermediatePem], caBesideNodeRoots: true }).dial({ hostname: 'api.prod', port: 80 })
    assert.equal(added.socket.authorized, true)
    added.socket.destroy()
    const err = await rejection(dialer(ingress, { ca: pki.otherCaPem }).dial({ hostname: 'api.prod', port: 80 }))
    assert.ok(isNgrokdError(err, 'NGROKD_ERR_INGRESS_TLS'), String(err))
    assert.match(err.hint!, /ingress\.ca_file/)
    // beside the roots, another CA does not verify it either: Node's roots did not sign it
    const besideOther = await rejection(dialer(ingress, { ca: [pki.otherCaPem], caBesideNodeRoots: true }).dial({ hostname: 'api.prod', port: 80 }))
    assert.ok(isNgrokdError(besideOther, 'NGROKD_ERR_INGRESS_TLS'), String(besideOther))
  })

  it('probe() does one handshake, returns the chain the ingress sent, and sends no ConnRequest', async () => {
    const ingress = await start({ cert: pki.chainedIngress })
    const probe = await dialer(ingress, { ca: pki.chainIntermediatePem }).probe()
    assert.equal(probe.authorized, true)
    assert.equal(probe.ingress, ingress.endpoint)
    assert.deepEqual(probe.chain.slice(0, 2).map((c) => c.subject.split('\n').at(-1)), ['CN=chained-ingress', 'CN=chain-intermediate'])
    assert.equal(ingress.connections.length, 0)
    const err = await rejection(dialer(ingress, { ca: pki.otherCaPem }).probe())
    assert.ok(isNgrokdError(err, 'NGROKD_ERR_INGRESS_TLS'), String(err))
  })

  for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
    it(`probe() closes with close_notify and a FIN, not a reset: the ingress sees a clean end, no failed handshake (${maxVersion})`, async () => {
      const server = tls.createServer({ cert: pki.ingress.certPem, key: pki.ingress.keyPem, ca: pki.clientCaPem, requestCert: true, rejectUnauthorized: true, maxVersion })
      const ends = new Promise<string>((resolve) => {
        server.on('tlsClientError', (e) => resolve(`tlsClientError ${String((e as NodeJS.ErrnoException).code ?? e.message)}`))
        server.on('secureConnection', (s: tls.TLSSocket) => {
          s.on('error', (e) => resolve(`error ${String((e as NodeJS.ErrnoException).code)}`))
          s.on('end', () => resolve('end'))
          s.resume() // an ingress reading the ConnRequest's length
        })
      })
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      try {
        const probe = await dialer(`127.0.0.1:${(server.address() as net.AddressInfo).port}`, { ca: pki.ingressCaPem }).probe()
        assert.equal(probe.protocol, maxVersion)
        assert.equal(await ends, 'end')
      } finally {
        server.close()
      }
    })
  }

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
    for (const e of [e1, e2]) assert.match(e.hint ?? '', /does not speak ngrok's binding protocol: check ingress\.endpoint/, 'each names the fix')
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
    assert.match(e1.hint ?? '', /check ingress\.endpoint.*may also hold the connection like this/)
    // part of an answer, then nothing: not a binding ingress, and no word of certificates
    const trickle = await start({ onRequest: (c) => c.socket.write(Buffer.from([0xff, 0xff, 0x0a])) })
    // the 3 bytes must come before the timeout: it is far above a stall of this process, which also plays the ingress
    const e3 = await rejection(dialer(trickle, { responseTimeoutMs: 1_000 }).dial({ hostname: 'api.prod', port: 80 }))
    assert.ok(isNgrokdError(e3, 'NGROKD_ERR_INGRESS_TIMEOUT'), String(e3))
    assert.match(e3.message, /\(3 bytes of it came\)/)
    assert.doesNotMatch(e3.hint ?? '', /certificate/)

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

  it('keeps nothing of a dial alive while its connection is open: not the abort signal it was given', async () => {
    const gc = exposedGc()
    assert.ok(gc, 'gc() can be had here')
    const d = dialer(await start({ onRequest: echo }))
    let signal: WeakRef<AbortSignal> | undefined
    const dial = (): Promise<DialResult> => {
      const ac = new AbortController()
      signal = new WeakRef(ac.signal)
      return d.dial({ hostname: 'api.prod', port: 80, signal: ac.signal })
    }
    const { socket } = await dial()
    // a WeakRef's target lives to the end of the job that made it: collect in later turns
    for (let i = 0; i < 5 && signal!.deref() !== undefined; i++) {
      await new Promise((r) => setImmediate(r))
      gc()
    }
    assert.equal(signal!.deref(), undefined, 'the open connection still holds the dial\'s abort signal (a listener that keeps the handshake\'s scope)')
    assert.ok(!socket.destroyed)
    socket.destroy()
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
      dialer(ingress, { credentials: () => Promise.reject(new Error('no cert yet')), ca: undefined }).dial({ hostname: 'a.b', port: 1 }),
    )
    assert.equal(e4.message, 'no cert yet')
  })
})
}

const T = { hostname: 'api.prod', port: 80 } as const
/** A max age no test reaches, where expiry must not hide what is tested. */
const NEVER = 3_600_000

describe('IngressDialer: TLS session resumption', { timeout: 120_000 }, () => {
  let pki: TestPki
  const cleanup: Array<() => Promise<void>> = []
  before(async () => {
    pki = await testPki()
  })
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c()
  })
  const make = (endpoint: () => string, opts: Partial<IngressDialerOptions> = {}): IngressDialer => {
    const d = new IngressDialer({ logger: recordingLogger(), credentials: () => pki.clientA, endpoint, ca: pki.ingressCaPem, ...opts })
    cleanup.push(() => d.close())
    return d
  }
  const counting = async (maxVersion?: tls.SecureVersion): Promise<CountingIngress> => {
    const i = await startCountingIngress(pki, maxVersion)
    cleanup.push(() => i.close())
    return i
  }
  /** Dials, notes whether the session was resumed, closes. */
  const reusedOnce = async (d: IngressDialer): Promise<boolean> => {
    const { socket } = await d.dial(T)
    assert.equal(socket.authorized, true, 'every connection, resumed or not, is verified')
    const reused = socket.isSessionReused() // null once destroyed
    socket.destroy()
    return reused
  }

  for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
    it(`resumes the session on the next connection (${maxVersion})`, async () => {
      const ingress = await counting(maxVersion)
      const d = make(() => ingress.endpoint)
      const reused = [await reusedOnce(d), await reusedOnce(d), await reusedOnce(d)]
      assert.deepEqual(reused, [false, true, true])
      assert.deepEqual(ingress.resumed, [false, true, true])
      assert.equal(new Set(ingress.serials).size, 1, 'the ingress still sees our client certificate on a resumed session')
      assert.equal(d.stats().sessionHeld, true)
    })
  }

  it('offers no session across a credential rotation, then resumes with the new certificate', async () => {
    const ingress = await counting()
    let credentials = pki.clientA
    const d = make(() => ingress.endpoint, { credentials: () => credentials })
    const reused = [await reusedOnce(d), await reusedOnce(d)]
    credentials = pki.clientB
    reused.push(await reusedOnce(d), await reusedOnce(d))
    assert.deepEqual(reused, [false, true, false, true])
    assert.deepEqual(ingress.resumed, reused)
    const [a1, a2, b1, b2] = ingress.serials
    assert.equal(a1, a2)
    assert.equal(b1, b2)
    assert.notEqual(a1, b1, 'a session made with the old certificate would have shown the old serial')
  })

  it('never offers a session to another ingress endpoint', async () => {
    const one = await counting()
    const two = await counting()
    let endpoint = one.endpoint
    const d = make(() => endpoint)
    const reused = [await reusedOnce(d), await reusedOnce(d)]
    endpoint = two.endpoint
    reused.push(await reusedOnce(d), await reusedOnce(d))
    endpoint = one.endpoint
    reused.push(await reusedOnce(d))
    assert.deepEqual(reused, [false, true, false, true, false])
    assert.deepEqual(one.resumed, [false, true, false])
    assert.deepEqual(two.resumed, [false, true])
  })

  it('drops a session the server refuses, and one that a failed connection offered', async () => {
    const one = await counting()
    const two = await counting() // its own ticket keys: it cannot resume one's sessions
    const untrusted = await startFakeIngress({ pki, cert: pki.otherIngress })
    cleanup.push(() => untrusted.close())
    const proxy = await startSwitchProxy()
    cleanup.push(() => proxy.close())
    const d = make(() => proxy.endpoint)
    proxy.target = one.port
    const reused = [await reusedOnce(d), await reusedOnce(d)]
    proxy.target = two.port
    reused.push(await reusedOnce(d), await reusedOnce(d))
    assert.deepEqual(reused, [false, true, false, true])
    assert.deepEqual(two.resumed, [false, true])

    // a server that cannot resume must show its certificate, and this one is not trusted: resumption skips no check
    proxy.target = untrusted.port
    const err = await rejection(d.dial(T))
    assert.ok(isNgrokdError(err, 'NGROKD_ERR_INGRESS_TLS'), String(err))
    assert.match(err.message, /server certificate/)
    assert.equal(d.stats().sessionHeld, false, 'the session the failed connection offered is gone')
    proxy.target = two.port
    assert.equal(await reusedOnce(d), false)
  })

  it('offers no session with sessionResumption: false', async () => {
    const ingress = await counting()
    const d = make(() => ingress.endpoint, { sessionResumption: false })
    assert.deepEqual([await reusedOnce(d), await reusedOnce(d)], [false, false])
    assert.deepEqual(ingress.resumed, [false, false])
    assert.equal(d.stats().sessionHeld, false)
  })
})

describe('IngressDialer: connections dialled ahead', { timeout: 120_000 }, () => {
  let pki: TestPki
  const cleanup: Array<() => Promise<void>> = []
  before(async () => {
    pki = await testPki()
  })
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c()
  })
  const make = (endpoint: () => string, opts: Partial<IngressDialerOptions> = {}): IngressDialer => {
    const d = new IngressDialer({ logger: recordingLogger(), credentials: () => pki.clientA, endpoint, ca: pki.ingressCaPem, ...opts })
    cleanup.push(() => d.close())
    return d
  }
  const counting = async (): Promise<CountingIngress> => {
    const i = await startCountingIngress(pki)
    cleanup.push(() => i.close())
    return i
  }
  const dialAndClose = async (d: IngressDialer): Promise<DialResult> => {
    const r = await d.dial(T)
    r.socket.destroy()
    return r
  }

  it('hands out each connection once, refills after use, and wastes none', async () => {
    const ingress = await counting()
    const d = make(() => ingress.endpoint, { predial: 2, predialMaxAgeMs: NEVER })
    const results: DialResult[] = [await d.dial(T)]
    assert.equal(results[0]!.predialled, false, 'the pool fills after the first successful dial')
    for (let i = 0; i < 4; i++) {
      await until(() => d.stats().predial.idle === 2)
      const r = await d.dial(T)
      assert.equal(r.predialled, true)
      results.push(r)
    }
    await until(() => d.stats().predial.idle === 2)
    const burst = await Promise.all(Array.from({ length: 6 }, () => d.dial(T)))
    assert.equal(burst.filter((r) => r.predialled).length, 2, 'two from the pool, four fresh')
    results.push(...burst)
    // the client can finish a TLS 1.3 handshake before the server has: wait for both sides
    await until(() => d.stats().predial.idle === 2 && d.stats().predial.pending === 0 && ingress.waiting.size === 2)

    assert.equal(new Set(results.map((r) => r.socket)).size, results.length)
    assert.equal(ingress.requests, results.length)
    assert.equal(ingress.violations, 0, 'no connection carried a second ConnRequest')
    assert.equal(ingress.accepted, ingress.requests + 2, 'every connection dialled ahead was used, but the two ready now')
    assert.deepEqual(ingress.resumed, [false, ...results.slice(1).map(() => true)], 'dials ahead resume the session too')
    for (const r of results) r.socket.destroy()
  })

  it('fills the pool after a refusal too (the ingress works; one endpoint is offline)', async () => {
    const ingress = await counting()
    const d = make(() => ingress.endpoint, { predial: 2, predialMaxAgeMs: NEVER })
    const err = await rejection(d.dial({ hostname: REFUSED_HOST, port: 80 }))
    assert.ok(err instanceof IngressRefusedError, String(err))
    await until(() => d.stats().predial.idle === 2)
    assert.equal((await dialAndClose(d)).predialled, true)
  })

  it('keeps at most `predial` connections ready or in progress', async () => {
    const ingress = await counting()
    const d = make(() => ingress.endpoint, { predial: 3, predialMaxAgeMs: NEVER })
    let most = 0
    const sample = (): void => {
      const { idle, pending } = d.stats().predial
      most = Math.max(most, idle + pending)
    }
    for (let round = 0; round < 5; round++) {
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          const r = await d.dial(T)
          sample()
          r.socket.destroy()
        }),
      )
      sample()
    }
    await until(() => {
      sample()
      return d.stats().predial.idle === 3 && d.stats().predial.pending === 0 && ingress.waiting.size === 3
    })
    assert.equal(most, 3)
    assert.equal(ingress.requests, 40)
    assert.equal(ingress.accepted, 43)
  })

  it('drops a ready connection that the server closes or resets, without an unhandled error', { timeout: 120_000 }, async () => {
    const ingress = await counting()
    const d = make(() => ingress.endpoint, { predial: 2, predialMaxAgeMs: NEVER }) // only the close may drop them
    await dialAndClose(d)
    for (const how of ['destroy', 'reset'] as const) {
      await until(() => d.stats().predial.idle === 2 && ingress.waiting.size === 2)
      ingress.closeWaiting(how)
      await until(() => d.stats().predial.idle === 0)
      const r = await dialAndClose(d)
      assert.equal(r.predialled, false, how)
    }
    assert.equal(ingress.violations, 0)
  })

  it('replaces a ready connection closed just before use by one fresh dial', async () => {
    const ingress = await counting()
    const logger = recordingLogger()
    const d = make(() => ingress.endpoint, { predial: 1, logger, predialMaxAgeMs: NEVER })
    await dialAndClose(d)
    await until(() => d.stats().predial.idle === 1 && ingress.waiting.size === 1)
    ingress.closeWaiting('destroy')
    // taken in this same tick, before the client can have read the close
    const r = await dialAndClose(d)
    assert.equal(r.predialled, false)
    assert.ok(logger.at('debug').some((x) => /dialled ahead was closed unanswered; dialling anew/.test(x.msg)))
    assert.equal(ingress.requests, 2)
  })

  it('closes ready connections after predialMaxAgeMs and refills only on demand', async () => {
    const ingress = await counting()
    const d = make(() => ingress.endpoint, { predial: 2, predialMaxAgeMs: 50 })
    await dialAndClose(d)
    await until(() => ingress.accepted === 3)
    await until(() => ingress.waiting.size === 0 && d.stats().predial.idle === 0)
    assert.equal(d.stats().predial.pending, 0, 'an expired connection is not replaced without a dial')
    assert.equal(ingress.accepted, 3)
    const r = await dialAndClose(d)
    assert.equal(r.predialled, false)
    await until(() => ingress.accepted === 6)
    assert.equal(ingress.requests, 2)
  })

  it('closes the ready connections on a credential rotation and on an endpoint change', async () => {
    const one = await counting()
    const two = await counting()
    let credentials = pki.clientA
    let endpoint = one.endpoint
    const d = make(() => endpoint, { predial: 2, credentials: () => credentials, predialMaxAgeMs: NEVER })
    await dialAndClose(d)
    await until(() => d.stats().predial.idle === 2)
    credentials = pki.clientB
    assert.equal((await dialAndClose(d)).predialled, false, 'ready connections with the old certificate are not used')
    const [serialA, serialB] = one.serials
    assert.notEqual(serialA, serialB)
    await until(() => one.waiting.size === 2 && [...one.waiting.values()].every((s) => s === serialB))
    assert.equal((await dialAndClose(d)).predialled, true)
    assert.deepEqual(one.serials, [serialA, serialB, serialB])

    endpoint = two.endpoint
    assert.equal((await dialAndClose(d)).predialled, false)
    await until(() => one.waiting.size === 0 && two.waiting.size === 2)
  })

  it('dials nothing ahead while the ingress fails, and backs off after a failed dial ahead', async () => {
    const port = await freePort()
    const down = make(() => `127.0.0.1:${port}`, { predial: 2 })
    const err = await rejection(down.dial(T))
    assert.ok(isNgrokdError(err, 'NGROKD_ERR_INGRESS_UNREACHABLE'), String(err))
    assert.deepEqual(down.stats().predial, { idle: 0, pending: 0, failures: 0 })

    const ingress = await counting()
    const proxy = await startSwitchProxy()
    cleanup.push(() => proxy.close())
    proxy.target = ingress.port
    const logger = recordingLogger()
    const d = make(() => proxy.endpoint, { predial: 2, logger })
    await dialAndClose(d)
    proxy.target = 'drop' // read when the proxy accepts, which is after this line
    await until(() => d.stats().predial.failures === 2 && d.stats().predial.pending === 0)
    assert.equal(proxy.accepted, 3)
    assert.equal(logger.at('warn').filter((x) => /dialling ahead failed/.test(x.msg)).length, 1, 'one warning per outage')
  })

  it('ready connections do not keep the process alive', { timeout: 120_000 }, async () => {
    const ingress = await counting()
    // a child process that dials once, waits for the pool to fill, and then has nothing left to do but
    // the ready connections: it must exit on its own (with them still ready), not after their max age
    const self = fileURLToPath(import.meta.url)
    const fromSource = self.endsWith('.ts')
    const dialerUrl = pathToFileURL(join(dirname(self), `ingress-dialer.${fromSource ? 'ts' : 'js'}`)).href
    const script = `
      const { IngressDialer } = await import(${JSON.stringify(dialerUrl)})
      const [endpoint, ca, credentials] = JSON.parse(process.argv[1])
      const logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child: () => logger }
      const d = new IngressDialer({ logger, credentials: () => credentials, endpoint: () => endpoint, ca, predial: 2, predialMaxAgeMs: ${NEVER} })
      ;(await d.dial({ hostname: 'api.prod', port: 80 })).socket.destroy()
      const wait = () => (d.stats().predial.idle === 2 ? undefined : setTimeout(wait, 2))
      wait()
      process.on('exit', () => process.stdout.write(JSON.stringify(d.stats().predial)))
    `
    const args = [...(fromSource ? ['--import', 'tsx'] : []), '--input-type=module', '-e', script, JSON.stringify([ingress.endpoint, pki.ingressCaPem, pki.clientA])]
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (c: Buffer) => (out += c.toString()))
    const [code] = (await once(child, 'exit')) as [number | null]
    assert.equal(code, 0)
    assert.deepEqual(JSON.parse(out), { idle: 2, pending: 0, failures: 0 })
    await until(() => ingress.accepted === 3 && ingress.open.size === 0) // and they closed with the process
  })

  it('close() closes every connection not handed out and leaves no socket behind', { timeout: 120_000 }, async () => {
    const ingress = await counting()
    const baseline = tcpHandles()
    const d = new IngressDialer({ logger: recordingLogger(), credentials: () => pki.clientA, endpoint: () => ingress.endpoint, ca: pki.ingressCaPem, predial: 3 })
    const r1 = await d.dial(T)
    await until(() => d.stats().predial.idle === 3)
    const r2 = await d.dial(T)
    assert.equal(r2.predialled, true)
    await new Promise((r) => setImmediate(r)) // the refill starts in the check phase, before this
    assert.equal(d.stats().predial.pending, 1, 'a refill is in progress')
    await d.close()
    assert.deepEqual(d.stats(), { predial: { idle: 0, pending: 0, failures: 0 }, sessionHeld: false })
    assert.ok(!r1.socket.destroyed && !r2.socket.destroyed, 'connections handed out stay open')
    r1.socket.destroy()
    r2.socket.destroy()
    await Promise.all([closed(r1.socket), closed(r2.socket)])
    await until(() => ingress.open.size === 0) // the server saw every connection close
    // a destroyed socket's handle is released in a later turn (uv_close), later still on a busy machine:
    // wait for that (a safety net of 10 s, far above it), so that only a socket left open fails here
    for (let waited = 0; tcpHandles() > baseline && waited < 10_000; waited += 10) await new Promise((r) => setTimeout(r, 10))
    assert.ok(tcpHandles() <= baseline, `TCP handles: ${tcpHandles()} after, ${baseline} before`)
    const after = await rejection(d.dial(T))
    assert.ok(isNgrokdError(after, 'NGROKD_ERR_ABORTED'), String(after))
    await d.close()
  })
})

describe('parseIngressEndpoint', () => {
  it('reads host:port, [v6]:port and a bare host (port 443)', () => {
    assert.deepEqual(parseIngressEndpoint('kubernetes-binding-ingress.ngrok.io:443'), { host: 'kubernetes-binding-ingress.ngrok.io', port: 443, text: 'kubernetes-binding-ingress.ngrok.io:443' })
    assert.deepEqual(parseIngressEndpoint('ingress.example'), { host: 'ingress.example', port: 443, text: 'ingress.example:443' })
    assert.deepEqual(parseIngressEndpoint('[::1]:8443'), { host: '::1', port: 8443, text: '[::1]:8443' })
    assert.deepEqual(parseIngressEndpoint('::1'), { host: '::1', port: 443, text: '[::1]:443' })
    assert.deepEqual(parseIngressEndpoint('127.0.0.1:9'), { host: '127.0.0.1', port: 9, text: '127.0.0.1:9' })
    assert.deepEqual(parseIngressEndpoint('https://ingress.example:8443'), { host: 'ingress.example', port: 8443, text: 'ingress.example:8443' })
  })
  it('rejects anything else with NGROKD_ERR_CONFIG_INVALID', () => {
    for (const bad of ['', 'host:0', 'host:65536', 'host:x', 'a b:1']) {
      assert.throws(() => parseIngressEndpoint(bad), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'), bad)
    }
  })
})
