import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import https from 'node:https'
import net, { type AddressInfo } from 'node:net'
import { KEEPALIVE_CLOSED, PROXY_REFUSED, nodeHttpFetch, type ApiRequestInit } from './node-http-fetch.js'
import { TestCa } from '../testing/test-ca.js'

const get = (signal = new AbortController().signal): ApiRequestInit => ({ method: 'GET', headers: {}, signal, redirect: 'manual' })

async function listen(server: net.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `127.0.0.1:${(server.address() as AddressInfo).port}`
}

describe('nodeHttpFetch', () => {
  const seen: { method?: string; headers: http.IncomingHttpHeaders; body: string; url?: string }[] = []
  let base: string
  const server = http.createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (d: string) => (body += d))
    req.on('end', () => {
      seen.push({ method: req.method, headers: req.headers, body, url: req.url })
      if (req.url === '/json') {
        res.setHeader('Set-Cookie', ['a=1', 'b=2'])
        res.setHeader('Retry-After', '7')
        // a multi-byte character split across two writes
        const bytes = Buffer.from('{"name":"Zoë ✓"}')
        res.writeHead(200, 'Fine', { 'content-length': bytes.length })
        res.write(bytes.subarray(0, 12))
        setTimeout(() => res.end(bytes.subarray(12)), 20)
      } else if (req.url === '/redirect') {
        res.writeHead(302, { location: '/json' }).end()
      } else if (req.url === '/cut') {
        res.writeHead(200, { 'content-length': 100 })
        res.write('only part of it')
        setTimeout(() => res.socket?.destroy(), 20)
      } else if (req.url === '/slow-body') {
        res.writeHead(200, { 'content-length': 100 })
        res.write('a start')
      } else if (req.url === '/endless') {
        // a body that never ends, faster than any page: the reader must stop it
        res.writeHead(200)
        const chunk = 'x'.repeat(1 << 20)
        const pump = () => {
          while (!res.destroyed && res.write(chunk));
          if (!res.destroyed) res.once('drain', pump)
        }
        pump()
      } else if (req.url === '/never') {
        // no answer at all
      } else res.end(`${req.method} ${req.url}`)
    })
  })

  before(async () => {
    base = `http://${await listen(server)}`
  })
  after(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })

  it('answers with the status, the reason phrase, headers by any case (repeated ones joined) and the body as text', async () => {
    const res = await nodeHttpFetch(new URL('/json', base), get())
    assert.equal(res.status, 200)
    assert.equal(res.statusText, 'Fine')
    assert.equal(res.headers.get('Retry-After'), '7')
    assert.equal(res.headers.get('set-cookie'), 'a=1, b=2')
    assert.equal(res.headers.get('x-absent'), null)
    assert.deepEqual(JSON.parse(await res.text()), { name: 'Zoë ✓' })
  })

  it('sends the method, the headers and the body', async () => {
    const res = await nodeHttpFetch(new URL('/echo?x=1', base), { ...get(), method: 'PATCH', headers: { 'content-type': 'application/json', authorization: 'Bearer k' }, body: '{"a":"ü"}' })
    assert.equal(await res.text(), 'PATCH /echo?x=1')
    const last = seen.at(-1)!
    assert.equal(last.headers['content-type'], 'application/json')
    assert.equal(last.headers.authorization, 'Bearer k')
    assert.equal(last.headers['content-length'], String(Buffer.byteLength('{"a":"ü"}')))
    assert.equal(last.body, '{"a":"ü"}')
  })

  it('does not follow a redirect: the 3xx is the answer', async () => {
    const res = await nodeHttpFetch(new URL('/redirect', base), get())
    assert.equal(res.status, 302)
    assert.equal(res.headers.get('location'), '/json')
  })

  it('rejects text() when the connection breaks before the body is complete', async () => {
    const res = await nodeHttpFetch(new URL('/cut', base), get())
    assert.equal(res.status, 200)
    await assert.rejects(res.text())
  })

  it('refuses a reply body past MAX_REPLY_CHARS instead of growing without bound', async () => {
    const res = await nodeHttpFetch(new URL('/endless', base), get())
    await assert.rejects(res.text(), /the reply is larger than 16 MiB/)
  })

  it('stops on abort: before the answer, and while the body is read', async () => {
    const waiting = new AbortController()
    const pending = nodeHttpFetch(new URL('/never', base), get(waiting.signal))
    setTimeout(() => waiting.abort(new Error('stop now')), 20)
    await assert.rejects(pending, (e: Error) => e.name === 'AbortError' || /stop now/.test(e.message))

    const reading = new AbortController()
    const res = await nodeHttpFetch(new URL('/slow-body', base), get(reading.signal))
    const text = res.text()
    reading.abort(new Error('stop reading'))
    await assert.rejects(text)
  })

  it('rejects a refused connection with its code', async () => {
    const probe = net.createServer()
    const address = await listen(probe)
    await new Promise<void>((resolve) => probe.close(() => resolve()))
    await assert.rejects(nodeHttpFetch(new URL(`http://${address}/`), get()), (e: NodeJS.ErrnoException) => e.code === 'ECONNREFUSED')
  })

  it('names a request sent on a kept-alive connection the server had closed (safe to send again)', async () => {
    // answers the first request of a connection and keeps it open; cuts the connection at the second
    const raw = net.createServer((socket) => {
      let requests = 0
      socket.on('data', (d) => {
        for (let i = d.indexOf('\r\n\r\n'); i !== -1; i = d.indexOf('\r\n\r\n', i + 4)) {
          requests++
          if (requests === 1) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\nok')
          else socket.resetAndDestroy()
        }
      })
    })
    const address = await listen(raw)
    try {
      const first = await nodeHttpFetch(new URL(`http://${address}/a`), get())
      assert.equal(await first.text(), 'ok')
      await assert.rejects(nodeHttpFetch(new URL(`http://${address}/b`), { ...get(), method: 'POST', body: '{}' }), (e: NodeJS.ErrnoException) => e.code === KEEPALIVE_CLOSED)
    } finally {
      await new Promise<void>((resolve) => raw.close(() => resolve()))
    }
  })

  it('speaks HTTPS for an https URL and verifies the server certificate: an unknown CA is refused', async () => {
    const ca = TestCa.create({ commonName: 'nobody-trusts-me' })
    const pair = ca.issueKeyPair({ usage: 'server', subject: { commonName: 'localhost' }, ipAddresses: ['127.0.0.1'] })
    const tlsServer = https.createServer({ cert: pair.certPem, key: pair.keyPem }, (_req, res) => res.end('should not be read'))
    const address = await listen(tlsServer)
    try {
      await assert.rejects(nodeHttpFetch(new URL(`https://${address}/`), get()), (e: NodeJS.ErrnoException) => /CERT|SIGNATURE|ISSUER/.test(e.code ?? ''))
    } finally {
      tlsServer.closeAllConnections()
      await new Promise<void>((resolve) => tlsServer.close(() => resolve()))
    }
  })
})

