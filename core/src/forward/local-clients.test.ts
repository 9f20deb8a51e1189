import assert from 'node:assert/strict'
import net from 'node:net'
import { after, describe, it } from 'node:test'
import { silentLogger } from '../contracts/logger.js'
import { NgrokdError } from '../errors/ngrokd-error.js'
import { LocalAddresses } from '../util/local-addresses.js'
import type { Dialer, DialOptions } from './ingress-dialer.js'
import { InThreadForwarder } from './in-thread-forwarder.js'
import { NON_LOCAL_CLIENT } from '../contracts/forwarder.js'

/** A dialer that records what it was asked and refuses: enough to see whether a connection got past admission. */
function recordingDialer(): Dialer & { calls: DialOptions[] } {
  const calls: DialOptions[] = []
  return {
    calls,
    async dial(o) {
      calls.push(o)
      throw new NgrokdError('NGROKD_ERR_INGRESS_UNREACHABLE', 'no ingress in this test')
    },
  }
}

/** Connects, and resolves how the connection ended. */
function connectAndWait(port: number): Promise<'reset' | 'closed'> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port })
    s.on('error', () => resolve('reset'))
    s.on('close', () => resolve('closed'))
    s.resume()
  })
}

describe('listeners admit only clients on this machine unless they are network mode\'s', () => {
  const forwarders: InThreadForwarder[] = []
  after(async () => {
    await Promise.all(forwarders.map((f) => f.close()))
  })

  const listen = async (sources: LocalAddresses, remoteClients?: boolean) => {
    const dialer = recordingDialer()
    const forwarder = new InThreadForwarder({ dialer, logger: silentLogger, localAddresses: sources })
    forwarders.push(forwarder)
    const server = net.createServer()
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as net.AddressInfo).port
    await new Promise<void>((r) => server.close(() => r()))
    await forwarder.listen({ address: '127.0.0.1', port, target: { hostname: 'api.prod', port: 80, proto: 'http' }, ...(remoteClients === undefined ? {} : { remoteClients }) })
    return { forwarder, dialer, port }
  }

  it('refuses (RST) and counts a connection whose source is not this machine, without dialling the ingress', async () => {
    // the machine, as this LocalAddresses sees it, has no loopback: every source is foreign to it
    const foreign = { isLocal: () => false } as unknown as LocalAddresses
    const { forwarder, dialer, port } = await listen(foreign)
    assert.equal(await connectAndWait(port), 'reset')
    assert.equal(dialer.calls.length, 0)
    const [l] = forwarder.listeners()
    assert.equal(l!.refused, 1)
    assert.equal(l!.errors[NON_LOCAL_CLIENT], 1)
    assert.equal(l!.totalConnections, 0)
    const check = (await forwarder.diagnose()).find((c) => c.id === 'forwarder.connections')!
    assert.equal(check.status, 'warn')
    assert.match(check.summary, /, 0 failed, 0 refused over a limit, 1 refused from another machine$/, 'counted once, as what it was')
    assert.match(check.hint!, /set net\.network\.listen/)
  })

  it('a client that resets before it is admitted (no address left) is dropped, not counted as another machine\'s', async () => {
    const local = { isLocal: (source: string | undefined) => source === '127.0.0.1' } as unknown as LocalAddresses
    const { forwarder, dialer, port } = await listen(local)
    // while this thread is blocked (spawnSync), another process connects and resets: the kernel queues the
    // connection, already reset, and the listener accepts it when this thread runs again — its peer address gone
    const { spawnSync } = await import('node:child_process')
    const child = spawnSync(process.execPath, ['-e', `const s = require('node:net').connect(${port}, '127.0.0.1', () => { s.resetAndDestroy() }); s.on('error', () => {}); s.on('close', () => process.exit(0))`])
    assert.equal(child.status, 0, String(child.stderr))
    // then one that stays: it gets past admission to the dialer, after the reset one was accepted (the queue is in order)
    await connectAndWait(port)
    assert.equal(dialer.calls.length, 1)
    const [l] = forwarder.listeners()
    assert.equal(l!.refused, 0, 'nothing refused')
    assert.equal(l!.errors[NON_LOCAL_CLIENT], undefined, 'nobody from another machine')
  })

  it("with network mode on, the refusal names the endpoint's network port, and a network listen on an address that is not this machine's says to fix net.network.listen", async () => {
    const foreign = { isLocal: () => false } as unknown as LocalAddresses
    const warnings: string[] = []
    const logger = { ...silentLogger, warn: (_o: unknown, msg?: string) => void warnings.push(String(msg)), child: () => logger }
    const forwarder = new InThreadForwarder({ dialer: recordingDialer(), logger, localAddresses: foreign })
    forwarders.push(forwarder)
    const free = async () => {
      const server = net.createServer()
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
      const { port } = server.address() as net.AddressInfo
      await new Promise<void>((r) => server.close(() => r()))
      return port
    }
    const target = { hostname: 'api.prod', port: 80, proto: 'http' as const }
    const [own, network] = [await free(), await free()]
    await forwarder.listen({ address: '127.0.0.1', port: own, target })
    await forwarder.listen({ address: '127.0.0.1', port: network, target, remoteClients: true, rewriteHost: 'api.prod' })
    assert.equal(await connectAndWait(own), 'reset')
    assert.match(warnings.join('\n'), new RegExp(`refused a connection from 127\\.0\\.0\\.1, which is not this machine: an endpoint's own address serves this machine only; other machines reach it on 127\\.0\\.0\\.1:${network} \\(net\\.network\\.listen\\)`))
    assert.match((await forwarder.diagnose()).find((c) => c.id === 'forwarder.connections')!.hint!, /other machines use its network port/)
    // 192.0.2.1 (TEST-NET-1) is no address of this machine
    await assert.rejects(forwarder.listen({ address: '192.0.2.1', port: network, target, remoteClients: true }), (e: NgrokdError) => {
      assert.match(e.message, /EADDRNOTAVAIL/)
      assert.match(e.hint ?? '', /set net\.network\.listen to one of its addresses/)
      return true
    })
  })

  it('admits the same connection on a network-mode listener (remoteClients)', async () => {
    const foreign = { isLocal: () => false } as unknown as LocalAddresses
    const { forwarder, dialer, port } = await listen(foreign, true)
    await connectAndWait(port)
    assert.equal(dialer.calls.length, 1, 'it reached the dialer')
    assert.equal(forwarder.listeners()[0]!.errors[NON_LOCAL_CLIENT], undefined)
  })

  it('admits loopback and the interfaces\' own addresses by default', async () => {
    const { dialer, port } = await listen(new LocalAddresses())
    await connectAndWait(port)
    assert.equal(dialer.calls.length, 1)
  })
})

describe('LocalAddresses', () => {
  it('knows loopback, IPv4-mapped sources, and the interface addresses, re-reading them on a miss at most once a second', () => {
    let reads = 0
    let addresses = ['192.0.2.10']
    const local = new LocalAddresses(() => {
      reads++
      return addresses
    })
    assert.equal(local.isLocal('127.0.0.1'), true)
    assert.equal(local.isLocal('127.107.0.9'), true)
    assert.equal(local.isLocal('::1'), true)
    assert.equal(reads, 0, 'loopback needs no read')
    assert.equal(local.isLocal('::ffff:192.0.2.10'), true)
    assert.equal(reads, 1)
    addresses = ['192.0.2.10', '10.107.0.2']
    assert.equal(local.isLocal('10.107.0.2'), false, 'a miss within a second of the last read does not read again')
    assert.equal(local.isLocal('198.51.100.7'), false)
    assert.equal(reads, 1)
    assert.equal(local.isLocal(undefined), false)
  })
})
