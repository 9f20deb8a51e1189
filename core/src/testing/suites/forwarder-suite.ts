import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import type { Forwarder, ForwardTarget } from '../../contracts/forwarder.js'
import { assertRejectsCoded } from '../assertions.js'
import { freePort, tryConnect } from '../net-probes.js'
import { TestFramework } from '../test-framework.js'
import { checkDiagnose } from './check-diagnose.js'
import { check, SuiteTempDir, withCleanup } from './suite-support.js'

export interface ForwarderSuiteEnv {
  /** A fresh, empty folder for this test. */
  dir: string
}

export interface ForwarderSuiteSkips {
  abort?: boolean
  concurrency?: boolean
  /** Listening on a port another program holds rejecting with a coded error. */
  portInUse?: boolean
  diagnose?: boolean
}

export interface ForwarderSuiteOptions {
  title?: string
  create(env: ForwarderSuiteEnv): Forwarder | Promise<Forwarder>
  /** Where the tests listen; default `127.0.0.1`. Must be a local address. */
  address?: string
  /** Default `{ hostname: 'api.prod', port: 80, proto: 'http' }`. */
  target?: ForwardTarget
  skip?: ForwarderSuiteSkips
  additionalTests?(ctx: ForwarderSuiteContext): void
}

export interface ForwarderSession {
  env: ForwarderSuiteEnv
  forwarder: Forwarder
  address: string
  target: ForwardTarget
  /** A port free on `address` right now. */
  freePort(): Promise<number>
}

export interface ForwarderSuiteContext {
  withForwarder<T>(fn: (session: ForwarderSession) => Promise<T>): Promise<T>
}

/**
 * Registers the Forwarder conformance suite (the rules in `contracts/forwarder.ts`). Only the
 * listening side is checked: where connections go is up to the forwarder.
 *
 * ```ts
 * testForwarder({ create: () => new IngressForwarder({ ingress: simulator.ingress, tls }) })
 * ```
 */
