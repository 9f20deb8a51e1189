import assert from 'node:assert/strict'
import { once } from 'node:events'
import net from 'node:net'
import { PassThrough, Writable } from 'node:stream'
import { describe, it } from 'node:test'
import { PUMP_MAX_QUEUED_BYTES, pump } from './pump.js'

/** A full TLS record's plaintext (RFC 8446 §5.1). */
const RECORD = 16 * 1024

/** A writable that records how its chunks arrived: one entry per _write/_writev call. */
class RecordingSink extends Writable {
  readonly calls: number[] = []
  bytes = 0
  private held: (() => void)[] = []
  constructor(private holding = false) {
    super({ highWaterMark: 16 * 1024 })
  }
  override _writev(chunks: { chunk: Buffer }[], cb: () => void): void {
    this.take(chunks.reduce((n, c) => n + c.chunk.length, 0), cb)
  }
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.take(chunk.length, cb)
  }
  release(): void {
    this.holding = false
    for (const cb of this.held.splice(0)) cb()
  }
  private take(n: number, cb: () => void): void {
    this.calls.push(n)
    this.bytes += n
    if (this.holding) this.held.push(cb)
    else cb()
  }
}

describe('pump', () => {
  it('chunks that arrive in one turn of the event loop leave in one writev at its end; none waits longer', async () => {
    const src = new PassThrough()
    const dst = new RecordingSink()
    pump(src, dst)
    for (let i = 0; i < 4; i++) src.write(Buffer.alloc(RECORD))
    assert.deepEqual(dst.calls, [], 'held while the turn lasts')
    await new Promise((r) => setImmediate(r))
    assert.deepEqual(dst.calls, [4 * RECORD], 'four records, one write')
    src.write(Buffer.from('HTTP/1.1 200 OK\r\n\r\n')) // an answer's head and body as two records
    src.write(Buffer.from('hello'))
    await new Promise((r) => setImmediate(r))
    assert.deepEqual(dst.calls, [4 * RECORD, 19 + 5], 'head and body in one write, in the next turn')
  })

  it('pauses the source while more than the limit waits in the destination, resumes on drain, ends it at the end', async () => {
    const src = new PassThrough({ highWaterMark: 16 * 1024 })
    const dst = new RecordingSink(true) // a reader that does not read
    pump(src, dst)
    const total = 4 * 1024 * 1024
    let offered = 0
    const feed = (): void => {
      while (offered < total && src.write(Buffer.alloc(RECORD))) offered += RECORD
    }
    src.on('drain', () => {
      offered += RECORD // the write that returned false was still taken
      feed()
    })
    feed()
    await new Promise((r) => setTimeout(r, 50))
    assert.ok(src.isPaused(), 'source paused against a reader that does not read')
    assert.ok(dst.writableLength <= PUMP_MAX_QUEUED_BYTES + RECORD, `queued ${dst.writableLength} bytes`)
    assert.ok(offered < total / 4, `the writer was held back (offered ${offered} of ${total})`)
    const finished = once(dst, 'finish')
    dst.release() // the reader reads from now on: drain, resume, the rest flows
    while (offered < total) await new Promise((r) => setTimeout(r, 5))
    src.end()
    await finished
    assert.equal(dst.bytes, total, 'every byte arrived, then the end')
  })

  it("between real sockets: every byte, then the source's end ends the destination's write half", async () => {
    const server = net.createServer({ allowHalfOpen: true })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const { port } = server.address() as net.AddressInfo
    const client = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true })
    const [accepted] = (await once(server, 'connection')) as [net.Socket]
    // the accepted socket echoes into itself: its read side ends (client's FIN), then pump ends its write side
    pump(accepted, accepted)
    const received: Buffer[] = []
    client.on('data', (c: Buffer) => received.push(c))
    const payload = Buffer.alloc(1024 * 1024, 7)
    client.end(payload)
    await once(client, 'end')
    assert.equal(Buffer.concat(received).length, payload.length)
    assert.ok(Buffer.concat(received).equals(payload))
    client.destroy()
    accepted.destroy()
    server.close()
  })
})
