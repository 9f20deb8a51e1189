import assert from 'node:assert/strict'
import type { NameRecord, NameResolver } from '../../contracts/name-resolver.js'
import { assertRejectsCoded, assertSameSet } from '../assertions.js'
import { TestFramework } from '../test-framework.js'
import { checkDiagnose } from './check-diagnose.js'
import { CALL_DEADLINE_MS, check, settleWithin, SuiteTempDir, withCleanup, withDeadlines } from './suite-support.js'

/** A fresh, empty folder per test (e.g. for a hosts file); two instances in one test share it. */
export interface NameResolverSuiteEnv {
  dir: string
}

export interface NameResolverSuiteSkips {
  /** A second instance over the same env sees what the first published. */
  restart?: boolean
  abort?: boolean
  concurrency?: boolean
  diagnose?: boolean
}

export interface NameResolverSuiteOptions {
  title?: string
  create(env: NameResolverSuiteEnv): NameResolver | Promise<NameResolver>
  /** Reads what is really published without the resolver (parse the hosts file, ask the DNS server). */
  readBack?(env: NameResolverSuiteEnv): NameRecord[] | Promise<NameRecord[]>
  skip?: NameResolverSuiteSkips
  /** How long one call of the resolver (create(), open(), publish(), …) may take before its check fails naming it. Default 30 s. */
  callTimeoutMs?: number
  additionalTests?(ctx: NameResolverSuiteContext): void
}

export interface NameResolverSession {
  env: NameResolverSuiteEnv
  /** Opened. */
  resolver: NameResolver
  /** Another instance over the same env, not opened (closed with the session). */
  create(): Promise<NameResolver>
  /** `readBack(env)` when given, else `resolver.list()`. */
  readBack(): Promise<NameRecord[]>
}

export interface NameResolverSuiteContext {
  withResolver<T>(fn: (session: NameResolverSession) => Promise<T>): Promise<T>
}

const api = (a: string) => ({ hostname: 'api.prod', address: a })
const db = (a: string) => ({ hostname: 'db.prod', address: a })
const web = (a: string) => ({ hostname: 'web.staging', address: a })

/**
 * Registers the NameResolver conformance suite (the rules in `contracts/name-resolver.ts`).
 *
 * ```ts
 * testNameResolver({
 *   create: ({ dir }) => new HostsFileNameResolver({ path: join(dir, 'hosts') }),
 *   readBack: ({ dir }) => parseHostsBlock(readFileSync(join(dir, 'hosts'), 'utf8')),
 * })
 * ```
 */
