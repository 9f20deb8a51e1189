import assert from 'node:assert/strict'
import net from 'node:net'
import type tls from 'node:tls'
import { describe, it } from 'node:test'
import { exposedGc } from '../util/exposed-gc.js'
import { CarriedConnection } from './carry-connection.js'
import type { Dialer, DialResult } from './ingress-dialer.js'

describe('CarriedConnection', () => {
  it('keeps nothing of its dial while the connection is open: the abort controller goes with the dial', async () => {
    const gc = exposedGc()
    assert.ok(gc, 'gc() can be had here')
    const upstream = net.createServer({ allowHalfOpen: true }, (s) => s.on('error', () => {}).pipe(s))
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r))
    let signal: WeakRef<AbortSignal> | undefined
    // the upstream socket after the ConnResponse: a plain TCP connection to an echo server, paused
    const dialer: Dialer = {
      dial: ({ signal: s }) => {
        signal = new WeakRef(s!)
        return new Promise<DialResult>((resolve, reject) => {
          const socket = net.connect({ host: '127.0.0.1', port: (upstream.address() as net.AddressInfo).port, allowHalfOpen: true })
          socket.once('connect', () => {
            socket.pause()
            resolve({ socket: socket as tls.TLSSocket, response: { endpointId: 'ep_t', proto: 'tcp', errorCode: '', errorMessage: '', notices: [] }, early: Buffer.alloc(0) })
          })
          socket.once('error', reject)
        })
      },
    }
    let carried: CarriedConnection | undefined
    const front = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
      carried = new CarriedConnection({ client, dialer, hostname: 't.prod', port: 1, idleTimeoutMs: 0 })
    })
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r))
    const client = net.connect((front.address() as net.AddressInfo).port, '127.0.0.1')
    try {
      client.write('ping')
      const echoed = await new Promise<Buffer>((r) => client.once('data', r))
      assert.equal(echoed.toString(), 'ping', 'the connection is carried and open')
      // a WeakRef's target lives to the end of the job that made it: collect in later turns
      for (let i = 0; i < 5 && signal!.deref() !== undefined; i++) {
        await new Promise((r) => setImmediate(r))
        gc()
      }
      assert.equal(signal!.deref(), undefined, "the open connection still holds its dial's abort signal")
    } finally {
      client.destroy()
      await carried?.done
      await Promise.all([front, upstream].map((s) => new Promise((r) => s.close(r))))
    }
  })
})
