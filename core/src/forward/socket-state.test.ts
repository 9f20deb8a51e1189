import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { readdirSync, readFileSync } from 'node:fs'
import type net from 'node:net'
import { endianness } from 'node:os'
import tls from 'node:tls'
import { createTestPki } from '../testing/test-pki.js'
import { resetUnderEnd } from './carry-connection.js'
import { LINGER_RESET, resetSocket, SOCKET_OPTIONS, socketCallsLoaded } from './socket-state.js'

describe('socket-state on macOS', () => {
  // what clang read from Apple's headers for both architectures (drivers/darwin-utun/scripts/probe-layouts.sh)
  const layouts = JSON.parse(readFileSync(new URL('./socket-state-darwin.layouts.json', import.meta.url), 'utf8')) as { targets: Record<string, Record<string, number>> }

  it('SOL_SOCKET, SO_ERROR and SO_LINGER are the headers\' for x86_64 and arm64', () => {
    assert.deepEqual(Object.keys(layouts.targets).sort(), ['arm64-apple-macos11', 'x86_64-apple-macos11'])
    for (const [target, h] of Object.entries(layouts.targets)) {
      assert.deepEqual(SOCKET_OPTIONS.darwin, { SOL_SOCKET: h.SOL_SOCKET, SO_ERROR: h.SO_ERROR, SO_LINGER: h.SO_LINGER }, target)
    }
  })

  it('the struct linger it sets is { l_onoff 1, l_linger 0 } at the headers\' offsets (both little-endian)', () => {
    assert.equal(endianness(), 'LE', 'this test reads the host-order buffer as the little-endian macOS targets do')
    for (const [target, h] of Object.entries(layouts.targets)) {
      assert.equal(LINGER_RESET.length, h.sizeof_linger, target)
      assert.equal(LINGER_RESET.readInt32LE(h.offsetof_linger__l_onoff!), 1, target)
      assert.equal(LINGER_RESET.readInt32LE(h.offsetof_linger__l_linger!), 0, target)
    }
  })
})

describe('resetSocket on a TLS socket (no koffi needed: in any thread)', () => {
  /** A TLS server that says, per connection, when it has read `expect` bytes and how it ended ('reset' or 'end'). */
  async function tlsServer(expect: number) {
    const pki = createTestPki()
    const conns: Array<{ received: Promise<void>; ended: Promise<string> }> = []
    const server = tls.createServer({ cert: pki.ingress.certPem, key: pki.ingress.keyPem }, (s) => {
      let got = 0
      let received!: () => void
      conns.push({
        received: new Promise<void>((r) => (received = r)),
        ended: new Promise((resolve) => {
          s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNRESET' ? 'reset' : `error ${e.code}`))
          // an RST behind data may come as an 'end' (socket-state.ts): the socket's pending error tells
          s.on('end', () => resolve(resetUnderEnd(s) ? 'reset' : 'end'))
        }),
      })
      s.on('data', (d: Buffer) => (got += d.length) >= expect && received())
    })
    // every accepted TCP socket, a handshake or not (a client reset while connecting may still have been accepted)
    const sockets: Array<Promise<void>> = []
    server.on('connection', (c: net.Socket) => sockets.push(new Promise((r) => c.once('close', () => r()))))
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const { port } = server.address() as net.AddressInfo
    return { port, conns, allClosed: () => Promise.all(sockets), close: () => new Promise<void>((r) => server.close(() => r())) }
  }
  const fds = () => readdirSync('/proc/self/fd').length
  const connect = (port: number, options: tls.ConnectionOptions = {}) => {
    const s = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...options })
    s.on('error', () => {})
    return s
  }

  it('an open one: the peer sees a reset, and it closes', { skip: process.platform !== 'linux' && 'counts /proc/self/fd' }, async () => {
    assert.equal(await socketCallsLoaded, true, 'the server side tells a reset under an end by SO_ERROR')
    const server = await tlsServer(20_000)
    try {
      const base = fds()
      for (let i = 0; i < 20; i++) {
        const s = connect(server.port)
        await once(s, 'secureConnect')
        s.write(Buffer.alloc(20_000, 1))
        await until(() => server.conns[i])
        await server.conns[i]!.received // all of it read: the RST then comes alone, never behind data
        resetSocket(s)
        await once(s, 'close')
      }
      assert.deepEqual(await Promise.all(server.conns.map((c) => c.ended)), Array(20).fill('reset'))
      await server.allClosed()
      assert.equal(fds(), base, 'no descriptor left')
    } finally {
      await server.close()
    }
  })

  it('one still connecting, or whose own end() is under way (which libuv will not reset): it still closes, nothing left', { skip: process.platform !== 'linux' && 'counts /proc/self/fd' }, async () => {
    const server = await tlsServer(1 << 20)
    try {
      const base = fds()
      for (let i = 0; i < 20; i++) {
        const connecting = connect(server.port)
        resetSocket(connecting)
        await once(connecting, 'close')
        // allowHalfOpen: tls.connect hands it to its TLSSocket (lib/_tls_wrap.js), though @types/node leaves it out
        const ending = connect(server.port, { allowHalfOpen: true } as tls.ConnectionOptions)
        await once(ending, 'secureConnect')
        ending.end(Buffer.alloc(1 << 20, 2))
        await new Promise((r) => setImmediate(r))
        resetSocket(ending)
        await once(ending, 'close')
      }
      await server.allClosed()
      assert.equal(fds(), base, 'no descriptor left')
    } finally {
      await server.close()
    }
  })
})

/** Resolves once `f()` is truthy, checking at each turn of the event loop. */
async function until(f: () => unknown): Promise<void> {
  while (!f()) await new Promise((r) => setImmediate(r))
}