export function testNameResolver(suite: NameResolverSuiteOptions): void {
  const skip = suite.skip ?? {}
  const temp = new SuiteTempDir('ngrokd-name-resolver-suite')

  async function withResolver<T>(fn: (session: NameResolverSession) => Promise<T>): Promise<T> {
    return withCleanup(async (defer) => {
      const env: NameResolverSuiteEnv = { dir: await temp.fresh() }
      const create = async (): Promise<NameResolver> => {
        const deadline = suite.callTimeoutMs ?? CALL_DEADLINE_MS
        const r = withDeadlines(await settleWithin(Promise.resolve(suite.create(env)), 'create()', deadline), 'resolver', deadline)
        defer(() => r.close())
        return r
      }
      const resolver = await create()
      await resolver.open()
      const readBack = async () => (suite.readBack ? suite.readBack(env) : resolver.list())
      return fn({ env, resolver, create, readBack })
    })
  }

  /** list() and the independent read-back both equal `expected`. */
  async function expectPublished(s: NameResolverSession, expected: readonly NameRecord[], when: string): Promise<void> {
    assertSameSet((await s.resolver.list()).map(text), expected.map(text), `list() ${when}`)
    if (suite.readBack) assertSameSet((await s.readBack()).map(text), expected.map(text), `read-back ${when}`)
  }

  TestFramework.describe(suite.title ?? 'name resolver conformance', () => {
    temp.registerHooks()

    check('list() is empty on a fresh system', false, async () => {
      await withResolver(async (s) => {
        assert.match(s.resolver.resolver, /^[a-z][a-z0-9-]*$/, 'resolver id must be kebab-case')
        await expectPublished(s, [], 'after open()')
      })
    })

    check('publish() replaces the whole published set', false, async () => {
      await withResolver(async (s) => {
        const first = [api('10.107.0.2'), db('10.107.0.3')]
        assert.deepEqual(await s.resolver.publish({ records: first }), { changed: true })
        await expectPublished(s, first, 'after the first publish()')
        const second = [db('10.107.0.3'), web('10.107.0.4')]
        assert.deepEqual(await s.resolver.publish({ records: second }), { changed: true })
        await expectPublished(s, second, 'after publishing another set')
      })
    })

    check('a new address for a published hostname replaces the old one', false, async () => {
      await withResolver(async (s) => {
        await s.resolver.publish({ records: [api('10.107.0.2'), db('10.107.0.3')] })
        assert.deepEqual(await s.resolver.publish({ records: [api('10.107.0.9'), db('10.107.0.3')] }), { changed: true })
        await expectPublished(s, [api('10.107.0.9'), db('10.107.0.3')], 'after moving api.prod')
      })
    })

    check('publishing the same set again reports changed: false', false, async () => {
      await withResolver(async (s) => {
        const records = [api('10.107.0.2'), db('10.107.0.3'), web('10.107.0.4')]
        assert.deepEqual(await s.resolver.publish({ records }), { changed: true })
        assert.deepEqual(await s.resolver.publish({ records }), { changed: false }, 'the same records twice')
        assert.deepEqual(await s.resolver.publish({ records: [...records] }), { changed: false }, 'an equal copy of the records')
        await expectPublished(s, records, 'after publishing the same set three times')
      })
    })

    check('the order of records does not matter', false, async () => {
      await withResolver(async (s) => {
        const records = [api('10.107.0.2'), db('10.107.0.3'), web('10.107.0.4')]
        await s.resolver.publish({ records })
        assert.deepEqual(await s.resolver.publish({ records: [...records].reverse() }), { changed: false }, 'the same set in another order')
      })
    })

    check('publish({ records: [] }) removes everything published', false, async () => {
      await withResolver(async (s) => {
        await s.resolver.publish({ records: [api('10.107.0.2'), db('10.107.0.3')] })
        assert.deepEqual(await s.resolver.publish({ records: [] }), { changed: true })
        await expectPublished(s, [], 'after publishing an empty set')
        assert.deepEqual(await s.resolver.publish({ records: [] }), { changed: false }, 'an empty set twice')
      })
    })

    check('many records round-trip', false, async () => {
      await withResolver(async (s) => {
        const records = Array.from({ length: 200 }, (_, i) => ({ hostname: `svc${i}.ns${i % 7}`, address: `10.107.0.${i + 2}` }))
        await s.resolver.publish({ records })
        await expectPublished(s, records, 'after publishing 200 records')
      })
    })

    check('a second instance reads back what the first published', skip.restart, async () => {
      await withResolver(async (s) => {
        const records = [api('10.107.0.2'), db('10.107.0.3')]
        await s.resolver.publish({ records })
        await s.resolver.close()
        const next = await s.create()
        await next.open()
        assertSameSet((await next.list()).map(text), records.map(text), 'list() of a second instance')
        assert.deepEqual(await next.publish({ records }), { changed: false }, 'the second instance publishing the same set')
      })
    })

    check('close() may be called more than once and does not unpublish', false, async () => {
      await withResolver(async (s) => {
        const records = [api('10.107.0.2')]
        await s.resolver.publish({ records })
        await s.resolver.close()
        await s.resolver.close()
        if (suite.readBack) assertSameSet((await s.readBack()).map(text), records.map(text), 'read-back after close()')
      })
    })

    check('publish() before open() rejects with a coded error or opens first', false, async () => {
      await withResolver(async (s) => {
        // The contract leaves it open; either way nothing half-done may result.
        const fresh = await s.create()
        const records = [api('10.107.0.2')]
        let refused = false
        await fresh.publish({ records }).then(
          () => undefined,
          async (e: unknown) => {
            refused = true
            await assertRejectsCoded(Promise.reject(e), 'publish() before open()')
          },
        )
        await expectPublished(s, refused ? [] : records, refused ? 'after a refused publish()' : 'after publish() without open()')
      })
    })

    check('an already-aborted AbortSignal rejects and changes nothing', skip.abort, async () => {
      await withResolver(async (s) => {
        const records = [api('10.107.0.2')]
        await s.resolver.publish({ records })
        await assertRejectsCoded(() => s.resolver.publish({ records: [db('10.107.0.3')], signal: AbortSignal.abort() }), 'publish() with an aborted signal', { abort: true })
        await expectPublished(s, records, 'after an aborted publish()')
        const fresh = await s.create()
        await assertRejectsCoded(() => fresh.open({ signal: AbortSignal.abort() }), 'open() with an aborted signal', { abort: true })
      })
    })

    check('concurrent publish() calls leave exactly one of the sets', skip.concurrency, async () => {
      await withResolver(async (s) => {
        const sets = Array.from({ length: 6 }, (_, i) => [api(`10.107.1.${i + 2}`), db(`10.107.2.${i + 2}`), ...(i % 2 ? [web(`10.107.3.${i + 2}`)] : [])])
        await Promise.all(sets.map((records) => s.resolver.publish({ records })))
        const listed = (await s.resolver.list()).map(text).sort()
        assert.ok(
          sets.some((set) => JSON.stringify(set.map(text).sort()) === JSON.stringify(listed)),
          `after concurrent publishes list() is a mix of sets: [${listed.join(', ')}]`,
        )
        if (suite.readBack) assertSameSet((await s.readBack()).map(text), listed, 'read-back after concurrent publishes')
      })
    })

    check('diagnose() returns well-formed checks', skip.diagnose, async () => {
      await withResolver(async (s) => {
        await checkDiagnose(() => s.resolver.diagnose(), `${s.resolver.resolver} diagnose()`)
      })
    })

    suite.additionalTests?.({ withResolver })
  })
}

function text(r: NameRecord): string {
  return `${r.hostname} ${r.address}`
}
