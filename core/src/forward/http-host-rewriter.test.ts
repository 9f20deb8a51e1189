import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createServer as createHttpServer, request as httpRequest, Agent, type IncomingMessage } from 'node:http'
import { createServer, connect, type Server, type AddressInfo } from 'node:net'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { createHostRewriter, MAX_HEAD_BYTES, type HostRewriter } from './http-host-rewriter.js'
import { recordingLogger } from '../testing/recording-logger.js'

const HOST = 'api.prod'

/** Feeds `pieces` one write each, ends, and returns every byte that came out. */
async function run(pieces: Buffer[], rewriter: HostRewriter = createHostRewriter(HOST)): Promise<Buffer> {
  const out: Buffer[] = []
  rewriter.on('data', (c: Buffer) => out.push(c))
  const ended = once(rewriter, 'end')
  for (const p of pieces) rewriter.write(p)
  rewriter.end()
  await ended
  return Buffer.concat(out)
}

const b = (s: string): Buffer => Buffer.from(s, 'latin1')
const whole = (s: string | Buffer) => run([typeof s === 'string' ? b(s) : s])

/** Every way of cutting `input` in two, then one byte per write: all must give `expected`. */
async function assertEverySplit(input: Buffer, expected: Buffer): Promise<void> {
  for (let k = 1; k < input.length; k++) {
    const got = await run([input.subarray(0, k), input.subarray(k)])
    if (!got.equals(expected)) assert.equal(got.toString('latin1'), expected.toString('latin1'), `split at byte ${k}`)
  }
  const bytes = await run([...input].map((x) => Buffer.from([x])))
  assert.equal(bytes.toString('latin1'), expected.toString('latin1'), 'one byte per write')
}

/** Bytes come out without waiting for more input or the end (what Expect: 100-continue needs). */
async function writeAndCollect(rewriter: HostRewriter, input: Buffer): Promise<string> {
  const out: Buffer[] = []
  const onData = (c: Buffer) => out.push(c)
  rewriter.on('data', onData)
  rewriter.write(input)
  await new Promise((r) => setImmediate(r))
  rewriter.off('data', onData)
  return Buffer.concat(out).toString('latin1')
}