describe('nodeHttpFetch through the proxy the environment names', () => {
  const PROXY_ENV = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy', 'NO_PROXY', 'no_proxy']

  /** `fn` with only `vars` of the proxy variables set; the environment as it was afterwards. */
  async function withProxyEnv(vars: Record<string, string>, fn: () => Promise<void>): Promise<void> {
    const saved = Object.fromEntries(PROXY_ENV.map((name) => [name, process.env[name]]))
    for (const name of PROXY_ENV) delete process.env[name]
    Object.assign(process.env, vars)
    try {
      await fn()
    } finally {
      for (const name of PROXY_ENV) {
        if (saved[name] === undefined) delete process.env[name]
        else process.env[name] = saved[name]
      }
    }
  }

  it('a proxy that will not tunnel (403, 407) is its own failure, never the API\'s answer: the key is not judged by it', async () => {
    const proxy = http.createServer((_req, res) => res.writeHead(405).end())
    proxy.on('connect', (_req: http.IncomingMessage, client: net.Socket) => {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="corp"\r\nContent-Length: 0\r\n\r\n')
    })
    const proxyUrl = `http://${await listen(proxy)}`
    try {
      await withProxyEnv({ HTTP_PROXY: proxyUrl }, async () => {
        await assert.rejects(nodeHttpFetch(new URL('http://api.example.test:8080/kubernetes_operators'), get()), (e: NodeJS.ErrnoException) => {
          assert.equal(e.code, PROXY_REFUSED)
          assert.equal(e.message, 'the proxy would not connect to api.example.test:8080: it answered HTTP 407 Proxy Authentication Required (check HTTPS_PROXY, its credentials, and NO_PROXY)')
          return true
        })
      })
    } finally {
      proxy.closeAllConnections()
      await new Promise<void>((resolve) => proxy.close(() => resolve()))
    }
  })

  it('tunnels with CONNECT to the host the URL names; NO_PROXY and loopback go direct', async () => {
    const server = http.createServer((req, res) => res.end(`${req.method} ${req.url} ${req.headers.authorization ?? ''}`))
    const serverAddress = await listen(server)
    const serverPort = serverAddress.split(':')[1]
    // the proxy: every CONNECT target is this test's server; what was asked is kept
    const connects: string[] = []
    const proxy = http.createServer((_req, res) => res.writeHead(405).end())
    proxy.on('connect', (req: http.IncomingMessage, client: net.Socket) => {
      connects.push(req.url ?? '')
      const upstream = net.connect(Number(serverPort), '127.0.0.1', () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
        upstream.pipe(client).pipe(upstream)
      })
      upstream.on('error', () => client.destroy())
      client.on('error', () => upstream.destroy())
    })
    const proxyUrl = `http://${await listen(proxy)}`
    try {
      const far = new URL(`http://api.example.test:${serverPort}/kubernetes_operators`)
      await withProxyEnv({ HTTP_PROXY: proxyUrl }, async () => {
        const res = await nodeHttpFetch(far, { ...get(), headers: { authorization: 'Bearer k' } })
        assert.equal(await res.text(), 'GET /kubernetes_operators Bearer k')
        assert.deepEqual(connects, [`api.example.test:${serverPort}`], 'the proxy saw the host and port, in a CONNECT')
        const direct = await nodeHttpFetch(new URL(`http://${serverAddress}/loopback`), get())
        assert.equal(await direct.text(), 'GET /loopback ')
        assert.equal(connects.length, 1, 'loopback is not proxied')
      })
      await withProxyEnv({ http_proxy: proxyUrl, NO_PROXY: '.example.test' }, async () => {
        // direct: the name resolves nowhere here, so the request fails without reaching the proxy
        await assert.rejects(nodeHttpFetch(far, get()))
        assert.equal(connects.length, 1, 'NO_PROXY goes direct')
      })
      await withProxyEnv({}, async () => {
        await assert.rejects(nodeHttpFetch(far, get()))
        assert.equal(connects.length, 1, 'no proxy variable: direct')
      })
      await withProxyEnv({ HTTP_PROXY: 'socks5://127.0.0.1:1080' }, async () => {
        await assert.rejects(nodeHttpFetch(far, get()), (e: NodeJS.ErrnoException) => e.code === PROXY_REFUSED && /socks5:\/\/127\.0\.0\.1:1080 .* is not an HTTP\(S\) proxy/.test(e.message))
      })
    } finally {
      for (const s of [server, proxy]) {
        s.closeAllConnections()
        await new Promise<void>((resolve) => s.close(() => resolve()))
      }
    }
  })
})
