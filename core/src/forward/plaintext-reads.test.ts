import assert from 'node:assert/strict'
import { once } from 'node:events'
import type net from 'node:net'
import { Writable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import tls from 'node:tls'
import { createTestPki, type TestPki } from '../testing/test-pki.js'
import { PlaintextReads, RECORD_BYTES } from './plaintext-reads.js'
import { pumpPlaintext } from './pump.js'

/** Byte `i` of the payload of connection `id`: every connection's bytes differ, so a byte written over shows. */
const byteAt = (id: number, i: number): number => (i * 7 + id * 31) % 251

function payload(id: number, bytes: number): Buffer {
  const b = Buffer.alloc(bytes)
  for (let i = 0; i < bytes; i++) b[i] = byteAt(id, i)
  return b
}

/** A TLS server that sends `payload(id, bytes)` in 64 KiB writes for the request `<id> <bytes>`, then ends. */
function startServer(pki: TestPki): Promise<tls.Server> {
  const server = tls.createServer({ cert: pki.ingress.certPem, key: pki.ingress.keyPem }, (s) => {
    s.once('data', async (d: Buffer) => {
      const [id, bytes] = d.toString().split(' ').map(Number) as [number, number]
      const all = payload(id, bytes)
      for (let at = 0; at < bytes; at += 64 * 1024) {
        if (!s.write(all.subarray(at, at + 64 * 1024))) await once(s, 'drain')
      }
      s.end()
    })
    s.on('error', () => {})
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)))
}

function connect(pki: TestPki, server: tls.Server, id: number, bytes: number): { socket: tls.TLSSocket; reads: PlaintextReads } {
  const reads = new PlaintextReads()
  const socket = tls.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, ca: pki.ingressCaPem, onread: reads.onread } as tls.ConnectionOptions)
  reads.attach(socket)
  socket.once('secureConnect', () => socket.write(`${id} ${bytes}`))
  return { socket, reads }
}

/** A writable that keeps what it is given and records one entry per _write/_writev call. */
class Sink extends Writable {
  readonly calls: number[] = []
  readonly chunks: Buffer[] = []
  override _writev(chunks: { chunk: Buffer }[], cb: () => void): void {
    this.calls.push(chunks.reduce((n, c) => n + c.chunk.length, 0))
    for (const c of chunks) this.chunks.push(Buffer.from(c.chunk))
    cb()
  }
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.calls.push(chunk.length)
    this.chunks.push(Buffer.from(chunk))
    cb()
  }
}

describe('PlaintextReads', () => {
  let pki: TestPki
  let server: tls.Server
  before(async () => {
    pki = createTestPki()
    server = await startServer(pki)
  })
  after(() => server.close())

  it('reads like any socket until consume(): data, pause and resume, end; every byte in order', async () => {
    const bytes = 3 * 1024 * 1024 + 123
    const { socket } = connect(pki, server, 1, bytes)
    const got: Buffer[] = []
    let paused = false
    socket.on('data', (c: Buffer) => {
      got.push(Buffer.from(c))
      if (!paused && got.length === 10) {
        paused = true
        socket.pause()
        setTimeout(() => socket.resume(), 20)
      }
    })
    await once(socket, 'end')
    socket.destroy()
    assert.ok(paused)
    assert.ok(Buffer.concat(got).equals(payload(1, bytes)), 'the bytes as sent')
  })

  it('many connections at once each get their own bytes: nothing handed out is written over', async () => {
    const bytes = 2 * 1024 * 1024 + 5
    const conns = Array.from({ length: 6 }, (_, id) => ({ id, ...connect(pki, server, id, bytes), sink: new Sink() }))
    for (const c of conns) pumpPlaintext(c.reads, c.socket, c.sink)
    await Promise.all(conns.map((c) => once(c.sink, 'finish')))
    for (const c of conns) {
      c.socket.destroy()
      assert.ok(Buffer.concat(c.sink.chunks).equals(payload(c.id, bytes)), `connection ${c.id}: the bytes as sent`)
    }
  })

  it('pumpPlaintext writes a burst of full records as one chunk, at the end of its turn of the event loop', async () => {
    const bytes = 8 * 1024 * 1024
    const { socket, reads } = connect(pki, server, 2, bytes)
    const sink = new Sink()
    let chunks = 0
    pumpPlaintext(reads, socket, sink, () => chunks++)
    await once(sink, 'finish')
    socket.destroy()
    assert.ok(Buffer.concat(sink.chunks).equals(payload(2, bytes)))
    assert.ok(chunks >= bytes / RECORD_BYTES, `one chunk per record (${chunks})`)
    assert.ok(sink.calls.length < chunks / 2, `${sink.calls.length} writes for ${chunks} records`)
  })

  it('pumpPlaintext writes first what the stream took in before, then pauses the socket while the destination is full', async () => {
    const bytes = 4 * 1024 * 1024
    const { socket, reads } = connect(pki, server, 3, bytes)
    const first = Buffer.from(((await once(socket, 'data')) as [Buffer])[0])
    socket.pause()
    await new Promise((r) => setTimeout(r, 20)) // more arrives into the stream meanwhile
    let release!: () => void
    const held = new Promise<void>((r) => (release = r))
    const received: Buffer[] = [first]
    const slow = new Writable({
      highWaterMark: 16 * 1024,
      write(chunk: Buffer, _enc, cb) {
        received.push(Buffer.from(chunk))
        void held.then(() => cb())
      },
    })
    pumpPlaintext(reads, socket, slow)
    await new Promise((r) => setTimeout(r, 100))
    assert.ok(socket.isPaused(), 'paused against a destination that does not drain')
    release()
    await once(slow, 'finish')
    socket.destroy()
    assert.ok(Buffer.concat(received).equals(payload(3, bytes)), 'the bytes as sent, in order')
  })
})