describe('createHostRewriter: heads', () => {
  it('replaces the Host value and keeps every other byte of the head', async () => {
    const got = await whole('GET /a?b=1 HTTP/1.1\r\nUser-Agent: x\r\nhOsT:   evil.example:8080\r\nX-Odd:  spaced  \r\n\r\n')
    assert.equal(got.toString('latin1'), 'GET /a?b=1 HTTP/1.1\r\nUser-Agent: x\r\nhOsT:   api.prod\r\nX-Odd:  spaced  \r\n\r\n')
  })

  it('inserts Host before the blank line when the request has none', async () => {
    assert.equal((await whole('GET / HTTP/1.0\r\nAccept: */*\r\n\r\n')).toString('latin1'), 'GET / HTTP/1.0\r\nAccept: */*\r\nHost: api.prod\r\n\r\n')
    assert.equal((await whole('GET / HTTP/1.1\r\n\r\n')).toString('latin1'), 'GET / HTTP/1.1\r\nHost: api.prod\r\n\r\n')
  })

  it('leaves exactly one Host: the first rewritten in place, later ones and folded lines removed', async () => {
    const got = await whole('GET / HTTP/1.1\r\nHost: a\r\n folded\r\nAccept: x\r\nHOST: b\r\nZ: 1\r\n\r\n')
    assert.equal(got.toString('latin1'), 'GET / HTTP/1.1\r\nHost: api.prod\r\nAccept: x\r\nZ: 1\r\n\r\n')
  })

  it('accepts bare LF line endings and empty lines before the request line', async () => {
    assert.equal((await whole('\r\n\nGET / HTTP/1.1\nHost: x\n\n')).toString('latin1'), '\r\n\nGET / HTTP/1.1\nHost: api.prod\n\n')
    assert.equal((await whole('GET / HTTP/1.1\nA: 1\n\n')).toString('latin1'), 'GET / HTTP/1.1\nA: 1\nHost: api.prod\n\n')
  })

  it('uses a host:port value as given', async () => {
    const got = await run([b('GET / HTTP/1.1\r\nHost: x\r\n\r\n')], createHostRewriter('web.prod:8080'))
    assert.equal(got.toString('latin1'), 'GET / HTTP/1.1\r\nHost: web.prod:8080\r\n\r\n')
  })

  it('refuses a value that could break the head', () => {
    for (const bad of ['', 'a b', 'a\r\nX: y', 'a,b', 'a/b', 'a@b']) {
      assert.throws(() => createHostRewriter(bad), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_HOSTNAME_INVALID'), JSON.stringify(bad))
    }
  })
})

describe('createHostRewriter: keep-alive, pipelining and bodies', () => {
  // three pipelined requests whose bodies look like requests: only the heads may change
  const smuggled = 'GET /inner HTTP/1.1\r\nHost: inner.example\r\n\r\n'
  const body1 = `abc${smuggled}xyz`
  const chunkData = `${smuggled}0\r\n\r\n`
  const input = [
    `POST /one HTTP/1.1\r\nHost: client.local\r\nContent-Length: ${body1.length}\r\n\r\n${body1}`,
    `POST /two HTTP/1.1\r\nHost: client.local\r\nTransfer-Encoding: gzip, chunked\r\n\r\n`,
    `${chunkData.length.toString(16)};name="v"\r\n${chunkData}\r\n`,
    `3\r\nabc\r\n0;last\r\nX-Trailer: Host: t\r\nHost: trailer.example\r\n\r\n`,
    `GET /three HTTP/1.1\r\nHost: client.local\r\nContent-Length: 0\r\n\r\n`,
    `GET /four HTTP/1.1\r\nhost:client.local\r\n\r\n`,
  ].join('')
  const expected = input
    .replaceAll('Host: client.local\r\nContent-Length', 'Host: api.prod\r\nContent-Length')
    .replace('Host: client.local\r\nTransfer', 'Host: api.prod\r\nTransfer')
    .replace('host:client.local', 'host:api.prod')

  it('rewrites every request of the connection and no byte of any body or trailer', async () => {
    const rewriter = createHostRewriter(HOST)
    const got = await run([b(input)], rewriter)
    assert.equal(got.toString('latin1'), expected)
    assert.equal(rewriter.requests, 4)
    assert.equal(rewriter.passthroughReason, undefined)
    assert.ok(got.toString('latin1').includes(smuggled), 'the request inside the bodies is untouched')
  })

  it('gives the same bytes however the input is cut (every split point, and one byte per write)', async () => {
    await assertEverySplit(b(input), b(expected))
  })

  it('gives the same bytes for random cuts of a large binary body', async () => {
    const body = randomBytes(200_000)
    const head = (h: string) => b(`PUT /blob HTTP/1.1\r\nHost: ${h}\r\nContent-Length: ${body.length}\r\n\r\n`)
    const input = Buffer.concat([head('x'), body, b('GET / HTTP/1.1\r\nHost: y\r\n\r\n')])
    const expected = Buffer.concat([head(HOST), body, b(`GET / HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`)])
    let seed = 7
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31)
    for (let round = 0; round < 20; round++) {
      const pieces: Buffer[] = []
      for (let at = 0; at < input.length; ) {
        const n = 1 + (next() % 9000)
        pieces.push(input.subarray(at, at + n))
        at += n
      }
      assert.ok((await run(pieces)).equals(expected), `round ${round}`)
    }
  })

  it('sends a head on before its body arrives (Expect: 100-continue)', async () => {
    const rewriter = createHostRewriter(HOST)
    const head = 'POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n'
    assert.equal(await writeAndCollect(rewriter, b(head)), head.replace('Host: x', `Host: ${HOST}`), 'the head went out with no body byte written')
    assert.equal(await writeAndCollect(rewriter, b('he')), 'he', 'body bytes go out as they come')
    assert.equal(await writeAndCollect(rewriter, b('llo')), 'llo')
    assert.equal(await writeAndCollect(rewriter, b('GET / HTTP/1.1\r\nHost: z\r\n\r\n')), `GET / HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`)
    rewriter.end()
  })

  it('passes a partial head through unchanged when the stream ends inside it', async () => {
    assert.equal((await whole('GET / HTTP/1.1\r\nHost: x\r\nAcc')).toString('latin1'), 'GET / HTTP/1.1\r\nHost: x\r\nAcc')
    assert.equal((await whole('POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc')).toString('latin1'), `POST / HTTP/1.1\r\nContent-Length: 10\r\nHost: ${HOST}\r\n\r\nabc`)
  })
})

