import assert from 'node:assert/strict'
import type { Allocation, Allocator } from '../../contracts/allocator.js'
import { isNgrokdError } from '../../errors/ngrokd-error.js'
import { isIpv4, parseSubnet, subnetContains } from '../../util/ipv4.js'
import { assertRejectsCoded, assertSameSet } from '../assertions.js'
import { TestFramework } from '../test-framework.js'
import { checkDiagnose } from './check-diagnose.js'
import { check, SuiteTempDir, withCleanup } from './suite-support.js'

/** A fresh, empty state folder per test; two instances in one test share it (a restart). */
export interface AllocatorSuiteEnv {
  stateDir: string
}

export interface AllocatorSuiteSkips {
  /** Reusing released addresses once no never-used address is left (DESIGN: "unless the subnet is exhausted"). */
  reuseReleased?: boolean
  concurrency?: boolean
  diagnose?: boolean
}

export interface AllocatorSuiteOptions {
  title?: string
  create(env: AllocatorSuiteEnv): Allocator | Promise<Allocator>
  /** The allocator keeps its mappings across restarts (a second instance over the same env). */
  persistent?: boolean
  skip?: AllocatorSuiteSkips
  additionalTests?(ctx: AllocatorSuiteContext): void
}

export interface AllocatorSession {
  env: AllocatorSuiteEnv
  /** Another instance over the same env, not opened (closed with the session). */
  create(): Promise<Allocator>
}

export interface AllocatorSuiteContext {
  withAllocator<T>(fn: (session: AllocatorSession) => Promise<T>): Promise<T>
}

const SUBNET = '10.250.0.0/24'
// 8 addresses: .0 network, .1–.6 hosts, .7 broadcast
const TINY = '10.250.1.0/29'

/**
 * Registers the Allocator conformance suite (the rules in `contracts/allocator.ts`).
 *
 * ```ts
 * testAllocator({ create: ({ stateDir }) => new PersistentAllocator({ stateDir }), persistent: true })
 * ```
 */