export function testForwarder(suite: ForwarderSuiteOptions): void {
  const skip = suite.skip ?? {}
  const address = suite.address ?? '127.0.0.1'
  const target: ForwardTarget = suite.target ?? { hostname: 'api.prod', port: 80, proto: 'http' }
  const temp = new SuiteTempDir('ngrokd-forwarder-suite')

  async function withForwarder<T>(fn: (session: ForwarderSession) => Promise<T>): Promise<T> {
    return withCleanup(async (defer) => {
      const env: ForwarderSuiteEnv = { dir: await temp.fresh() }
      const forwarder = await suite.create(env)
      defer(() => forwarder.close())
      const given = new Set<number>()
      const sessionPort = async (): Promise<number> => {
        // the OS may hand a just-closed port out again: never give one twice in a test
        for (;;) {
          const port = await freePort(address)
          if (!given.has(port)) return given.add(port), port
        }
      }
      return fn({ env, forwarder, address, target, freePort: sessionPort })
    })
  }

  function entries(f: Forwarder, port: number) {
    return f.listeners().filter((l) => l.address === address && l.port === port)
  }

  TestFramework.describe(suite.title ?? 'forwarder conformance', () => {
    temp.registerHooks()

    check('listen() accepts connections and listeners() shows it', false, async () => {
      await withForwarder(async ({ forwarder, freePort }) => {
        assert.match(forwarder.forwarder, /^[a-z][a-z0-9-]*$/, 'forwarder id must be kebab-case')
        const port = await freePort()
        await forwarder.listen({ address, port, target })
        assert.equal(await tryConnect(address, port), 'connected', `nothing accepts on ${address}:${port} after listen()`)
        const [status, ...more] = entries(forwarder, port)
        assert.ok(status, 'listeners() does not show the listener')
        assert.equal(more.length, 0, 'listeners() shows the listener more than once')
        assert.deepEqual(status.target, target, 'listeners() target')
        for (const k of ['openConnections', 'totalConnections', 'bytesIn', 'bytesOut'] as const) {
          assert.ok(Number.isInteger(status[k]) && status[k] >= 0, `listeners() ${k} is ${status[k]}`)
        }
        assert.equal(typeof status.errors, 'object')
      })
    })

    check('listen() twice with the same target is idempotent', false, async () => {
      await withForwarder(async ({ forwarder, freePort }) => {
        const port = await freePort()
        await forwarder.listen({ address, port, target })
        await forwarder.listen({ address, port, target })
        assert.equal(entries(forwarder, port).length, 1, 'listeners() after listening twice')
        assert.equal(await tryConnect(address, port), 'connected')
      })
    })

    check('listen() with another target keeps one listener and takes the new target', false, async () => {
      await withForwarder(async ({ forwarder, freePort }) => {
        const port = await freePort()
        const other: ForwardTarget = { hostname: 'other.prod', port: 8080, proto: 'tcp' }
        await forwarder.listen({ address, port, target })
        await forwarder.listen({ address, port, target: other })
        const listed = entries(forwarder, port)
        assert.equal(listed.length, 1, 'listeners() after re-targeting')
        assert.deepEqual(listed[0]!.target, other, 'listeners() target after re-targeting')
      })
    })

    check('unlisten() stops accepting at once', false, async () => {
      await withForwarder(async ({ forwarder, freePort }) => {
        const [p1, p2] = [await freePort(), await freePort()]
        await forwarder.listen({ address, port: p1, target })
        await forwarder.listen({ address, port: p2, target })
        await forwarder.unlisten({ address, port: p1 })
        assert.equal(entries(forwarder, p1).length, 0, 'listeners() still shows an unlistened port')
        assert.equal(await tryConnect(address, p1), 'refused', `${address}:${p1} still accepts after unlisten()`)
        assert.equal(entries(forwarder, p2).length, 1, 'unlisten() of one port removed another')
        assert.equal(await tryConnect(address, p2), 'connected')
      })
    })

    check('unlisten() of something not listened on resolves', false, async () => {
      await withForwarder(async ({ forwarder, freePort }) => {
        const port = await freePort()
        await forwarder.unlisten({ address, port })
        await forwarder.listen({ address, port, target })
        await forwarder.unlisten({ address, port })
        await forwarder.unlisten({ address, port, drainMs: 10 })
        assert.deepEqual(entries(forwarder, port), [])
      })
    })

    check('close() unlistens everything and may be called more than once', false, async () => {
      await withForwarder(async ({ forwarder, freePort }) => {
        const ports = [await freePort(), await freePort(), await freePort()]
        for (const port of ports) await forwarder.listen({ address, port, target })
        assert.equal(forwarder.listeners().length, 3)
        await forwarder.close()
        await forwarder.close()
        assert.deepEqual(forwarder.listeners(), [], 'listeners() after close()')
        for (const port of ports) assert.equal(await tryConnect(address, port), 'refused', `${address}:${port} still accepts after close()`)
      })
    })

    check('listen() on a port another program holds rejects with a coded error', skip.portInUse, async () => {
      await withForwarder(async ({ forwarder }) => {
        const holder = createServer()
        await new Promise<void>((resolve) => holder.listen({ host: address, port: 0 }, resolve))
        try {
          const port = (holder.address() as { port: number }).port
          await assertRejectsCoded(() => forwarder.listen({ address, port, target }), `listen() on ${address}:${port} held by another server`)
          assert.equal(entries(forwarder, port).length, 0, 'listeners() shows a listener that failed')
        } finally {
          await new Promise((resolve) => holder.close(resolve))
        }
      })
    })

    check('listen() with an already-aborted AbortSignal rejects and listens on nothing', skip.abort, async () => {
      await withForwarder(async ({ forwarder, freePort }) => {
        const port = await freePort()
        await assertRejectsCoded(() => forwarder.listen({ address, port, target, signal: AbortSignal.abort() }), 'listen() with an aborted signal', { abort: true })
        assert.equal(entries(forwarder, port).length, 0)
        assert.equal(await tryConnect(address, port), 'refused')
      })
    })

    check('concurrent listen() and unlisten() calls end in a consistent state', skip.concurrency, async () => {
      await withForwarder(async ({ forwarder, freePort }) => {
        const shared = await freePort()
        const ports = [await freePort(), await freePort(), await freePort(), await freePort()]
        await Promise.all([...Array.from({ length: 5 }, () => forwarder.listen({ address, port: shared, target })), ...ports.map((port) => forwarder.listen({ address, port, target }))])
        assert.equal(entries(forwarder, shared).length, 1, 'five concurrent listen() on one port')
        for (const port of ports) assert.equal(entries(forwarder, port).length, 1, `listen() on ${port}`)
        await Promise.all(ports.slice(0, 2).map((port) => forwarder.unlisten({ address, port })))
        const live = [shared, ...ports.slice(2)]
        assert.deepEqual(
          forwarder.listeners().map((l) => l.port).sort((a, b) => a - b),
          [...live].sort((a, b) => a - b),
          'listeners() after concurrent unlisten()',
        )
        for (const port of live) assert.equal(await tryConnect(address, port), 'connected', `${address}:${port}`)
        for (const port of ports.slice(0, 2)) assert.equal(await tryConnect(address, port), 'refused', `${address}:${port}`)
      })
    })

    check('diagnose() returns well-formed checks', skip.diagnose, async () => {
      await withForwarder(async ({ forwarder }) => {
        await checkDiagnose(() => forwarder.diagnose(), `${forwarder.forwarder} diagnose()`)
      })
    })

    suite.additionalTests?.({ withForwarder })
  })
}