describe('createHostRewriter: where it stops parsing', () => {
  it('passes everything after an Upgrade its server answered with 101 through (websocket frames that look like HTTP included)', async () => {
    const head = 'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n'
    const after = Buffer.concat([Buffer.from([0x81, 0x85, 1, 2, 3, 4]), b('GET / HTTP/1.1\r\nHost: y\r\n\r\n')])
    const rewriter = createHostRewriter(HOST)
    assert.equal(await writeAndCollect(rewriter, b(head)), head.replace('Host: x', `Host: ${HOST}`))
    assert.equal(await writeAndCollect(rewriter, after), '', 'the frames wait for the answer')
    rewriter.observeResponse(b('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n'))
    assert.match(rewriter.passthroughReason ?? '', /101 Switching Protocols/)
    const rest = b('GET /x HTTP/1.1\r\nHost: z\r\n\r\n')
    const got = await run([rest], rewriter)
    assert.ok(got.equals(Buffer.concat([after, rest])), got.toString('latin1'))
  })

  it('goes on rewriting after an Upgrade the server declined (h2c, a refused websocket), interim answers skipped', async () => {
    const upgrade = 'GET /one HTTP/1.1\r\nHost: 192.168.77.1:20001\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n'
    const next = 'GET /two HTTP/1.1\r\nHost: 192.168.77.1:20001\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\n'
    for (const answer of [
      ['HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n'],
      ['HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n', '\r\nHTTP/1.1 4', '26 Upgrade Required\r\n\r\n'],
      // an interim answer without fields (Expect: 100-continue), then a final one whose body holds line ends
      ['HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n'],
      ['HTTP/1.1 100 Continue\r\n', '\r\n', 'HTTP/1.1 200 OK\r\n\r\n'],
    ]) {
      const rewriter = createHostRewriter(HOST)
      assert.equal(await writeAndCollect(rewriter, b(upgrade)), upgrade.replace('192.168.77.1:20001', HOST))
      // the next request arrived before the answer (it waits), then the answer, in pieces
      assert.equal(await writeAndCollect(rewriter, b(next)), '')
      for (const piece of answer) rewriter.observeResponse(b(piece))
      assert.equal(rewriter.passthroughReason, undefined, answer.join(''))
      const out = await run([], rewriter)
      assert.equal(out.toString('latin1'), next.replace('192.168.77.1:20001', HOST), 'the held request, rewritten')
      assert.equal(rewriter.requests, 2)
    }
  })

  it('an answer that comes before the Upgrade request\'s body ends is applied at its end: declined, the next request is rewritten at once', async () => {
    const head = 'POST /one HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 5\r\n\r\n'
    const rewriter = createHostRewriter(HOST)
    assert.equal(await writeAndCollect(rewriter, b(head)), head.replace('Host: x', `Host: ${HOST}`))
    rewriter.observeResponse(b('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'))
    const next = 'GET /two HTTP/1.1\r\nHost: x\r\n\r\n'
    assert.equal(await writeAndCollect(rewriter, b(`hello${next}`)), `hello${next.replace('Host: x', `Host: ${HOST}`)}`, 'nothing held')
    assert.equal(rewriter.passthroughReason, undefined)
    // and a 101 that came early: what follows the body passes through
    const early = createHostRewriter(HOST)
    await writeAndCollect(early, b(head.replace('h2c', 'websocket')))
    early.observeResponse(b('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\n\r\n'))
    const frames = Buffer.concat([b('hello'), Buffer.from([0x81, 0x80, 1, 2, 3, 4])])
    assert.ok(Buffer.from(await writeAndCollect(early, frames), 'latin1').equals(frames))
    assert.match(early.passthroughReason ?? '', /101 Switching Protocols/)
  })

  it('an Upgrade whose answer never comes: the bytes held go on unchanged when the client ends', async () => {
    const head = 'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'
    const rewriter = createHostRewriter(HOST)
    const got = await run([b(head), b('GET / HTTP/1.1\r\nHost: y\r\n\r\n')], rewriter)
    assert.equal(got.toString('latin1'), `${head.replace('Host: x', `Host: ${HOST}`)}GET / HTTP/1.1\r\nHost: y\r\n\r\n`)
    assert.match(rewriter.passthroughReason ?? '', /before the Upgrade was answered/)
    const notHttp = createHostRewriter(HOST)
    await writeAndCollect(notHttp, b(head))
    notHttp.observeResponse(b('SSH-2.0-x\r\n'))
    assert.match(notHttp.passthroughReason ?? '', /not an HTTP\/1\.x status line/)
  })

  it('passes the tunnel after CONNECT through', async () => {
    const input = b('CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n\x16\x03\x01GET / HTTP/1.1\r\nHost: q\r\n\r\n')
    const got = await whole(input)
    assert.equal(got.toString('latin1'), `CONNECT db:5432 HTTP/1.1\r\nHost: ${HOST}\r\n\r\n\x16\x03\x01GET / HTTP/1.1\r\nHost: q\r\n\r\n`)
  })

  it('passes a client that does not speak HTTP/1.x through at once, without waiting for a line end', async () => {
    const rewriter = createHostRewriter(HOST)
    const hello = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
    assert.equal(await writeAndCollect(rewriter, hello), hello.toString('latin1'))
    assert.equal(rewriter.passthroughReason, 'not an HTTP/1.x request line')
    rewriter.end()
    const h2 = b('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')
    assert.ok((await whole(h2)).equals(h2))
    const junk = b('GET  /two-spaces HTTP/1.1\r\nHost: x\r\n\r\n')
    assert.ok((await whole(junk)).equals(junk))
  })

  it('passes through from a head it cannot frame (the head is still rewritten when it is well formed)', async () => {
    const cases: Array<[string, string]> = [
      ['POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: y\r\n\r\n', 'both Transfer-Encoding and Content-Length'],
      ['POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nGET / HTTP/1.1\r\nHost: y\r\n\r\n', 'does not end in chunked'],
      ['POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcdGET / HTTP/1.1\r\nHost: y\r\n\r\n', 'is not one length'],
      ['POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\nGET / HTTP/1.1\r\nHost: y\r\n\r\n', 'is not one length'],
      ['POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET / HTTP/1.1\r\nHost: y\r\n\r\n', 'not hex'],
      ['POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcGET / HTTP/1.1\r\nHost: y\r\n\r\n', 'not followed by CRLF'],
    ]
    for (const [input, reason] of cases) {
      const rewriter = createHostRewriter(HOST)
      const got = (await run([b(input)], rewriter)).toString('latin1')
      assert.equal(got, input.replace('Host: x', `Host: ${HOST}`), reason)
      assert.ok(rewriter.passthroughReason?.includes(reason), `${rewriter.passthroughReason} ~ ${reason}`)
    }
  })

  it('passes a head with a malformed field line through unchanged', async () => {
    for (const input of ['GET / HTTP/1.1\r\nHost : x\r\n\r\n', 'GET / HTTP/1.1\r\n folded-first\r\n\r\n', 'GET / HTTP/1.1\r\nno colon\r\nHost: x\r\n\r\n']) {
      const rewriter = createHostRewriter(HOST)
      assert.equal((await run([b(input)], rewriter)).toString('latin1'), input)
      assert.equal(rewriter.requests, 0)
    }
  })

  it('caps the head: past maxHeadBytes everything passes through and it logs once', async () => {
    const logger = recordingLogger()
    const rewriter = createHostRewriter(HOST, { logger, maxHeadBytes: 1024 })
    const big = `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(3000)}\r\n\r\nGET / HTTP/1.1\r\nHost: y\r\n\r\n`
    const pieces = [b(big.slice(0, 500)), b(big.slice(500, 1500)), b(big.slice(1500))]
    assert.equal((await run(pieces, rewriter)).toString('latin1'), big)
    assert.match(rewriter.passthroughReason ?? '', /over 1024 bytes/)
    assert.equal(logger.at('warn').length, 1)
    assert.equal(MAX_HEAD_BYTES, 64 * 1024)
    // the default cap: a head of just under 64 KiB is still rewritten
    const justUnder = `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(MAX_HEAD_BYTES - 100)}\r\n\r\n`
    assert.equal((await whole(justUnder)).toString('latin1'), justUnder.replace('Host: x', `Host: ${HOST}`))
  })
})

