import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { once } from 'node:events'
import { FakeInterface } from './fakes/fake-interface.js'
import { RecordingNameResolver } from './fakes/recording-name-resolver.js'
import { LoopbackForwarder } from './fakes/loopback-forwarder.js'
import { freePort } from './net-probes.js'
import { isNgrokdError, PermissionError } from '../errors/ngrokd-error.js'

describe('FakeInterface', () => {
  it('fails on demand, for the given address and number of times', async () => {
    const iface = new FakeInterface()
    await iface.open({ name: 'f0', subnet: '10.9.0.0/24' })
    iface.injectFailure('addAddress', { error: () => new PermissionError('no'), address: '10.9.0.5', times: 2 })
    await iface.addAddress({ address: '10.9.0.4' })
    for (let i = 0; i < 2; i++) await assert.rejects(iface.addAddress({ address: '10.9.0.5' }), (e) => isNgrokdError(e, 'NGROKD_ERR_PERMISSION'))
    await iface.addAddress({ address: '10.9.0.5' })
    iface.injectFailure('listAddresses')
    await assert.rejects(iface.listAddresses(), (e) => isNgrokdError(e, 'NGROKD_ERR_SYSCALL'))
    assert.deepEqual((await iface.listAddresses()).sort(), ['10.9.0.4', '10.9.0.5'])
  })

  it('records every call in order', async () => {
    const iface = new FakeInterface()
    await iface.open({ name: 'f1', subnet: '10.9.0.0/24' })
    await iface.applyAddresses({ add: ['10.9.0.2'], remove: ['10.9.0.3'] })
    await iface.close({ removeInterface: true })
    assert.deepEqual(
      iface.calls.map((c) => c.method),
      ['open', 'applyAddresses', 'removeAddress', 'addAddress', 'close'],
    )
    assert.deepEqual(iface.calls[1]!.args, { add: ['10.9.0.2'], remove: ['10.9.0.3'] })
  })

  it('refuses addresses outside the subnet, and a loopbackOnly fake substitutes a loopback subnet', async () => {
    const plain = new FakeInterface()
    await plain.open({ name: 'f2', subnet: '10.9.0.0/24' })
    await assert.rejects(plain.addAddress({ address: '10.8.0.2' }), (e) => isNgrokdError(e, 'NGROKD_ERR_DRIVER_MISUSE'))
    const lo = new FakeInterface({ capabilities: { loopbackOnly: true }, loopbackSubnet: '127.50.0.0/24' })
    const info = await lo.open({ name: 'f3', subnet: '10.9.0.0/24' })
    assert.equal(info.subnet, '127.50.0.0/24')
    await lo.addAddress({ address: '127.50.0.9' })
    await assert.rejects(lo.addAddress({ address: '10.9.0.2' }), (e) => isNgrokdError(e, 'NGROKD_ERR_DRIVER_MISUSE'))
  })
})

describe('RecordingNameResolver', () => {
  it('records every publish with what it reported', async () => {
    const names = new RecordingNameResolver()
    await names.open()
    const a = { hostname: 'api.prod', address: '10.107.0.2' }
    await names.publish({ records: [a] })
    await names.publish({ records: [a] })
    await names.publish({ records: [] })
    assert.deepEqual(names.publishes, [
      { records: [a], changed: true },
      { records: [a], changed: false },
      { records: [], changed: true },
    ])
  })
})

describe('LoopbackForwarder', () => {
  let echo: Server
  let reverse: Server
  before(async () => {
    echo = createServer({ allowHalfOpen: true }, (s) => s.pipe(s))
    // answers with what it got, reversed, once the client has half-closed
    reverse = createServer({ allowHalfOpen: true }, (s) => {
      const chunks: Buffer[] = []
      s.on('data', (c: Buffer) => chunks.push(c))
      s.on('end', () => s.end(Buffer.from([...Buffer.concat(chunks)].reverse())))
    })
    await Promise.all([echo, reverse].map((srv) => new Promise<void>((resolve) => srv.listen({ host: '127.0.0.1', port: 0 }, resolve))))
  })
  after(async () => {
    await Promise.all([echo, reverse].map((srv) => new Promise((resolve) => srv.close(resolve))))
  })
  const portOf = (s: Server) => (s.address() as { port: number }).port

  async function exchange(port: number, payload: Buffer): Promise<Buffer> {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true })
    await once(socket, 'connect')
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.end(payload) // half-close: the answer must still arrive
    await once(socket, 'end')
    socket.destroy()
    return Buffer.concat(chunks)
  }

  it('pipes bytes both ways, carries half-close, counts bytes and connections', async () => {
    const fwd = new LoopbackForwarder({ upstream: (t) => ({ host: '127.0.0.1', port: portOf(t.proto === 'tcp' ? reverse : echo) }) })
    const port = await freePort()
    try {
      await fwd.listen({ address: '127.0.0.1', port, target: { hostname: 'db.prod', port: 5432, proto: 'tcp' } })
      const payload = Buffer.from('hello, ingress')
      assert.deepEqual(await exchange(port, payload), Buffer.from([...payload].reverse()))
      // re-targeting sends new connections to the new target's upstream
      await fwd.listen({ address: '127.0.0.1', port, target: { hostname: 'api.prod', port: 80, proto: 'http' } })
      assert.deepEqual(await exchange(port, Buffer.from('echo me')), Buffer.from('echo me'))
      const [status] = fwd.listeners()
      assert.equal(status!.totalConnections, 2)
      assert.equal(status!.bytesIn, payload.length + 7)
      assert.equal(status!.bytesOut, payload.length + 7)
    } finally {
      await fwd.close()
    }
  })

  // the timeout only turns "waited the whole drainMs" into a failure instead of a slow pass
  it('unlisten() with drainMs lets an open connection finish, without drainMs closes it', { timeout: 120_000 }, async () => {
    const fwd = new LoopbackForwarder({ upstream: { host: '127.0.0.1', port: portOf(echo) } })
    const port = await freePort()
    const target = { hostname: 'api.prod', port: 80, proto: 'http' } as const
    try {
      await fwd.listen({ address: '127.0.0.1', port, target })
      const open = async (): Promise<Socket> => {
        const s = connect({ host: '127.0.0.1', port })
        await once(s, 'connect')
        s.write('x')
        await once(s, 'data') // the connection is through to the upstream
        return s
      }
      const draining = await open()
      const unlistened = fwd.unlisten({ address: '127.0.0.1', port, drainMs: 60_000 })
      draining.write('still here')
      const reply = await Promise.race([once(draining, 'data').then(([d]) => String(d)), once(draining, 'close').then(() => 'closed')])
      assert.equal(reply, 'still here', 'a draining connection keeps flowing')
      draining.end()
      await unlistened // resolves once the connection is done, long before drainMs

      await fwd.listen({ address: '127.0.0.1', port, target })
      const cut = await open()
      const closed = once(cut, 'close')
      await fwd.unlisten({ address: '127.0.0.1', port })
      await closed
      assert.equal(fwd.listeners().length, 0)
    } finally {
      await fwd.close()
    }
  })
})
