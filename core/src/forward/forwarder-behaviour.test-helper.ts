import assert from 'node:assert/strict'
import { createHash, randomBytes, type Hash } from 'node:crypto'
import net from 'node:net'
import { afterEach, before, describe, it } from 'node:test'
import type { Forwarder, ForwardTarget } from '../contracts/forwarder.js'
import type { Logger } from '../contracts/logger.js'
import { NgrokdError, isNgrokdError } from '../errors/ngrokd-error.js'
import { encodeConnResponse } from '../protocol/binding-frames.js'
import { resetUnderEnd } from './carry-connection.js'
import { socketCallsLoaded } from './socket-state.js'
import type { ConnectionLimitOptions } from './connection-limits.js'
import type { IngressDialerOptions } from './ingress-dialer.js'
import type { ListenerEntry, TrackedConnection } from './listening-forwarder.js'
import { echo, startFakeIngress, type FakeIngress, type FakeIngressOptions } from '../testing/fake-ingress.js'
import { freePort } from '../testing/net-probes.js'
import { recordingLogger } from '../testing/recording-logger.js'
import { createTestPki, type TestPki } from '../testing/test-pki.js'

/**
 * The behaviour every ngrokd forwarder shows against a fake binding ingress (bytes, half-close,
 * backpressure, failures, limits, drain, idle timeout, certificate rotation, Host rewriting), run by
 * the tests of each implementation. Test support: imported by `*.test.ts` files only.
 */

const MiB = 1024 * 1024
const api: ForwardTarget = { hostname: 'api.prod', port: 80, proto: 'http' }

/** A forwarder with the buffer figure the backpressure test samples. */
export interface ForwarderUnderTest extends Forwarder {
  bufferedBytes(): number
}

export interface CreateForwarderUnderTest {
  logger: Logger
  /** Everything an IngressDialer needs but the logger. */
  dialer: Omit<IngressDialerOptions, 'logger'>
  idleTimeoutMs?: number
  limits?: ConnectionLimitOptions
}

export function connect(port: number, address = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: address, port, allowHalfOpen: true })
    s.once('connect', () => {
      s.off('error', reject)
      resolve(s)
    })
    s.once('error', reject)
  })
}

/** Connects, writes `send` if given, and waits for the close: the error seen (at connect or later) and the bytes read. */
export function untilClosed(port: number, send?: string, address = '127.0.0.1'): Promise<{ error?: NodeJS.ErrnoException; data: Buffer }> {
  return new Promise((resolve) => {
    const s = net.connect({ host: address, port, allowHalfOpen: true })
    const chunks: Buffer[] = []
    let error: NodeJS.ErrnoException | undefined
    s.on('data', (d: Buffer) => chunks.push(d))
    s.on('error', (e: NodeJS.ErrnoException) => (error ??= e))
    if (send !== undefined) s.write(send, () => {})
    s.once('close', () => resolve({ error, data: Buffer.concat(chunks) }))
  })
}

/** Everything the socket delivers until its read side ends. */
export function readAll(s: net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    s.on('data', (d: Buffer) => chunks.push(d))
    s.once('end', () => resolve(Buffer.concat(chunks)))
    s.once('error', reject)
    s.resume()
  })
}

export function readN(s: net.Socket, n: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let got = 0
    const onData = (d: Buffer): void => {
      chunks.push(d)
      got += d.length
      if (got >= n) {
        s.off('data', onData)
        resolve(Buffer.concat(chunks))
      }
    }
    s.on('data', onData)
  })
}

export function closed(s: net.Socket): Promise<void> {
  return s.closed ? Promise.resolve() : new Promise((resolve) => s.once('close', () => resolve()))
}

/** Waits (event-loop turns, no deadline: the test runner's timeout is the limit) until `cond()` holds. */
export async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 2))
}

/** Writes `chunks` random chunks of `size` bytes, honouring backpressure, then ends. Returns the sha256. */
export async function pump(s: net.Socket, chunks: number, size: number, onWrite?: (sent: number) => void): Promise<string> {
  const hash = createHash('sha256')
  let sent = 0
  for (let i = 0; i < chunks; i++) {
    const buf = randomBytes(size)
    hash.update(buf)
    const ok = s.write(buf)
    sent += size
    onWrite?.(sent)
    if (!ok) await new Promise<void>((resolve) => s.once('drain', resolve))
  }
  s.end()
  return hash.digest('hex')
}

export function hashAll(s: net.Socket, hash: Hash = createHash('sha256')): Promise<{ sha: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    let bytes = 0
    s.on('data', (d: Buffer) => {
      bytes += d.length
      hash.update(d)
    })
    s.once('end', () => resolve({ sha: hash.digest('hex'), bytes }))
    s.once('error', reject)
    s.resume()
  })
}

/**
 * `resetsTold`: whether the forwarder tells every reset behind an 'end' (the socket's pending error, on the main thread);
 * without it, one that comes after its own FIN (the client ended its side first) is not told from a FIN.
 */
