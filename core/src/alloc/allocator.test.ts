import { describe, it, before, after, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, rm, readFile, writeFile, readdir, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Allocation } from '../contracts/allocator.js'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { MemoryAllocator } from './memory-allocator.js'
import { PersistentAllocator } from './persistent-allocator.js'
import { TestFramework } from '../testing/test-framework.js'
import { recordingLogger } from '../testing/recording-logger.js'
import { testAllocator } from '../testing/suites/allocator-suite.js'

TestFramework.use({ describe, it, beforeAll: before, afterAll: after })
// MemoryAllocator runs the same suite in the kit's own self-test.
testAllocator({
  title: 'PersistentAllocator: allocator conformance',
  create: ({ stateDir }) => new PersistentAllocator({ stateDir }),
  persistent: true,
})

function addressOf(a: Allocation): string {
  assert.ok('address' in a, `${a.hostname}: ${'error' in a ? a.error.message : ''}`)
  return a.address
}

class CountingAllocator extends PersistentAllocator {
  writes = 0
  protected override async persist(): Promise<void> {
    this.writes++
    await super.persist()
  }
}

describe('MemoryAllocator', () => {
  it('never hands out the network, broadcast or reserved addresses, and exhausts per hostname', async () => {
    const alloc = new MemoryAllocator()
    await alloc.open({ subnet: '10.9.0.0/29', reserved: ['10.9.0.1', '192.168.1.1'] })
    const names = ['a.x', 'b.x', 'c.x', 'd.x', 'e.x', 'f.x', 'g.x']
    const results = await alloc.allocate({ hostnames: names })
    assert.deepEqual(results.slice(0, 5).map(addressOf), ['10.9.0.2', '10.9.0.3', '10.9.0.4', '10.9.0.5', '10.9.0.6'])
    for (const r of results.slice(5)) {
      assert.ok('error' in r)
      assert.ok(isNgrokdError(r.error, 'NGROKD_ERR_ADDRESS_EXHAUSTED'), String(r.error))
      assert.match(r.error.message, new RegExp(`10\\.9\\.0\\.0/29 for ${r.hostname.replace('.', '\\.')}`))
    }
    assert.deepEqual(results.map((r) => r.hostname), names)
    assert.equal(alloc.lookup('f.x'), undefined)
    const [diag] = await alloc.diagnose()
    assert.equal(diag!.status, 'fail')
    assert.equal(diag!.code, 'NGROKD_ERR_ADDRESS_EXHAUSTED')
  })

  it('keeps released mappings and does not reuse them while never-used addresses remain', async () => {
    const alloc = new MemoryAllocator()
    await alloc.open({ subnet: '10.9.0.0/24' })
    const [a, b] = (await alloc.allocate({ hostnames: ['a.x', 'b.x'] })).map(addressOf)
    await alloc.release({ hostnames: ['a.x', 'nobody.x'] })
    assert.equal(alloc.lookup('a.x'), a)
    assert.deepEqual(alloc.list(), [
      { hostname: 'a.x', address: a, active: false },
      { hostname: 'b.x', address: b, active: true },
    ])
    const [c] = (await alloc.allocate({ hostnames: ['c.x'] })).map(addressOf)
    assert.notEqual(c, a)
    assert.notEqual(c, b)
    const [again] = (await alloc.allocate({ hostnames: ['a.x'] })).map(addressOf)
    assert.equal(again, a)
    assert.equal(alloc.list().find((e) => e.hostname === 'a.x')!.active, true)
  })

  it('recycles the oldest released mapping once the subnet is full', async () => {
    const alloc = new MemoryAllocator()
    await alloc.open({ subnet: '10.9.0.0/29' })
    const addrs = (await alloc.allocate({ hostnames: ['a.x', 'b.x', 'c.x', 'd.x', 'e.x', 'f.x'] })).map(addressOf)
    await alloc.release({ hostnames: ['d.x'] })
    await alloc.release({ hostnames: ['b.x'] })
    await alloc.release({ hostnames: ['d.x'] }) // already released: keeps its place in the queue
    const [n1, n2, n3] = await alloc.allocate({ hostnames: ['new1.x', 'new2.x', 'new3.x'] })
    assert.equal(addressOf(n1!), addrs[3]) // d.x was released first
    assert.equal(addressOf(n2!), addrs[1])
    assert.ok('error' in n3! && isNgrokdError(n3.error, 'NGROKD_ERR_ADDRESS_EXHAUSTED'))
    assert.equal(alloc.lookup('d.x'), undefined)
    assert.equal(alloc.lookup('b.x'), undefined)
  })

  it('gives a hostname repeated in one batch the same address', async () => {
    const alloc = new MemoryAllocator()
    await alloc.open({ subnet: '10.9.0.0/24' })
    const r = await alloc.allocate({ hostnames: ['a.x', 'a.x'] })
    assert.equal(addressOf(r[0]!), addressOf(r[1]!))
    assert.equal(alloc.list().length, 1)
  })

  it('rejects use before open() and a bad subnet with coded errors', async () => {
    const alloc = new MemoryAllocator()
    await assert.rejects(alloc.allocate({ hostnames: ['a.x'] }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_DRIVER_MISUSE'))
    await assert.rejects(alloc.open({ subnet: '10.9.0.1/24' }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'))
    await assert.rejects(alloc.open({ subnet: 'nope' }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'))
    await assert.rejects(alloc.open({ subnet: '10.9.0.0/24', reserved: ['x'] }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'))
    await alloc.open({ subnet: '10.9.0.0/24' })
    await alloc.close()
    await alloc.close()
    await assert.rejects(alloc.release({ hostnames: ['a.x'] }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_DRIVER_MISUSE'))
  })

  it('keeps mappings across a re-open with the same subnet and drops them on a new one', async () => {
    const logger = recordingLogger()
    const alloc = new MemoryAllocator({ logger })
    await alloc.open({ subnet: '10.9.0.0/24' })
    const [a] = (await alloc.allocate({ hostnames: ['a.x'] })).map(addressOf)
    await alloc.close()
    await alloc.open({ subnet: '10.9.0.0/24' })
    assert.equal(alloc.lookup('a.x'), a)
    await alloc.open({ subnet: '10.10.0.0/24' })
    assert.equal(alloc.lookup('a.x'), undefined)
    assert.equal(logger.at('warn').filter((l) => /net\.subnet changed/.test(l.msg)).length, 1)
  })
})

describe('PersistentAllocator', () => {
  let dir: string
  let stateFile: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ngrokd-alloc-'))
    stateFile = join(dir, 'state', 'allocations.json')
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('gives the same hostname the same address across restarts, released ones included', async () => {
    const first = new PersistentAllocator({ stateFile })
    await first.open({ subnet: '10.107.0.0/16', reserved: ['10.107.0.1'] })
    const before = (await first.allocate({ hostnames: ['api.prod', 'db.prod', 'web.prod'] })).map(addressOf)
    assert.deepEqual(before, ['10.107.0.2', '10.107.0.3', '10.107.0.4'])
    await first.release({ hostnames: ['db.prod'] })
    await first.close()
    assert.equal((await stat(stateFile)).mode & 0o777, 0o600)

    const second = new PersistentAllocator({ stateFile })
    await second.open({ subnet: '10.107.0.0/16', reserved: ['10.107.0.1'] })
    assert.deepEqual(second.list(), [
      { hostname: 'api.prod', address: '10.107.0.2', active: true },
      { hostname: 'db.prod', address: '10.107.0.3', active: false },
      { hostname: 'web.prod', address: '10.107.0.4', active: true },
    ])
    // In another order, with a new name first: old names keep their addresses, the new one takes a never-used one.
    const after = (await second.allocate({ hostnames: ['new.prod', 'web.prod', 'db.prod', 'api.prod'] })).map(addressOf)
    assert.deepEqual(after, ['10.107.0.5', '10.107.0.4', '10.107.0.3', '10.107.0.2'])
  })

  it('remembers the release order across restarts', async () => {
    const first = new PersistentAllocator({ stateFile })
    await first.open({ subnet: '10.9.0.0/29' })
    const addrs = (await first.allocate({ hostnames: ['a.x', 'b.x', 'c.x', 'd.x', 'e.x', 'f.x'] })).map(addressOf) // fills .1–.6
    await first.release({ hostnames: ['e.x'] })
    await first.release({ hostnames: ['a.x'] })
    await first.close()
    const second = new PersistentAllocator({ stateFile })
    await second.open({ subnet: '10.9.0.0/29' })
    const [n] = await second.allocate({ hostnames: ['n.x'] })
    assert.equal(addressOf(n!), addrs[4])
    assert.equal(second.lookup('a.x'), addrs[0])
  })

  it('writes once per batch, and not at all when nothing changed', async () => {
    const alloc = new CountingAllocator({ stateFile })
    await alloc.open({ subnet: '10.107.0.0/16', reserved: ['10.107.0.1'] })
    assert.equal(alloc.writes, 0)
    const hostnames = Array.from({ length: 10_000 }, (_, i) => `svc-${i}.ns-${i % 7}`)
    const results = await alloc.allocate({ hostnames })
    assert.equal(alloc.writes, 1)
    const addrs = results.map(addressOf)
    assert.equal(new Set(addrs).size, 10_000)
    assert.ok(!addrs.includes('10.107.0.0') && !addrs.includes('10.107.0.1') && !addrs.includes('10.107.255.255'))
    const saved = JSON.parse(await readFile(stateFile, 'utf8')) as { entries: unknown[] }
    assert.equal(saved.entries.length, 10_000)

    await alloc.allocate({ hostnames })
    assert.equal(alloc.writes, 1)
    await alloc.release({ hostnames: ['nobody.x'] })
    assert.equal(alloc.writes, 1)
    await alloc.release({ hostnames: hostnames.slice(0, 5000) })
    assert.equal(alloc.writes, 2)
    await alloc.close()

    const reopened = new PersistentAllocator({ stateFile })
    await reopened.open({ subnet: '10.107.0.0/16', reserved: ['10.107.0.1'] })
    assert.equal(reopened.lookup('svc-9999.ns-3'), addrs[9999])
    assert.equal(reopened.list().filter((e) => !e.active).length, 5000)
  })

  it('drops the old mappings once when the subnet changes, and logs it once', async () => {
    const first = new PersistentAllocator({ stateFile })
    await first.open({ subnet: '10.9.0.0/24' })
    await first.allocate({ hostnames: ['a.x', 'b.x'] })
    await first.close()

    const logger = recordingLogger()
    const second = new PersistentAllocator({ stateFile, logger })
    await second.open({ subnet: '10.50.0.0/24' })
    assert.deepEqual(second.list(), [])
    assert.equal(addressOf((await second.allocate({ hostnames: ['b.x'] }))[0]!), '10.50.0.1')
    await second.close()
    const warnings = logger.at('warn')
    assert.equal(warnings.length, 1)
    assert.match(warnings[0]!.msg, /10\.9\.0\.0\/24 to 10\.50\.0\.0\/24; dropping 2/)

    const third = new PersistentAllocator({ stateFile, logger })
    await third.open({ subnet: '10.50.0.0/24' })
    assert.equal(logger.at('warn').length, 1)
    assert.equal(third.lookup('b.x'), '10.50.0.1')
    assert.equal(third.lookup('a.x'), undefined)
  })

  it('drops a mapping whose address became reserved', async () => {
    const first = new PersistentAllocator({ stateFile })
    await first.open({ subnet: '10.9.0.0/24' })
    await first.allocate({ hostnames: ['a.x', 'b.x'] })
    await first.close()
    const second = new PersistentAllocator({ stateFile })
    await second.open({ subnet: '10.9.0.0/24', reserved: ['10.9.0.1'] })
    assert.equal(second.lookup('a.x'), undefined)
    assert.equal(second.lookup('b.x'), '10.9.0.2')
    assert.equal(addressOf((await second.allocate({ hostnames: ['a.x'] }))[0]!), '10.9.0.3')
  })

  for (const [what, content] of [
    ['not json', '{"version":1,"subnet":"10.9.0.0/24","entr'],
    ['two names on one address', JSON.stringify({ version: 1, subnet: '10.9.0.0/24', entries: [{ hostname: 'a.x', address: '10.9.0.2', active: true }, { hostname: 'b.x', address: '10.9.0.2', active: true }] })],
    ['a bad address', JSON.stringify({ version: 1, subnet: '10.9.0.0/24', entries: [{ hostname: 'a.x', address: '10.9.0.999', active: true }] })],
    ['an unknown version', JSON.stringify({ version: 7, subnet: '10.9.0.0/24', entries: [] })],
  ] as const) {
    it(`moves a corrupt state file aside (${what}) and starts afresh`, async () => {
      const logger = recordingLogger()
      const alloc = new PersistentAllocator({ stateFile, logger })
      await alloc.open({ subnet: '10.9.0.0/24' }) // creates nothing yet
      await alloc.allocate({ hostnames: ['seed.x'] })
      await alloc.close()
      await writeFile(stateFile, content)
      await alloc.open({ subnet: '10.9.0.0/24' })
      assert.deepEqual(alloc.list(), [])
      const files = await readdir(join(dir, 'state'))
      const aside = files.filter((f) => f.startsWith('allocations.json.corrupt-'))
      assert.equal(aside.length, 1)
      assert.equal(await readFile(join(dir, 'state', aside[0]!), 'utf8'), content)
      assert.ok(logger.at('warn').some((l) => /corrupt/.test(l.msg)))
      assert.equal(addressOf((await alloc.allocate({ hostnames: ['a.x'] }))[0]!), '10.9.0.1')
      assert.match(await readFile(stateFile, 'utf8'), /"a\.x"/)
    })
  }

  it('a directory or a FIFO where the state file goes is not ngrokd\'s: the fix is to remove it, as for the registration\'s files', { timeout: 60_000 }, async () => {
    const notOurs = (kind: string) => (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_STATE'), String(e))
      assert.equal(e.message, `allocator: ${stateFile} is ${kind}, not a file of ngrokd's`)
      assert.equal(e.hint, `remove it (rm -r ${stateFile}); ngrokd writes it anew (hostnames will get new addresses)`)
      return true
    }
    await mkdir(stateFile, { recursive: true })
    await assert.rejects(new PersistentAllocator({ stateFile }).open({ subnet: '10.9.0.0/24' }), notOurs('a directory'))
    // made after the start: the write's rename over it fails
    await rm(stateFile, { recursive: true })
    const alloc = new PersistentAllocator({ stateFile })
    await alloc.open({ subnet: '10.9.0.0/24' })
    await mkdir(stateFile)
    await assert.rejects(alloc.allocate({ hostnames: ['a.x'] }), notOurs('a directory'))
    await rm(stateFile, { recursive: true })
    if (process.platform !== 'win32') {
      execFileSync('mkfifo', [stateFile]) // read, it would wait for a writer
      await assert.rejects(new PersistentAllocator({ stateFile }).open({ subnet: '10.9.0.0/24' }), notOurs('not a regular file'))
    }
  })

  it('reports a failed write as NGROKD_ERR_STATE and saves on the next batch', async () => {
    const blocker = join(dir, 'state')
    await writeFile(blocker, 'not a directory')
    const alloc = new PersistentAllocator({ stateFile })
    // ENOTDIR is not "no state yet": open() must fail rather than start afresh and lose mappings.
    await alloc.open({ subnet: '10.9.0.0/24' })
      .then(
        () => assert.fail('open should fail while the state path is unusable'),
        (e: unknown) => assert.ok(isNgrokdError(e, 'NGROKD_ERR_STATE'), String(e)),
      )
    await rm(blocker)
    await alloc.open({ subnet: '10.9.0.0/24' })
    await writeFile(blocker, 'not a directory')
    await assert.rejects(alloc.allocate({ hostnames: ['a.x'] }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_STATE'))
    await rm(blocker)
    await alloc.allocate({ hostnames: ['a.x'] }) // nothing new, but the earlier batch is still unsaved
    const again = new PersistentAllocator({ stateFile })
    await again.open({ subnet: '10.9.0.0/24' })
    assert.equal(again.lookup('a.x'), '10.9.0.1')
  })

  it('diagnoses the subnet and the state directory', async () => {
    const alloc = new PersistentAllocator({ stateFile })
    assert.deepEqual((await alloc.diagnose()).map((c) => c.status), ['skip', 'ok'])
    await alloc.open({ subnet: '10.9.0.0/24' })
    await alloc.allocate({ hostnames: ['a.x'] })
    const checks = await alloc.diagnose()
    assert.deepEqual(checks.map((c) => [c.id, c.status]), [
      ['allocator.subnet', 'ok'],
      ['allocator.state-file', 'ok'],
    ])
    assert.match(checks[0]!.summary, /1 of 254 addresses in 10\.9\.0\.0\/24/)
  })
})
