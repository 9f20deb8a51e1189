import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createDuplexPair } from './duplex-pair.js'
import { relay } from './relay.js'

const turns = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r))
}

/** client ⇄ [x1|x2] ⇄ relay ⇄ [y1|y2] ⇄ server */
function setup() {
  const [client, x2] = createDuplexPair()
  const [y1, server] = createDuplexPair()
  const done = relay(x2, y1)
  return { client, server, done }
}

describe('relay over socket pairs', () => {
  it("an end of a that aEndedCleanly calls a reset reaches b as a reset (closed, never ended), not as the request's end", async () => {
    for (const clean of [true, false]) {
      const [client, x2] = createDuplexPair()
      const [y1, server] = createDuplexPair()
      const done = relay(x2, y1, { aEndedCleanly: () => clean })
      let ended = false
      server.on('error', () => {})
      server.on('data', () => {})
      server.on('end', () => (ended = true))
      const closed = new Promise((resolve) => server.once('close', resolve))
      client.on('error', () => {})
      client.on('data', () => {})
      client.end('PUT 100\npartial')
      if (clean) server.end()
      await closed
      assert.equal(ended, clean)
      await done
    }
  })


  it('applies backpressure: a reader that does not read stops the writer', async () => {
    const { client, server, done } = setup()
    const chunk = Buffer.alloc(64 * 1024)
    const total = 64
    let written = 0
    let blocked = false
    const pump = () => {
      while (written < total) {
        written++
        if (!client.write(chunk)) {
          blocked = true
          client.once('drain', () => {
            blocked = false
            pump()
          })
          return
        }
      }
      client.end()
    }
    pump()
    await turns(200) // without backpressure every turn would move more chunks
    assert.equal(blocked, true)
    assert.ok(written <= 8, `${written} chunks accepted with nobody reading`)
    let received = 0
    server.on('data', (c: Buffer) => (received += c.length))
    await new Promise((r) => server.once('end', r))
    assert.equal(received, total * chunk.length, 'reading releases the writer and everything arrives')
    server.end()
    await done
  })

  it('respects half-close in both directions and resolves when both are done', async () => {
    const { client, server, done } = setup()
    const got: string[] = []
    server.on('data', (c: Buffer) => got.push(`s:${c}`))
    client.on('data', (c: Buffer) => got.push(`c:${c}`))
    const serverEnded = new Promise((r) => server.once('end', r))
    client.end('ping')
    await serverEnded
    // the server can still answer after the client's half-close
    server.end('pong')
    await new Promise((r) => client.once('end', r))
    await done
    assert.deepEqual(got, ['s:ping', 'c:pong'])
  })

  it('an abort on one side destroys the other', async () => {
    const { client, server, done } = setup()
    const serverClosed = new Promise((r) => server.once('close', r))
    server.on('error', () => {})
    client.on('error', () => {})
    client.destroy(new Error('boom'))
    await serverClosed
    await done
    assert.equal(server.destroyed, true)
  })

  it('cuts after exactly N bytes toward the first stream', async () => {
    const [client, x2] = createDuplexPair()
    const [y1, server] = createDuplexPair()
    let cut = 0
    const done = relay(x2, y1, { cutAfterBytesToA: 10, onCut: () => cut++ })
    let received = Buffer.alloc(0)
    client.on('data', (c: Buffer) => (received = Buffer.concat([received, c])))
    client.on('error', () => {})
    server.on('error', () => {})
    server.write('0123456')
    server.write('789abcdef')
    await done
    assert.equal(received.toString(), '0123456789')
    assert.equal(cut, 1)
  })
})