export function describeForwarderBehaviour(title: string, create: (options: CreateForwarderUnderTest) => Promise<ForwarderUnderTest>, { resetsTold = true }: { resetsTold?: boolean } = {}): void {
  describe(title, () => {
    let pki: TestPki
    let cleanups: Array<() => Promise<void> | void> = []
    before(async () => {
      pki = await createTestPki()
      await socketCallsLoaded // the resets Node reports as an end are told by the socket's error, here as in the daemon
    })
    afterEach(async () => {
      for (const c of cleanups.reverse()) await c()
      cleanups = []
    })

    async function setup(
      onRequest?: FakeIngressOptions['onRequest'],
      opts: { dialer?: Partial<IngressDialerOptions>; idleTimeoutMs?: number; limits?: ConnectionLimitOptions } = {},
    ): Promise<{ ingress: FakeIngress; forwarder: ForwarderUnderTest; logger: ReturnType<typeof recordingLogger>; port: number }> {
      const ingress = await startFakeIngress({ pki, onRequest })
      const logger = recordingLogger()
      const forwarder = await create({
        logger,
        dialer: { credentials: () => pki.clientA, endpoint: () => ingress.endpoint, ca: pki.ingressCaPem, ...opts.dialer },
        idleTimeoutMs: opts.idleTimeoutMs,
        limits: opts.limits,
      })
      cleanups.push(() => ingress.close(), () => forwarder.close())
      return { ingress, forwarder, logger, port: await freePort() }
    }

    it('forwards a connection: ConnRequest for the target, bytes both ways, counted per listener', async () => {
      const { ingress, forwarder, port } = await setup()
      await forwarder.listen({ address: '127.0.0.1', port, target: api })
      assert.deepEqual(
        forwarder.listeners().map((l) => [l.address, l.port, l.target.hostname, l.openConnections, l.totalConnections]),
        [['127.0.0.1', port, 'api.prod', 0, 0]],
      )
      const c = await connect(port)
      const reply = readAll(c)
      c.end('hello through ngrok')
      assert.equal((await reply).toString(), 'hello through ngrok')
      await closed(c)
      assert.deepEqual(ingress.connections[0]!.request, { host: 'api.prod', port: 80, podIdentity: {} })
      await until(() => forwarder.listeners()[0]!.openConnections === 0)
      const [status] = forwarder.listeners()
      assert.equal(status!.totalConnections, 1)
      assert.equal(status!.bytesIn, 19)
      assert.equal(status!.bytesOut, 19)
      assert.deepEqual(status!.errors, {})
      const checks = await forwarder.diagnose()
      assert.ok(checks.length > 0)
      assert.deepEqual(checks.map((c) => c.status), checks.map(() => 'ok'), JSON.stringify(checks))
      assert.ok(checks.some((c) => c.id === 'forwarder.connections'))
    })

    it('idle listeners share one set of handlers and hold no connection state until a connection comes', async () => {
      // 10,000 idle listeners are a normal daemon: per listener only its entry, server and handle
      const { forwarder, port } = await setup()
      const other = await freePort()
      await forwarder.listen({ address: '127.0.0.1', port, target: api })
      await forwarder.listen({ address: '127.0.0.1', port: other, target: api })
      const entries = (forwarder as unknown as { entries: Map<string, ListenerEntry<TrackedConnection>> }).entries
      const [a, b] = [entries.get(`127.0.0.1:${port}`)!, entries.get(`127.0.0.1:${other}`)!]
      for (const event of ['connection', 'error']) {
        assert.equal(a.server.listeners(event).length, 1, event)
        assert.equal(a.server.listeners(event)[0], b.server.listeners(event)[0], `one ${event} handler for all servers`)
      }
      assert.equal(a.conns, b.conns, 'both without connections: the one shared empty set')
      assert.equal(a.seen, b.seen, 'both idle: the one shared set of zero counters')
      const c = await connect(port)
      await until(() => a.conns.size === 1)
      assert.notEqual(a.conns, b.conns)
      const reply = readAll(c)
      c.end('x')
      assert.equal((await reply).toString(), 'x')
      await closed(c)
      await until(() => a.conns.size === 0)
      assert.equal(a.conns, b.conns, 'the set went with the last connection')
      assert.notEqual(a.seen, b.seen)
      assert.equal(a.seen.total, 1)
      assert.equal(b.seen.total, 0)
    })

    it('delivers the bytes that came with the ConnResponse first, in order', async () => {
      const { forwarder, port } = await setup((conn) => {
        conn.accept('EARLY-')
        setImmediate(() => conn.socket.end('LATER'))
      })
      await forwarder.listen({ address: '127.0.0.1', port, target: api })
      const c = await connect(port)
      assert.equal((await readAll(c)).toString(), 'EARLY-LATER')
      c.end()
      await closed(c)
    })

    it('resets the local connection on a refusal and records the ngrok code, logging it with the hostname', async () => {
      const { forwarder, logger, port } = await setup((conn) => {
        conn.socket.end(encodeConnResponse({ errorCode: 'ERR_NGROK_3200', errorMessage: 'endpoint not found' }))
        conn.socket.resume()
      })
      await forwarder.listen({ address: '127.0.0.1', port, target: { hostname: 'gone.prod', port: 80, proto: 'http' } })
      const c = await connect(port)
      c.write('GET / HTTP/1.1\r\n\r\n')
      const err = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
        c.once('error', resolve)
        c.once('close', () => resolve(undefined))
      })
      assert.equal(err?.code, 'ECONNRESET') // reset, not a clean end
      await until(() => forwarder.listeners()[0]!.openConnections === 0)
      assert.deepEqual(forwarder.listeners()[0]!.errors, { ERR_NGROK_3200: 1 })
      const warn = logger.at('warn').find((r) => r.obj.ngrokCode === 'ERR_NGROK_3200')
      assert.ok(warn, 'a warning with the ngrok code')
      assert.equal(warn.obj.hostname, 'gone.prod')
      assert.match(warn.msg, /endpoint not found/)
    })

    it('a refusal that repeats is said at warn once; the first connection that goes through after says so, and a refusal after that is said again', async () => {
      let refuse = true
      const { forwarder, logger, port } = await setup((conn) => {
        if (!refuse) return echo(conn)
        conn.socket.end(encodeConnResponse({ errorCode: 'ERR_NGROK_3200', errorMessage: 'endpoint is offline' }))
        conn.socket.resume()
      })
      await forwarder.listen({ address: '127.0.0.1', port, target: { hostname: 'gone.prod', port: 80, proto: 'tcp' } })
      const refused = async () => {
        const c = await connect(port)
        c.on('error', () => {}) // reset
        await closed(c)
      }
      const refusals = () => forwarder.listeners()[0]!.errors.ERR_NGROK_3200 ?? 0
      for (let i = 1; i <= 5; i++) {
        await refused()
        await until(() => refusals() === i)
      }
      const said = () => logger.at('warn').filter((r) => r.obj.ngrokCode === 'ERR_NGROK_3200').length
      assert.equal(said(), 1, 'once while it repeats')
      assert.equal(logger.at('debug').filter((r) => r.obj.ngrokCode === 'ERR_NGROK_3200').length, 4, 'the repeats at debug')

      refuse = false
      const c = await connect(port)
      const reply = readAll(c)
      c.end('back')
      assert.equal((await reply).toString(), 'back')
      const back = () => logger.at('info').filter((r) => r.msg.includes('connections go through again'))
      await until(() => back().length > 0) // a worker tells the main thread after its client was answered
      assert.deepEqual(back().map((r) => r.msg), ['gone.prod:80: connections go through again (after 5 failed: ERR_NGROK_3200)'])

      refuse = true
      await refused()
      await until(() => refusals() === 6)
      assert.equal(said(), 2, 'a new episode is said again')
    })

    it('resets the local connection when the TLS exchange fails, and diagnose() says why', async () => {
      const { forwarder, port } = await setup(undefined, { dialer: { ca: pki.otherCaPem } })
      await forwarder.listen({ address: '127.0.0.1', port, target: api })
      const c = await connect(port)
      c.on('error', () => {})
      await closed(c)
      await until(() => forwarder.listeners()[0]!.openConnections === 0)
      assert.deepEqual(forwarder.listeners()[0]!.errors, { NGROKD_ERR_INGRESS_TLS: 1 })
      const check = (await forwarder.diagnose()).find((x) => x.id === 'forwarder.connections')
      assert.equal(check?.status, 'warn')
      assert.equal(check?.code, 'NGROKD_ERR_INGRESS_TLS')
      assert.match(check!.hint!, /ingress\.ca_file/)
    })

    it('half-close: the client ends its side, the ingress sees the end and can still answer', async () => {
      const { forwarder, port } = await setup((conn) => {
        conn.accept()
        const chunks: Buffer[] = []
        conn.socket.on('data', (d: Buffer) => chunks.push(d)).resume()
        conn.socket.once('end', () => conn.socket.end(`pong:${Buffer.concat(chunks).toString()}`))
      })
      await forwarder.listen({ address: '127.0.0.1', port, target: api })
      const c = await connect(port)
      const reply = readAll(c)
      c.end('ping')
      assert.equal((await reply).toString(), 'pong:ping')
      await closed(c)
    })

    it('half-close: the ingress ends its side, the client sees the end and can still send', async () => {
      let serverGot!: Promise<Buffer>
      const { forwarder, port } = await setup((conn) => {
        conn.accept('hi')
        conn.socket.end()
        serverGot = readAll(conn.socket)
      })
      await forwarder.listen({ address: '127.0.0.1', port, target: api })
      const c = await connect(port)
      assert.equal((await readAll(c)).toString(), 'hi')
      assert.equal(c.writable, true)
      c.end('late data')
      assert.equal((await serverGot).toString(), 'late data')
      await closed(c)
    })

    /**
     * What a client that keeps its side open saw of the connection's end: whether its read side ended cleanly (a
     * FIN), the error, the bytes. Node itself reports most resets after a short read as 'end' (see
     * `resetUnderEnd`, which this client asks about such an end as the forwarder does about the ingress's).
     */
    function endOf(port: number, request?: string): Promise<{ ended: boolean; error?: NodeJS.ErrnoException; bytes: number }> {
      return new Promise((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true })
        if (request !== undefined) s.end(request) // sends its request and ends its side, then reads the answer
        let ended = false
        let bytes = 0
        let error: NodeJS.ErrnoException | undefined
        s.on('data', (d: Buffer) => (bytes += d.length))
        s.once('end', () => {
          const reset = resetUnderEnd(s)
          if (reset) error ??= reset
          else ended = true
          s.end() // as a downloader does: done, close
        })
        s.on('error', (e: NodeJS.ErrnoException) => (error ??= e))
        s.once('close', () => resolve({ ended, error, bytes }))
      })
    }
    // from 1 KB (one short read) to 2 MiB (many, backpressure on the way): Node saw a plain end on most of these
    const cutAfter = [1_000, 64 * 1024, 1_000_000, 2 * MiB]

    it('an ingress reset mid-stream resets the client (ECONNRESET), never a clean end, counted under errors', async () => {
      let n = 0
      const { forwarder, port } = await setup((conn) => {
        conn.accept()
        // RST on the TCP connection under the TLS once the bytes are out, as the simulator's "cut" fault does
        const raw = (conn.socket as unknown as { _parent: net.Socket })._parent
        conn.socket.write(Buffer.alloc(cutAfter[n++ % cutAfter.length]!, 7), () => raw.resetAndDestroy())
      })
      await forwarder.listen({ address: '127.0.0.1', port, target: { hostname: 'bulk.prod', port: 9000, proto: 'tcp' } })
      const rounds = cutAfter.length * 3
      for (let i = 0; i < rounds; i++) {
        const { ended, error, bytes } = await endOf(port)
        assert.equal(ended, false, `connection ${i} (cut after ${cutAfter[i % cutAfter.length]} bytes): a clean end after ${bytes} bytes`)
        assert.equal(error?.code, 'ECONNRESET', `connection ${i}: ${error?.code}`)
      }
      await until(() => forwarder.listeners()[0]!.openConnections === 0)
      assert.deepEqual(forwarder.listeners()[0]!.errors, { ECONNRESET: rounds })
    })

    it('a client that ended its side first still sees an ingress reset mid-stream as a reset, never a clean end', { skip: !resetsTold && 'not told in worker threads' }, async () => {
      let n = 0
      const { forwarder, port } = await setup((conn) => {
        conn.accept()
        const raw = (conn.socket as unknown as { _parent: net.Socket })._parent
        // the reset comes once the client's end is through: the forwarder's own FIN to the ingress is out
        conn.socket.once('end', () => conn.socket.write(Buffer.alloc(cutAfter[n++ % cutAfter.length]!, 7), () => raw.resetAndDestroy()))
        conn.socket.resume()
      })
      await forwarder.listen({ address: '127.0.0.1', port, target: { hostname: 'bulk.prod', port: 9000, proto: 'tcp' } })
      const rounds = cutAfter.length * 3
      for (let i = 0; i < rounds; i++) {
        const { ended, error, bytes } = await endOf(port, 'GET 100000000\n')
        assert.equal(ended, false, `connection ${i} (cut after ${cutAfter[i % cutAfter.length]} bytes): a clean end after ${bytes} bytes`)
        assert.equal(error?.code, 'ECONNRESET', `connection ${i}: ${error?.code}`)
      }
      await until(() => forwarder.listeners()[0]!.openConnections === 0)
      assert.deepEqual(forwarder.listeners()[0]!.errors, { ECONNRESET: rounds })
    })

    // in worker threads too: the TLS socket is reset through its TCP handle, which needs no koffi
    /** The ingress side's end of each connection accepted: `reset`, or a clean end that an upload cut off could pass for. */
    const endsSeenByIngress = (ends: Array<Promise<string>>, first?: string) => (conn: { accept(first?: string): void; socket: net.Socket }) => {
      conn.accept(first)
      ends.push(
        new Promise((resolve) => {
          let got = 0
          conn.socket.on('data', (d: Buffer) => (got += d.length))
          conn.socket.once('end', () => resolve(resetUnderEnd(conn.socket) ? 'reset' : `a clean end after ${got} bytes`))
          conn.socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNRESET' ? 'reset' : `error ${e.code}`))
          conn.socket.resume()
        }),
      )
    }

    it('a client reset mid-upload resets the ingress connection: never close_notify and a FIN it could take for a whole upload', async () => {
      const ends: Array<Promise<string>> = []
      const { forwarder, port } = await setup(endsSeenByIngress(ends))
      await forwarder.listen({ address: '127.0.0.1', port, target: { hostname: 'bulk.prod', port: 9000, proto: 'tcp' } })
      for (const size of cutAfter) {
        const c = await connect(port)
        c.on('error', () => {})
        await new Promise<void>((resolve) => c.write(Buffer.alloc(size, 3), () => resolve()))
        while (ends.length < 1) await new Promise((r) => setTimeout(r, 5))
        c.resetAndDestroy()
        assert.equal(await ends.shift(), 'reset', `cut after ${size} bytes`)
      }
    })

    it('a connection cut when its drain runs out reaches the ingress as a reset, never as a clean end of what was uploaded', async () => {
      const ends: Array<Promise<string>> = []
      const { forwarder, port } = await setup(endsSeenByIngress(ends, 'x'))
      await forwarder.listen({ address: '127.0.0.1', port, target: { hostname: 'bulk.prod', port: 9000, proto: 'tcp' } })
      const c = await connect(port)
      c.on('error', () => {})
      c.write(Buffer.alloc(1000, 7))
      await readN(c, 1)
      await forwarder.unlisten({ address: '127.0.0.1', port, drainMs: 20 })
      assert.equal(await ends[0], 'reset')
      await closed(c)
    })

    it('a connection cut at its idle timeout reaches the ingress as a reset, never as a clean end', async () => {
      const ends: Array<Promise<string>> = []
      const { forwarder, port } = await setup(endsSeenByIngress(ends, 'x'), { idleTimeoutMs: 30 })
      await forwarder.listen({ address: '127.0.0.1', port, target: { hostname: 'bulk.prod', port: 9000, proto: 'tcp' } })
      const c = await connect(port)
      c.on('error', () => {})
      c.write(Buffer.alloc(1000, 7))
      await readN(c, 1)
      assert.equal(await ends[0], 'reset')
      await closed(c)
    })

    it('an ingress that ends cleanly after a bulk answer ends the client cleanly, every byte there', async () => {
      let n = 0
      const { forwarder, port } = await setup((conn) => {
        conn.accept()
        conn.socket.end(Buffer.alloc(cutAfter[n++ % cutAfter.length]!, 7))
        conn.socket.resume()
      })
      await forwarder.listen({ address: '127.0.0.1', port, target: { hostname: 'bulk.prod', port: 9000, proto: 'tcp' } })
      for (let i = 0; i < cutAfter.length * 2; i++) {
        const { ended, error, bytes } = await endOf(port)
        assert.equal(error, undefined, `connection ${i}`)
        assert.equal(ended, true)
        assert.equal(bytes, cutAfter[i % cutAfter.length])
      }
      await until(() => forwarder.listeners()[0]!.openConnections === 0)
      assert.deepEqual(forwarder.listeners()[0]!.errors, {})
    })

    it('backpressure: a client that does not read throttles the ingress; buffered bytes stay bounded', async () => {
      const total = 64 * MiB
      let sent = 0
      let maxBuffered = 0
      let forwarder!: ForwarderUnderTest
      let serverSha: Promise<string> | undefined
      let stalled!: () => void
      const stall = new Promise<void>((resolve) => (stalled = resolve))
      const sample = (): void => {
        maxBuffered = Math.max(maxBuffered, forwarder.bufferedBytes())
      }
      const setupResult = await setup((conn) => {
        conn.accept()
        conn.socket.resume()
        // The ingress pushes as fast as the forwarder lets it. A drain that does not come within 300 ms
        // means it is throttled (the 300 ms only decides when the client starts reading; nothing asserts on it).
        let idle: NodeJS.Timeout | undefined
        conn.socket.on('drain', () => clearTimeout(idle))
        serverSha = pump(conn.socket, total / (64 * 1024), 64 * 1024, (n) => {
          sent = n
          sample()
          if (conn.socket.writableNeedDrain) {
            clearTimeout(idle)
            idle = setTimeout(stalled, 300)
          }
        })
      })
      forwarder = setupResult.forwarder
      await forwarder.listen({ address: '127.0.0.1', port: setupResult.port, target: api })
      const c = await connect(setupResult.port)
      c.pause() // not reading
      await until(() => serverSha !== undefined) // the ingress got the ConnRequest and is pushing
      await Promise.race([stall, serverSha]) // serverSha settles first only if nothing throttled the ingress
      sample()
      assert.ok(sent < total, `the ingress could push everything (${sent} bytes) to a client that does not read`)
      const received = hashAll(c)
      c.resume()
      const timer = setInterval(sample, 1)
      const { sha, bytes } = await received
      clearInterval(timer)
      assert.equal(bytes, total)
      assert.equal(sha, await serverSha!)
      // a few socket high-water marks per connection, nowhere near the 64 MiB pushed
      assert.ok(maxBuffered < 1 * MiB, `forwarder buffered up to ${maxBuffered} bytes`)
      c.end()
      await closed(c)
    })

    it('carries 64 MiB each way at once, byte-exact (sha256)', async () => {
      const total = 64 * MiB
      let server!: Promise<[string, { sha: string; bytes: number }]>
      const { forwarder, port } = await setup((conn) => {
        conn.accept()
        server = Promise.all([pump(conn.socket, total / MiB, MiB), hashAll(conn.socket)])
      })
      await forwarder.listen({ address: '127.0.0.1', port, target: api })
      const c = await connect(port)
      const [clientSentSha, clientGot] = await Promise.all([pump(c, total / MiB, MiB), hashAll(c)])
      const [serverSentSha, serverGot] = await server
      assert.equal(clientGot.bytes, total)
      assert.equal(serverGot.bytes, total)
      assert.equal(clientGot.sha, serverSentSha)
      assert.equal(serverGot.sha, clientSentSha)
      await closed(c)
      await until(() => forwarder.listeners()[0]!.openConnections === 0)
      assert.equal(forwarder.listeners()[0]!.bytesIn, total)
      assert.equal(forwarder.listeners()[0]!.bytesOut, total)
    })

    it('listen() errors are NGROKD_ERR_LISTEN naming address:port and errno, and diagnose() fails on them', async () => {
      const { forwarder, port } = await setup()
      const squatter = net.createServer()
      await new Promise<void>((r) => squatter.listen(port, '127.0.0.1', r))
      const err = await forwarder.listen({ address: '127.0.0.1', port, target: api }).then(
        () => assert.fail('listen should fail'),
        (e: unknown) => e as Error & { code: string; hint?: string },
      )
      assert.ok(isNgrokdError(err, 'NGROKD_ERR_LISTEN'), String(err))
      assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}: EADDRINUSE`))
      assert.match(err.hint!, /already listens/)
      assert.deepEqual(forwarder.listeners(), [])
      const failed = (await forwarder.diagnose()).filter((c) => c.status === 'fail')
      assert.deepEqual(failed.map((c) => [c.id, c.code]), [['forwarder.listen', 'NGROKD_ERR_LISTEN']])
      await new Promise<void>((r) => squatter.close(() => r()))
      await forwarder.listen({ address: '127.0.0.1', port, target: api })
      assert.equal((await forwarder.diagnose()).filter((c) => c.status === 'fail').length, 0)

      for (const address of ['api.prod', '', '0']) {
        await assert.rejects(forwarder.listen({ address, port, target: api }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_LISTEN'))
      }
      await assert.rejects(forwarder.listen({ address: '127.0.0.1', port: 0, target: api }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_LISTEN'))
      const other = await freePort()
      await assert.rejects(forwarder.listen({ address: '127.0.0.1', port: other, target: api, signal: AbortSignal.abort() }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_ABORTED'))
      assert.deepEqual(forwarder.listeners().map((l) => l.port), [port])
    })

    it('listen() is idempotent, a new target applies to new connections, listeners() follows unlisten()', async () => {
      const { ingress, forwarder, port } = await setup()
      await forwarder.listen({ address: '127.0.0.1', port, target: api })
      await forwarder.listen({ address: '127.0.0.1', port, target: api })
      assert.equal(forwarder.listeners().length, 1)
      await forwarder.listen({ address: '127.0.0.1', port, target: { hostname: 'api.staging', port: 8080, proto: 'http' } })
      assert.deepEqual(forwarder.listeners()[0]!.target, { hostname: 'api.staging', port: 8080, proto: 'http' })
      const c = await connect(port)
      const reply = readAll(c)
      c.end('x')
      await reply
      assert.deepEqual(ingress.connections.at(-1)!.request, { host: 'api.staging', port: 8080, podIdentity: {} })
      await forwarder.unlisten({ address: '127.0.0.1', port })
      assert.deepEqual(forwarder.listeners(), [])
      await assert.rejects(connect(port), (e: NodeJS.ErrnoException) => e.code === 'ECONNREFUSED')
      await forwarder.unlisten({ address: '127.0.0.1', port }) // not listening: resolves
      await forwarder.unlisten({ address: '127.0.0.9', port: 1 })
    })

    it('unlisten() stops accepting at once and lets open connections finish within drainMs', async () => {
      const { forwarder, port } = await setup()
      await forwarder.listen({ address: '127.0.0.1', port, target: api })
      const c = await connect(port)
      c.write('a')
      assert.equal((await readN(c, 1)).toString(), 'a')
      let drained = false
      const unlistened = forwarder.unlisten({ address: '127.0.0.1', port, drainMs: 60_000 }).then(() => {
        drained = true
      })
      await until(() => forwarder.listeners().length === 0)
      await assert.rejects(connect(port), (e: NodeJS.ErrnoException) => e.code === 'ECONNREFUSED')
      c.write('b') // the open connection still works
      assert.equal((await readN(c, 1)).toString(), 'b')
      assert.equal(drained, false)
      const rest = readAll(c)
      c.end()
      await rest
      await unlistened
      assert.equal(drained, true)
    })

    it('unlisten() closes connections still open when drainMs runs out (and at once with drainMs 0)', async () => {
      const { forwarder, port } = await setup()
      const port2 = await freePort()
      await forwarder.listen({ address: '127.0.0.1', port, target: api })
      await forwarder.listen({ address: '127.0.0.1', port: port2, target: api })
      const c1 = await connect(port)
      const c2 = await connect(port2)
      for (const c of [c1, c2]) {
        c.write('z')
        await readN(c, 1)
        c.on('error', () => {})
      }
      await forwarder.unlisten({ address: '127.0.0.1', port, drainMs: 20 })
      await closed(c1)
      await forwarder.unlisten({ address: '127.0.0.1', port: port2 })
      await closed(c2)
      assert.deepEqual(forwarder.listeners(), [])
    })

    it('endDrains() closes what unlistens are draining, and makes every later unlisten close at once', async () => {
      const { forwarder, port } = await setup()
      const port2 = await freePort()
      await forwarder.listen({ address: '127.0.0.1', port, target: api })
      await forwarder.listen({ address: '127.0.0.1', port: port2, target: api })
      const [c1, c2] = [await connect(port), await connect(port2)]
      for (const c of [c1, c2]) {
        c.write('z')
        await readN(c, 1)
        c.on('error', () => {})
      }
      // a safety net far above the work: without endDrains these unlistens would wait out their 10 min
      const soon = <T>(p: Promise<T>, what: string) => Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} still draining`)), 60_000).unref())])
      const first = forwarder.unlisten({ address: '127.0.0.1', port, drainMs: 600_000 })
      await until(() => forwarder.listeners().length === 1)
      forwarder.endDrains!()
      await soon(first, 'the unlisten under way')
      await closed(c1)
      await soon(forwarder.unlisten({ address: '127.0.0.1', port: port2, drainMs: 600_000 }), 'an unlisten begun after endDrains()')
      await closed(c2)
    })

    it('close() unlistens everything, can be called twice, and later listens fail', async () => {
      const { forwarder, port } = await setup()
      await forwarder.listen({ address: '127.0.0.1', port, target: api })
      const c = await connect(port)
      c.on('error', () => {})
      await forwarder.close()
      await forwarder.close()
      await closed(c)
      assert.deepEqual(forwarder.listeners(), [])
      await assert.rejects(connect(port), (e: NodeJS.ErrnoException) => e.code === 'ECONNREFUSED')
      await assert.rejects(forwarder.listen({ address: '127.0.0.1', port, target: api }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_LISTEN'))
    })

    it('closes a connection idle for idleTimeoutMs, on both sides', async () => {
      let serverSide!: net.Socket
      const { forwarder, port } = await setup(
        (conn) => {
          serverSide = conn.socket
          conn.accept('x')
          conn.socket.on('end', () => conn.socket.end()).resume()
        },
        { idleTimeoutMs: 30 },
      )
      await forwarder.listen({ address: '127.0.0.1', port, target: api })
      const c = await connect(port)
      c.on('error', () => {}).on('end', () => c.end())
      assert.equal((await readN(c, 1)).toString(), 'x')
      await closed(c)
      await closed(serverSide)
      await until(() => forwarder.listeners()[0]!.openConnections === 0)
    })

    it('limits: a connection over the per-endpoint or the global limit is reset at once, counted in refused and logged', async () => {
      const { forwarder, logger, port } = await setup(undefined, { limits: { maxConnections: 3, maxConnectionsPerEndpoint: 2 } })
      const portB = await freePort()
      await forwarder.listen({ address: '127.0.0.1', port, target: api })
      await forwarder.listen({ address: '127.0.0.1', port: portB, target: { hostname: 'db.prod', port: 5432, proto: 'tcp' } })
      /** A connection that went through: the echo answered. */
      const through = async (p: number): Promise<net.Socket> => {
        const c = await connect(p)
        c.write('x')
        assert.equal((await readN(c, 1)).toString(), 'x')
        return c
      }
      /** A connection that was refused: reset before any byte came back (at connect or at the first read). */
      const refused = async (p: number): Promise<void> => {
        const { error, data } = await untilClosed(p, 'x')
        assert.equal(error?.code, 'ECONNRESET')
        assert.equal(data.length, 0)
      }
      const a1 = await through(port)
      const a2 = await through(port)
      await refused(port) // 2 open to api.prod: per-endpoint limit
      const b1 = await through(portB)
      await refused(portB) // 3 open in all: global limit
      const status = (p: number) => forwarder.listeners().find((l) => l.port === p)!
      assert.equal(status(port).refused, 1)
      assert.equal(status(portB).refused, 1)
      assert.equal(status(port).openConnections, 2)
      assert.equal(status(port).totalConnections, 2, 'refused connections are not forwarded connections')
      const warned = logger.at('warn').map((r) => r.msg)
      assert.ok(warned.some((m) => /forwarder\.max_connections_per_endpoint/.test(m)), warned.join('\n'))
      assert.ok(warned.some((m) => /forwarder\.max_connections\)/.test(m)), warned.join('\n'))
      const check = (await forwarder.diagnose()).find((c) => c.id === 'forwarder.connections')!
      assert.equal(check.status, 'warn')
      assert.match(check.summary, /2 refused/)
      // a slot comes back when a connection ends
      a1.end()
      await closed(a1)
      await until(() => status(port).openConnections === 1)
      const a3 = await through(port)
      for (const c of [a2, b1, a3]) {
        c.end()
        await closed(c)
      }
      await until(() => forwarder.listeners().every((l) => l.openConnections === 0))
      assert.equal(status(port).refused, 1)
    })

    it('refusals over a limit are logged at warn once per 10 s per listener, the rest at debug', async () => {
      const { forwarder, logger, port } = await setup(undefined, { limits: { maxConnectionsPerEndpoint: 1 } })
      await forwarder.listen({ address: '127.0.0.1', port, target: api })
      const held = await connect(port)
      held.write('x')
      await readN(held, 1)
      for (let i = 0; i < 5; i++) assert.equal((await untilClosed(port)).error?.code, 'ECONNRESET')
      await until(() => forwarder.listeners()[0]!.refused === 5)
      const about = (r: { msg: string }) => /refused a connection/.test(r.msg)
      assert.equal(logger.at('warn').filter(about).length, 1)
      assert.equal(logger.at('debug').filter(about).length, 4)
      held.end()
      await closed(held)
    })

    it('handshake figures: accept → ConnResponse per connection, counted while the connection is open too', async () => {
      const { forwarder, port } = await setup()
      await forwarder.listen({ address: '127.0.0.1', port, target: api })
      const open = await connect(port)
      open.write('x')
      await readN(open, 1)
      const h1 = forwarder.listeners()[0]!.handshake!
      assert.equal(h1.count, 1)
      assert.ok(h1.totalMs > 0 && h1.maxMs === h1.totalMs, JSON.stringify(h1))
      for (let i = 0; i < 3; i++) {
        const c = await connect(port)
        const reply = readAll(c)
        c.end('y')
        await reply
        await closed(c)
      }
      await until(() => forwarder.listeners()[0]!.openConnections === 1)
      const h = forwarder.listeners()[0]!.handshake!
      assert.equal(h.count, 4)
      assert.ok(h.maxMs > 0 && h.maxMs <= h.totalMs, JSON.stringify(h))
      open.end()
      await closed(open)
    })

    it('a client that resets while its dial is under way aborts the dial at once, not when the dial ends', async () => {
      // an ingress that accepts TCP and never answers the TLS hello: the dial waits for its handshake timeout
      const held = new Set<net.Socket>()
      const silent = net.createServer((s) => {
        held.add(s.on('error', () => {}).resume()) // read (and drop) the hello, so that the dialer's close is seen
        s.once('close', () => held.delete(s))
      })
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
      cleanups.push(() => new Promise<void>((r) => silent.close(() => r())), () => held.forEach((s) => s.destroy()))
      const { forwarder, port } = await setup(undefined, { dialer: { endpoint: () => `127.0.0.1:${(silent.address() as net.AddressInfo).port}`, handshakeTimeoutMs: 600_000 } })
      await forwarder.listen({ address: '127.0.0.1', port, target: api })
      // nothing sent first: after a short read libuv may report a reset as an end (see resetUnderEnd), which waits
      // in the client's buffer for the dial to finish (then told by the socket's error)
      const c = await connect(port)
      await until(() => held.size === 1) // the dial has reached the ingress
      c.resetAndDestroy()
      // the dial is aborted at once (its socket closes, the connection is over), not after its handshake's ten minutes
      let safety: NodeJS.Timeout | undefined
      await Promise.race([
        until(() => held.size === 0 && forwarder.listeners()[0]!.openConnections === 0),
        new Promise((_, reject) => (safety = setTimeout(() => reject(new Error('the dial outlived its client')), 30_000))),
      ]).finally(() => clearTimeout(safety))
      assert.equal(forwarder.listeners()[0]!.totalConnections, 1)
    })

    it('a client that ends its side while its dial is under way (with bytes or none) still has them carried and gets its answer', async () => {
      const releases: Array<() => void> = []
      // the ingress answers only once the client's FIN is certainly in: the dial is held until then
      const { forwarder, port } = await setup((conn) => releases.push(() => echo(conn)))
      await forwarder.listen({ address: '127.0.0.1', port, target: api })
      for (const [i, sent] of ['ping', ''].entries()) {
        const c = await connect(port)
        c.end(sent) // bytes (or none) and FIN before the ConnResponse
        await until(() => releases.length > i)
        await new Promise((r) => setTimeout(r, 20)) // the FIN reaches the daemon
        releases[i]!()
        let safety: NodeJS.Timeout | undefined
        const answer = await Promise.race([
          readAll(c),
          new Promise<never>((_, reject) => (safety = setTimeout(() => reject(new Error(`the end of ${JSON.stringify(sent)} never reached the ingress`)), 30_000))),
        ]).finally(() => clearTimeout(safety))
        assert.equal(answer.toString(), sent)
      }
    })

    it('the ConnResponse deadline reaches the dialer: an ingress that never answers → NGROKD_ERR_INGRESS_TIMEOUT, reset', async () => {
      const { forwarder, port } = await setup(() => {}, { dialer: { responseTimeoutMs: 50 } })
      await forwarder.listen({ address: '127.0.0.1', port, target: api })
      const c = await connect(port)
      const err = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
        c.once('error', resolve)
        c.once('close', () => resolve(undefined))
      })
      assert.equal(err?.code, 'ECONNRESET')
      await until(() => forwarder.listeners()[0]!.openConnections === 0)
      assert.deepEqual(forwarder.listeners()[0]!.errors, { NGROKD_ERR_INGRESS_TIMEOUT: 1 })
      const check = (await forwarder.diagnose()).find((x) => x.id === 'forwarder.connections')
      assert.equal(check?.code, 'NGROKD_ERR_INGRESS_TIMEOUT')
      assert.match(check!.summary, /ConnResponse/)
    })

    it('a renewed client certificate is used for new connections', async () => {
      let current = pki.clientA
      const { ingress, forwarder, port } = await setup(undefined, { dialer: { credentials: () => current } })
      await forwarder.listen({ address: '127.0.0.1', port, target: api })
      const roundTrip = async (): Promise<void> => {
        const c = await connect(port)
        const reply = readAll(c)
        c.end('r')
        assert.equal((await reply).toString(), 'r')
        await closed(c)
      }
      const serial = (name: string) => Buffer.from(name).toString('hex').toUpperCase()
      await roundTrip()
      current = pki.clientB
      await roundTrip()
      await roundTrip()
      current = pki.clientA
      await roundTrip()
      assert.deepEqual(
        ingress.connections.map((c) => c.clientSerial.toUpperCase()),
        [serial('client-a'), serial('client-b'), serial('client-b'), serial('client-a')],
      )
    })

    it('credentials that cannot be had fail the connection with their coded error (reset)', async () => {
      const { forwarder, port } = await setup(undefined, {
        dialer: {
          credentials: () => {
            throw new NgrokdError('NGROKD_ERR_CERT', 'not registered with the ngrok API yet')
          },
        },
      })
      await forwarder.listen({ address: '127.0.0.1', port, target: api })
      assert.equal((await untilClosed(port, 'x')).error?.code, 'ECONNRESET')
      await until(() => forwarder.listeners()[0]!.openConnections === 0)
      assert.deepEqual(forwarder.listeners()[0]!.errors, { NGROKD_ERR_CERT: 1 })
    })

    it('rewriteHost: every request on the connection reaches the ingress with that Host, the rest byte for byte', async () => {
      const { forwarder, port } = await setup()
      await forwarder.listen({ address: '127.0.0.1', port, target: api, rewriteHost: 'api.prod' })
      const c = await connect(port)
      const reply = readAll(c)
      const body = 'a=1'
      c.end(`POST /x HTTP/1.1\r\nHost: 10.107.0.2\r\nContent-Length: ${body.length}\r\n\r\n${body}GET /y HTTP/1.1\r\nhost: 10.107.0.2:80\r\n\r\n`)
      assert.equal(
        (await reply).toString(),
        `POST /x HTTP/1.1\r\nHost: api.prod\r\nContent-Length: ${body.length}\r\n\r\n${body}GET /y HTTP/1.1\r\nhost: api.prod\r\n\r\n`,
      )
      await closed(c)
    })
  })
}
