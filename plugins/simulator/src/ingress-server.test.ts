import assert from 'node:assert/strict'
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls'
import { FrameReader, decodeConnResponseBody, encodeConnRequest, makeCsr } from '@ngrokd/core'
import { bulkByteAt, type EchoReply } from './backends.js'
import { SimulatorCa } from './ca.js'
import { CloudSimulator } from './cloud-simulator.js'
import { dialIngress, type IngressClientConnection } from './ingress-client.test-helper.js'
import type { OperatorObject } from './types.js'

interface Creds {
  operatorId: string
  cert: string
  key: string
}

async function register(sim: CloudSimulator, selectors = ['true']): Promise<Creds> {
  const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey
  const res = await fetch(`${sim.apiUrl}/kubernetes_operators`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${sim.apiKey}`, 'Ngrok-Version': '2', 'Content-Type': 'application/json' },
    body: JSON.stringify({ enabled_features: ['bindings'], binding: { endpoint_selectors: selectors, csr: makeCsr(key) } }),
  })
  assert.equal(res.status, 201)
  const op = (await res.json()) as OperatorObject
  return { operatorId: op.id, cert: op.binding!.cert.cert, key: key.export({ type: 'pkcs8', format: 'pem' }).toString() }
}

function dial(sim: CloudSimulator, creds: { cert: string; key: string }, host: string, port: number, address = '127.0.0.1') {
  return dialIngress({ host: address, port: sim.ingressPort, ca: sim.caCertPem, cert: creds.cert, key: creds.key, request: { host, port } })
}

/** Everything the socket delivers until it ends or fails. */
function readAll(conn: IngressClientConnection): Promise<{ data: Buffer; error?: Error }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [conn.rest]
    let error: Error | undefined
    conn.socket.on('data', (c: Buffer) => chunks.push(c))
    conn.socket.on('error', (e) => (error = e))
    conn.socket.on('end', () => conn.socket.end()) // a client closes once the ingress has
    conn.socket.on('close', () => resolve(error ? { data: Buffer.concat(chunks), error } : { data: Buffer.concat(chunks) }))
    conn.socket.resume()
  })
}

/** Reads `count` HTTP/1.1 responses with Content-Length bodies from a socket, leaving it open. */
function readHttpResponses(socket: TLSSocket, first: Buffer, count: number): Promise<Array<{ status: number; body: string }>> {
  return new Promise((resolve, reject) => {
    let buf = first
    const out: Array<{ status: number; body: string }> = []
    const parse = () => {
      for (;;) {
        const headEnd = buf.indexOf('\r\n\r\n')
        if (headEnd < 0) return
        const head = buf.subarray(0, headEnd).toString('latin1')
        const len = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0)
        if (buf.length < headEnd + 4 + len) return
        out.push({ status: Number(head.split(' ')[1]), body: buf.subarray(headEnd + 4, headEnd + 4 + len).toString('utf8') })
        buf = buf.subarray(headEnd + 4 + len)
        if (out.length === count) {
          socket.off('data', onData)
          resolve(out)
          return
        }
      }
    }
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c])
      parse()
    }
    socket.on('data', onData)
    socket.once('close', () => reject(new Error(`closed after ${out.length} responses`)))
    socket.resume()
    parse()
  })
}

describe('binding ingress', () => {
  let sim: CloudSimulator
  let creds: Creds
  before(async () => {
    sim = await CloudSimulator.start()
    creds = await register(sim)
  })
  after(async () => {
    await sim.stop()
  })

  it('tcp-echo: ConnResponse, 2 MiB echoed back, half-close answered with half-close', async () => {
    const ep = sim.addEndpoint({ url: 'tcp://db.prod:5432' })
    const conn = await dial(sim, creds, 'db.prod', 5432)
    assert.equal(conn.response.endpointId, ep.id)
    assert.equal(conn.response.proto, 'tcp')
    assert.equal(conn.response.errorCode, '')
    const payload = randomBytes(2 << 20)
    const done = readAll(conn)
    conn.socket.end(payload)
    const { data, error } = await done
    assert.equal(error, undefined)
    assert.equal(data.length, payload.length)
    assert.ok(data.equals(payload))
    sim.removeEndpoint(ep.id)
  })

  it('speaks TLS 1.2 and 1.3 and accepts resumed sessions; picks AES-128-GCM first, as Go does', async () => {
    const ep = sim.addEndpoint({ url: 'tcp://resume.prod:7005' })
    for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
      let session: Buffer | undefined
      const reused: boolean[] = []
      for (let i = 0; i < 2; i++) {
        const socket = tlsConnect({
          host: '127.0.0.1',
          port: sim.ingressPort,
          ca: sim.caCertPem,
          allowPartialTrustChain: true,
          cert: creds.cert,
          key: creds.key,
          servername: 'localhost',
          maxVersion: version,
          ...(session ? { session } : {}),
        })
        socket.on('session', (s: Buffer) => (session = s))
        socket.once('secureConnect', () => socket.write(encodeConnRequest({ host: 'resume.prod', port: 7005 })))
        const frame = await new Promise<Buffer>((resolve, reject) => {
          socket.once('data', resolve)
          socket.once('error', reject)
        })
        assert.equal(socket.getProtocol(), version)
        // this client (Node's defaults) offers AES-256-GCM first; the server's order decides, as in Go
        if (version === 'TLSv1.3') assert.equal(socket.getCipher().standardName, 'TLS_AES_128_GCM_SHA256')
        assert.equal(decodeConnResponseBody(frame.subarray(2)).endpointId, ep.id)
        reused.push(socket.isSessionReused())
        socket.end()
        await new Promise((r) => socket.once('close', r))
      }
      assert.deepEqual(reused, [false, true], version)
    }
    sim.removeEndpoint(ep.id)
  })

  it('keeps payload bytes sent in the same write as the ConnRequest', async () => {
    const ep = sim.addEndpoint({ url: 'tcp://early.prod:7000' })
    const options: ConnectionOptions & { allowHalfOpen: boolean } = {
      host: '127.0.0.1',
      port: sim.ingressPort,
      ca: sim.caCertPem,
      allowPartialTrustChain: true,
      cert: creds.cert,
      key: creds.key,
      servername: 'localhost',
      allowHalfOpen: true,
    }
    const socket = tlsConnect(options)
    socket.once('secureConnect', () => socket.end(Buffer.concat([encodeConnRequest({ host: 'early.prod', port: 7000 }), Buffer.from('early bytes')])))
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    await new Promise((r) => socket.on('close', r))
    const reader = new FrameReader()
    const frame = reader.push(Buffer.concat(chunks))
    assert.ok(frame)
    assert.equal(decodeConnResponseBody(frame.body).endpointId, ep.id)
    assert.equal(frame.rest.toString(), 'early bytes')
    sim.removeEndpoint(ep.id)
  })

  it('http-echo: keep-alive requests on one connection, bodies consumed and counted', async () => {
    const ep = sim.addEndpoint({ url: 'http://api.prod' })
    const conn = await dial(sim, creds, 'api.prod', 80)
    assert.equal(conn.response.proto, 'http')
    const body = Buffer.alloc(100_000, 0x61)
    conn.socket.write(`GET /hello?x=1 HTTP/1.1\r\nHost: api.prod\r\nX-Test: yes\r\n\r\n`)
    conn.socket.write(`POST /upload HTTP/1.1\r\nHost: api.prod\r\nContent-Length: ${body.length}\r\n\r\n`)
    conn.socket.write(body)
    const [r1, r2] = await readHttpResponses(conn.socket, conn.rest, 2)
    const e1 = JSON.parse(r1!.body) as EchoReply
    const e2 = JSON.parse(r2!.body) as EchoReply
    assert.equal(r1!.status, 200)
    assert.deepEqual([e1.method, e1.path, e1.host, e1.endpoint_id, e1.body_bytes], ['GET', '/hello?x=1', 'api.prod', ep.id, 0])
    assert.equal(e1.headers['x-test'], 'yes')
    assert.deepEqual([e2.method, e2.path, e2.body_bytes], ['POST', '/upload', body.length])
    conn.socket.destroy()
    sim.removeEndpoint(ep.id)
  })

  it('https-echo: TLS end to end through the tunnel, verified against the simulator CA', async () => {
    const ep = sim.addEndpoint({ url: 'https://secure.example.com' })
    const conn = await dial(sim, creds, 'secure.example.com', 443)
    assert.equal(conn.response.proto, 'https')
    assert.equal(conn.rest.length, 0)
    const inner = tlsConnect({ socket: conn.socket, servername: 'secure.example.com', ca: sim.caCertPem, allowPartialTrustChain: true })
    conn.socket.resume()
    await new Promise<void>((resolve, reject) => {
      inner.once('secureConnect', resolve)
      inner.once('error', reject)
    })
    assert.equal(inner.authorized, true)
    inner.write('GET /inner HTTP/1.1\r\nHost: secure.example.com\r\n\r\n')
    const [r] = await readHttpResponses(inner, Buffer.alloc(0), 1)
    const echo = JSON.parse(r!.body) as EchoReply
    assert.equal(echo.backend, 'https-echo')
    assert.equal(echo.endpoint_id, ep.id)
    assert.equal(echo.path, '/inner')
    inner.destroy()
    sim.removeEndpoint(ep.id)
  })

  it('bulk: GET n streams the pattern, PUT n answers count and sha256', async () => {
    const ep = sim.addEndpoint({ url: 'tcp://bulk.prod:9000', backend: 'bulk' })
    const get = await dial(sim, creds, 'bulk.prod', 9000)
    const n = 3_000_017
    const got = readAll(get)
    get.socket.end(`GET ${n}\n`)
    const { data } = await got
    assert.equal(data.length, n)
    for (const i of [0, 1, 250, 251, 64_255, 64_256, n - 1]) assert.equal(data[i], bulkByteAt(i), `byte ${i}`)

    const put = await dial(sim, creds, 'bulk.prod', 9000)
    const payload = randomBytes(1_234_567)
    const reply = readAll(put)
    put.socket.write(`PUT ${payload.length}\n`)
    put.socket.end(payload)
    const text = (await reply).data.toString()
    assert.equal(text, `${payload.length} ${createHash('sha256').update(payload).digest('hex')}\n`)

    const bad = await dial(sim, creds, 'bulk.prod', 9000)
    const badReply = readAll(bad)
    bad.socket.end('FETCH 1\n')
    assert.match((await badReply).data.toString(), /^ERR /)
    sim.removeEndpoint(ep.id)
  })

  it('refuses an unknown endpoint with ERR_NGROK_3200 and a host with :port with ERR_NGROK_706', async () => {
    const before = sim.stats().ingress
    const unknown = await dial(sim, creds, 'nothing.prod', 80)
    assert.equal(unknown.response.errorCode, 'ERR_NGROK_3200')
    assert.notEqual(unknown.response.errorMessage, '')
    assert.equal(unknown.response.endpointId, '')
    assert.equal((await readAll(unknown)).data.length, 0)

    const ep = sim.addEndpoint({ url: 'http://api.prod' })
    const withPort = await dial(sim, creds, 'api.prod:80', 80)
    assert.equal(withPort.response.errorCode, 'ERR_NGROK_706')
    await readAll(withPort)
    const wrongPort = await dial(sim, creds, 'api.prod', 8080)
    assert.equal(wrongPort.response.errorCode, 'ERR_NGROK_3200')
    await readAll(wrongPort)
    const after = sim.stats().ingress
    assert.equal(after.refused - before.refused, 3)
    assert.equal((after.refusedByCode.ERR_NGROK_3200 ?? 0) - (before.refusedByCode.ERR_NGROK_3200 ?? 0), 2)
    assert.equal((after.refusedByCode.ERR_NGROK_706 ?? 0) - (before.refusedByCode.ERR_NGROK_706 ?? 0), 1)
    sim.removeEndpoint(ep.id)
  })

  it('closes a connection whose ConnRequest does not decode', async () => {
    const before = sim.stats().ingress.refusedByCode.protocol ?? 0
    const socket = tlsConnect({ host: '127.0.0.1', port: sim.ingressPort, ca: sim.caCertPem, allowPartialTrustChain: true, cert: creds.cert, key: creds.key, servername: 'localhost' })
    socket.once('secureConnect', () => socket.write(Buffer.from([0x02, 0x00, 0x0a, 0xff]))) // field 1 claims 255 bytes
    let received = 0
    socket.on('data', (c: Buffer) => (received += c.length))
    socket.on('error', () => {})
    await new Promise((r) => socket.once('close', r))
    assert.equal(received, 0)
    assert.equal((sim.stats().ingress.refusedByCode.protocol ?? 0) - before, 1)
  })

  it('injected refusal carries the given code and message, for count connections', async () => {
    const ep = sim.addEndpoint({ url: 'http://flaky.prod' })
    sim.injectIngressFault({ kind: 'refuse', host: 'flaky.prod', errorCode: 'ERR_NGROK_9999', errorMessage: 'go away', count: 1 })
    const r1 = await dial(sim, creds, 'flaky.prod', 80)
    assert.deepEqual([r1.response.errorCode, r1.response.errorMessage], ['ERR_NGROK_9999', 'go away'])
    r1.socket.destroy()
    const r2 = await dial(sim, creds, 'flaky.prod', 80)
    assert.equal(r2.response.endpointId, ep.id)
    r2.socket.destroy()
    sim.removeEndpoint(ep.id)
  })

  it('sends endpoint notices in the ConnResponse', async () => {
    const ep = sim.addEndpoint({ url: 'http://noisy.prod', notices: ['deprecated soon', 'second'] })
    const conn = await dial(sim, creds, 'noisy.prod', 80)
    assert.deepEqual(conn.response.notices, ['deprecated soon', 'second'])
    conn.socket.destroy()
    sim.removeEndpoint(ep.id)
  })

  it('closes without a ConnResponse for a certificate from another CA, or an expired one', async () => {
    const ep = sim.addEndpoint({ url: 'http://api.prod' })
    const before = sim.stats().ingress.refusedByCode.tls ?? 0
    const foreign = SimulatorCa.create().issueClientCert({ commonName: creds.operatorId })
    await assert.rejects(dial(sim, { cert: foreign.certPem, key: foreign.keyPem }, 'api.prod', 80))
    const expired = sim.issueClientCert({ validityMs: -1000 })
    await assert.rejects(dial(sim, { cert: expired.certPem, key: expired.keyPem }, 'api.prod', 80))
    assert.equal((sim.stats().ingress.refusedByCode.tls ?? 0) - before, 2)
    sim.removeEndpoint(ep.id)
  })

  it('refuses with ERR_NGROK_15010 once the operator is gone', async () => {
    const ep = sim.addEndpoint({ url: 'http://api.prod' })
    const unbound = sim.issueClientCert()
    const r1 = await dial(sim, { cert: unbound.certPem, key: unbound.keyPem }, 'api.prod', 80)
    assert.equal(r1.response.errorCode, 'ERR_NGROK_15010')
    r1.socket.destroy()

    const mine = await register(sim)
    const ok = await dial(sim, mine, 'api.prod', 80)
    assert.equal(ok.response.endpointId, ep.id)
    ok.socket.destroy()
    const del = await fetch(`${sim.apiUrl}/kubernetes_operators/${mine.operatorId}`, {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${sim.apiKey}`, 'Ngrok-Version': '2' },
    })
    assert.equal(del.status, 204)
    const gone = await dial(sim, mine, 'api.prod', 80)
    assert.equal(gone.response.errorCode, 'ERR_NGROK_15010')
    assert.match(gone.response.errorMessage, new RegExp(mine.operatorId))
    gone.socket.destroy()
    sim.removeEndpoint(ep.id)
  })

  it('routes only to endpoints the operator selectors bind', async () => {
    const ep = sim.addEndpoint({ url: 'http://api.staging' })
    const prodOnly = await register(sim, ["endpoint.host.endsWith('.prod')"])
    const r = await dial(sim, prodOnly, 'api.staging', 80)
    assert.equal(r.response.errorCode, 'ERR_NGROK_3200')
    r.socket.destroy()
    sim.removeEndpoint(ep.id)
  })

  it('takes turns between pooled endpoints of one URL', async () => {
    const a = sim.addEndpoint({ url: 'http://pool.prod', poolingEnabled: true })
    const b = sim.addEndpoint({ url: 'http://pool.prod', poolingEnabled: true })
    const seen = new Set<string>()
    for (let i = 0; i < 4; i++) {
      const c = await dial(sim, creds, 'pool.prod', 80)
      seen.add(c.response.endpointId)
      c.socket.destroy()
    }
    assert.deepEqual(seen, new Set([a.id, b.id]))
    assert.throws(() => sim.addEndpoint({ url: 'http://pool.prod' }), /poolingEnabled/)
    sim.removeEndpoint(a.id)
    sim.removeEndpoint(b.id)
  })

  it('cut fault: exactly N bytes reach the client, then the connection is reset', async () => {
    const ep = sim.addEndpoint({ url: 'tcp://cut.prod:7001' })
    sim.injectIngressFault({ kind: 'cut', afterBytes: 1000, host: 'cut.prod', count: 1 })
    const conn = await dial(sim, creds, 'cut.prod', 7001)
    const chunks: Buffer[] = [conn.rest]
    conn.socket.on('data', (c: Buffer) => chunks.push(c))
    conn.socket.write(randomBytes(50_000))
    conn.socket.resume()
    // Node 20's TLS reports a reset as 'end', Node 24's as ECONNRESET.
    let error: Error | undefined
    await new Promise<void>((r) => {
      conn.socket.once('end', r)
      conn.socket.once('error', (e) => {
        error = e
        r()
      })
    })
    assert.equal(Buffer.concat(chunks).length, 1000)
    // A reset, not a FIN: the ingress is gone for writing too.
    if (!error) error = (await new Promise<Error | null | undefined>((r) => conn.socket.write('more', r))) ?? undefined
    assert.ok(error, 'the connection was reset')
    conn.socket.destroy()
    sim.removeEndpoint(ep.id)
  })

  it('handshake-delay fault holds a connection while later ones go through', async () => {
    const ep = sim.addEndpoint({ url: 'http://slow.prod' })
    sim.injectIngressFault({ kind: 'handshake-delay', ms: 600_000, count: 1 })
    let slowSettled = false
    const slow = dial(sim, creds, 'slow.prod', 80).then(
      (c) => {
        slowSettled = true
        c.socket.destroy()
      },
      () => (slowSettled = true),
    )
    const fast = await dial(sim, creds, 'slow.prod', 80)
    assert.equal(fast.response.endpointId, ep.id)
    assert.equal(slowSettled, false)
    fast.socket.destroy()
    sim.removeEndpoint(ep.id)
    void slow
  })

  it('removing an endpoint cuts its open connections', async () => {
    const ep = sim.addEndpoint({ url: 'tcp://gone.prod:7002' })
    const conn = await dial(sim, creds, 'gone.prod', 7002)
    const done = readAll(conn)
    conn.socket.write('hello')
    sim.removeEndpoint(ep.id)
    const { data } = await done
    assert.ok(data.length <= 5)
  })

  it('listens on ::1 as well when the machine has it', async (t) => {
    if (!sim.ingressAddresses.includes('::1')) {
      t.skip('no ::1 on this machine')
      return
    }
    const ep = sim.addEndpoint({ url: 'tcp://six.prod:7003' })
    const conn = await dial(sim, creds, 'six.prod', 7003, '::1')
    assert.equal(conn.response.endpointId, ep.id)
    const done = readAll(conn)
    conn.socket.end('v6')
    assert.equal((await done).data.toString(), 'v6')
    sim.removeEndpoint(ep.id)
  })

  it('counts accepted connections and stops with connections open', async () => {
    const s = await CloudSimulator.start()
    const c = await register(s)
    s.addEndpoint({ url: 'tcp://hold.prod:7004' })
    const conn = await dial(s, c, 'hold.prod', 7004)
    assert.equal(s.stats().ingress.accepted, 1)
    assert.equal(s.stats().ingress.active, 1)
    const done = readAll(conn)
    await s.stop()
    await done
    assert.equal(conn.socket.destroyed, true)
    await s.stop() // twice is fine
  })
})