describe('createHostRewriter: in front of a real HTTP server', () => {
  it('keep-alive requests, a chunked POST and an Expect: 100-continue POST arrive rewritten and byte-exact', async () => {
    const seen: Array<{ host: string | undefined; method: string; url: string; sha: string; bytes: number; trailer?: string }> = []
    const server = createHttpServer((req: IncomingMessage, res) => {
      const hash = createHash('sha256')
      let bytes = 0
      req.on('data', (c: Buffer) => {
        hash.update(c)
        bytes += c.length
      })
      req.on('end', () => {
        seen.push({ host: req.headers.host, method: req.method!, url: req.url!, sha: hash.digest('hex'), bytes, trailer: req.trailers['x-sum'] })
        res.end('ok')
      })
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const backend = (server.address() as AddressInfo).port
    // a one-hop proxy: client → rewriter → server, like the forwarder's client → ingress direction
    const connections: number[] = []
    const proxy: Server = createServer({ allowHalfOpen: true }, (client) => {
      connections.push(1)
      const up = connect({ host: '127.0.0.1', port: backend, allowHalfOpen: true })
      client.pipe(createHostRewriter('svc.prod:8080')).pipe(up)
      up.pipe(client)
      client.on('error', () => up.destroy())
      up.on('error', () => client.destroy())
    })
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r))
    const port = (proxy.address() as AddressInfo).port
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    const send = (method: string, path: string, body?: Buffer, headers: Record<string, string> = {}, chunked = false) =>
      new Promise<string>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, method, path, agent, headers: { host: `lan-client:${port}`, ...headers } }, (res) => {
          let text = ''
          res.on('data', (c) => (text += c))
          res.on('end', () => resolve(text))
        })
        req.on('error', reject)
        if (headers.expect) {
          req.on('continue', () => req.end(body))
          return
        }
        if (chunked && body) {
          for (let at = 0; at < body.length; at += 7000) req.write(body.subarray(at, at + 7000))
          req.addTrailers({ 'x-sum': 'done' })
          req.end()
          return
        }
        req.end(body)
      })
    try {
      const big = randomBytes(300_000)
      const small = randomBytes(1000)
      assert.equal(await send('GET', '/1'), 'ok')
      assert.equal(await send('POST', '/chunked', big, { 'transfer-encoding': 'chunked', trailer: 'x-sum' }, true), 'ok')
      assert.equal(await send('POST', '/expect', small, { expect: '100-continue', 'content-length': String(small.length) }), 'ok')
      assert.equal(await send('GET', '/4'), 'ok')
      assert.equal(connections.length, 1, 'every request went over one keep-alive connection')
      assert.deepEqual(seen.map((s) => s.host), ['svc.prod:8080', 'svc.prod:8080', 'svc.prod:8080', 'svc.prod:8080'])
      assert.deepEqual(seen.map((s) => s.url), ['/1', '/chunked', '/expect', '/4'])
      const sha = (x: Buffer) => createHash('sha256').update(x).digest('hex')
      assert.equal(seen[1]!.bytes, big.length)
      assert.equal(seen[1]!.sha, sha(big))
      assert.equal(seen[1]!.trailer, 'done')
      assert.equal(seen[2]!.sha, sha(small))
    } finally {
      agent.destroy()
      server.closeAllConnections()
      await new Promise<void>((r) => proxy.close(() => r()))
      await new Promise<void>((r) => server.close(() => r()))
    }
  })
})