export function testAllocator(suite: AllocatorSuiteOptions): void {
  const skip = suite.skip ?? {}
  const temp = new SuiteTempDir('ngrokd-allocator-suite')

  async function withAllocator<T>(fn: (session: AllocatorSession) => Promise<T>): Promise<T> {
    return withCleanup(async (defer) => {
      const env: AllocatorSuiteEnv = { stateDir: await temp.fresh() }
      const create = async (): Promise<Allocator> => {
        const a = await suite.create(env)
        defer(() => a.close())
        return a
      }
      return fn({ env, create })
    })
  }

  /** An opened allocator in a fresh env. */
  async function opened<T>(options: { subnet: string; reserved?: string[] }, fn: (a: Allocator, s: AllocatorSession) => Promise<T>): Promise<T> {
    return withAllocator(async (s) => {
      const a = await s.create()
      await a.open(options)
      return fn(a, s)
    })
  }

  TestFramework.describe(suite.title ?? 'allocator conformance', () => {
    temp.registerHooks()

    check('gives each hostname one address inside the subnet, all different', false, async () => {
      await opened({ subnet: SUBNET }, async (a) => {
        assert.match(a.allocator, /^[a-z][a-z0-9-]*$/, 'allocator id must be kebab-case')
        const names = Array.from({ length: 10 }, (_, i) => `svc${i}.prod`)
        const got = byHost(await a.allocate({ hostnames: names }), names)
        const s = parseSubnet(SUBNET)
        for (const n of names) {
          const address = got.get(n)!
          assert.ok(isIpv4(address) && subnetContains(s, address), `${n} got ${address}, outside ${SUBNET}`)
          assert.equal(a.lookup(n), address, `lookup(${n})`)
        }
        assertSameSet([...got.values()], [...new Set(got.values())], 'addresses given')
        assertSameSet(
          a.list().filter((e) => e.active).map((e) => `${e.hostname} ${e.address}`),
          names.map((n) => `${n} ${got.get(n)}`),
          'list() of active entries',
        )
      })
    })

    check('the same hostname gets the same address', false, async () => {
      await opened({ subnet: SUBNET }, async (a) => {
        const names = ['a.prod', 'b.prod', 'c.prod']
        const first = byHost(await a.allocate({ hostnames: names }), names)
        const again = byHost(await a.allocate({ hostnames: [...names].reverse() }), names)
        const alone = byHost(await a.allocate({ hostnames: ['b.prod'] }), ['b.prod'])
        for (const n of names) assert.equal(again.get(n), first.get(n), `${n} in a second batch`)
        assert.equal(alone.get('b.prod'), first.get('b.prod'), 'b.prod alone')
        await a.release({ hostnames: ['b.prod'] })
        const back = byHost(await a.allocate({ hostnames: ['b.prod'] }), ['b.prod'])
        assert.equal(back.get('b.prod'), first.get('b.prod'), 'b.prod after release and allocate again')
        assert.equal(a.list().find((e) => e.hostname === 'b.prod')?.active, true, 'b.prod is active again')
      })
    })

    check('never gives the network, broadcast or a reserved address; exhaustion fails only the hostnames not served', false, async () => {
      await opened({ subnet: TINY, reserved: ['10.250.1.1', '10.250.1.2'] }, async (a) => {
        const names = Array.from({ length: 7 }, (_, i) => `n${i}.prod`)
        const results = await a.allocate({ hostnames: names })
        assertSameSet(results.map((r) => r.hostname), names, 'hostnames of the allocate() result')
        const served = results.filter((r): r is { hostname: string; address: string } => 'address' in r)
        const failed = results.filter((r): r is { hostname: string; error: Error } => 'error' in r)
        assertSameSet(served.map((r) => r.address), ['10.250.1.3', '10.250.1.4', '10.250.1.5', '10.250.1.6'], 'addresses given from a /29 with .1 and .2 reserved')
        assert.equal(failed.length, 3, 'the hostnames that did not fit')
        for (const f of failed) {
          assert.ok(isNgrokdError(f.error, 'NGROKD_ERR_ADDRESS_EXHAUSTED'), `${f.hostname} failed with ${String(f.error)}, expected NGROKD_ERR_ADDRESS_EXHAUSTED`)
          assert.equal(a.lookup(f.hostname), undefined, `lookup(${f.hostname}) of a hostname that got no address`)
        }
        const again = byHost(await a.allocate({ hostnames: served.map((r) => r.hostname) }), served.map((r) => r.hostname))
        for (const r of served) assert.equal(again.get(r.hostname), r.address, `${r.hostname} allocated again in a full subnet`)
      })
    })

    check('a released address is not given to another hostname while never-used ones remain', false, async () => {
      await opened({ subnet: TINY, reserved: ['10.250.1.1'] }, async (a) => {
        const x = byHost(await a.allocate({ hostnames: ['x.prod'] }), ['x.prod']).get('x.prod')!
        await a.release({ hostnames: ['x.prod'] })
        assert.equal(a.lookup('x.prod'), x, 'lookup() keeps a released mapping')
        assert.deepEqual(a.list().find((e) => e.hostname === 'x.prod'), { hostname: 'x.prod', address: x, active: false }, 'list() entry of a released hostname')
        const others = ['p.prod', 'q.prod', 'r.prod', 's.prod']
        const got = byHost(await a.allocate({ hostnames: others }), others)
        for (const n of others) assert.notEqual(got.get(n), x, `${n} got the released address ${x} while never-used ones remained`)
      })
    })

    check('released addresses are reused once no never-used address is left', skip.reuseReleased, async () => {
      await opened({ subnet: TINY, reserved: ['10.250.1.1'] }, async (a) => {
        const five = ['v.prod', 'w.prod', 'x.prod', 'y.prod', 'z.prod']
        const got = byHost(await a.allocate({ hostnames: five }), five)
        await a.release({ hostnames: ['x.prod'] })
        const late = byHost(await a.allocate({ hostnames: ['late.prod'] }), ['late.prod'])
        assert.equal(late.get('late.prod'), got.get('x.prod'), 'the only free address is the released one')
        assert.notEqual(a.lookup('x.prod'), got.get('x.prod'), 'x.prod still maps to an address another hostname now has')
      })
    })

    check('release() of unknown or already released hostnames resolves', false, async () => {
      await opened({ subnet: SUBNET }, async (a) => {
        await a.release({ hostnames: ['never.prod'] })
        await a.allocate({ hostnames: ['once.prod'] })
        await a.release({ hostnames: ['once.prod'] })
        await a.release({ hostnames: ['once.prod'] })
        assert.equal(a.list().find((e) => e.hostname === 'once.prod')?.active, false)
      })
    })

    check('concurrent allocate() calls give different addresses', skip.concurrency, async () => {
      await opened({ subnet: SUBNET }, async (a) => {
        const names = Array.from({ length: 20 }, (_, i) => `c${i}.prod`)
        const results = await Promise.all(names.map((n) => a.allocate({ hostnames: [n] })))
        const addresses = results.map((r, i) => byHost(r, [names[i]!]).get(names[i]!)!)
        assertSameSet(addresses, [...new Set(addresses)], 'addresses from concurrent allocate() calls')
        names.forEach((n, i) => assert.equal(a.lookup(n), addresses[i], `lookup(${n})`))
      })
    })

    check('a different subnet on open() drops the old mappings', false, async () => {
      await withAllocator(async (s) => {
        const first = await s.create()
        await first.open({ subnet: SUBNET })
        await first.allocate({ hostnames: ['m.prod', 'n.prod'] })
        await first.close()
        const second = await s.create()
        await second.open({ subnet: TINY })
        const s2 = parseSubnet(TINY)
        for (const e of second.list()) assert.ok(subnetContains(s2, e.address), `list() still holds ${e.hostname} ${e.address} from the old subnet`)
        const got = byHost(await second.allocate({ hostnames: ['m.prod'] }), ['m.prod'])
        assert.ok(subnetContains(s2, got.get('m.prod')!), `m.prod got ${got.get('m.prod')} outside the new subnet ${TINY}`)
      })
    })

    check('mappings survive a restart', !suite.persistent, async () => {
      await withAllocator(async (s) => {
        const first = await s.create()
        await first.open({ subnet: SUBNET })
        const got = byHost(await first.allocate({ hostnames: ['k.prod', 'l.prod'] }), ['k.prod', 'l.prod'])
        await first.release({ hostnames: ['l.prod'] })
        await first.close()
        const second = await s.create()
        await second.open({ subnet: SUBNET })
        assert.equal(second.lookup('k.prod'), got.get('k.prod'), 'k.prod after a restart')
        assert.equal(second.lookup('l.prod'), got.get('l.prod'), 'released l.prod after a restart')
        const fresh = byHost(await second.allocate({ hostnames: ['new.prod'] }), ['new.prod']).get('new.prod')
        assert.ok(fresh !== got.get('k.prod') && fresh !== got.get('l.prod'), `new.prod got ${fresh}, an address already mapped`)
      })
    })

    check('allocate() before open() rejects with a coded error', false, async () => {
      await withAllocator(async (s) => {
        const a = await s.create()
        await assertRejectsCoded(() => a.allocate({ hostnames: ['early.prod'] }), 'allocate() before open()')
      })
    })

    check('open() with a malformed subnet rejects with a coded error', false, async () => {
      await withAllocator(async (s) => {
        const a = await s.create()
        await assertRejectsCoded(() => a.open({ subnet: 'not-a-subnet' }), 'open({ subnet: "not-a-subnet" })')
      })
    })

    check('close() may be called more than once', false, async () => {
      await opened({ subnet: SUBNET }, async (a) => {
        await a.allocate({ hostnames: ['z.prod'] })
        await a.close()
        await a.close()
      })
    })

    check('diagnose() returns well-formed checks', skip.diagnose, async () => {
      await opened({ subnet: SUBNET }, async (a) => {
        await checkDiagnose(() => a.diagnose(), `${a.allocator} diagnose()`)
      })
    })

    suite.additionalTests?.({ withAllocator })
  })
}

/** hostname → address; asserts every hostname was served. */
function byHost(results: Allocation[], hostnames: readonly string[]): Map<string, string> {
  const out = new Map<string, string>()
  for (const r of results) {
    if ('error' in r) assert.fail(`${r.hostname} was not served: ${String(r.error)}`)
    out.set(r.hostname, r.address)
  }
  for (const h of hostnames) assert.ok(out.has(h), `allocate() result has no entry for ${h}`)
  return out
}
