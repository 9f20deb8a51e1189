import { describe, it, mock } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { loadLibc } from './libc.js'
import v8 from 'node:v8'
import { collectAllGarbage, exposedGc, type GcFunction } from './exposed-gc.js'
import {
  COLLECT_AFTER_LISTENER_CHANGES, COLLECT_AFTER_SERVICES, RELEASE_AFTER_START_MS, SETTLE_AFTER_RECONCILE_MS, SETTLE_RETRIES, type GarbageCollection,
  releaseAfterReconcile, releaseFreedMemory, releaseFreedMemoryAfterStart, youngGenerationGrown,
} from './release-memory.js'

const MiB = 1024 * 1024

/** Anonymous memory resident in this process, from /proc/self/smaps_rollup. */
function anonymousBytes(): number {
  const kib = /^Anonymous:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'))?.[1]
  return Number(kib) * 1024
}

describe('releaseFreedMemory', { skip: process.platform !== 'linux' ? 'malloc_trim is glibc\'s (Linux)' : false }, () => {
  it('gives C-heap pages freed in the middle of the heap back to the system', async () => {
    const libc = loadLibc()
    const malloc = libc.func('void *malloc(size_t size)') as (size: number) => unknown
    const memset = libc.func('void *memset(void *p, int c, size_t n)') as (p: unknown, c: number, n: number) => unknown
    const free = libc.func('void free(void *p)') as (p: unknown) => void
    // 64 MiB in 16 KiB blocks (below glibc's mmap threshold: from the heap), touched so they are resident,
    // each followed by a small block that stays: freed, they are holes glibc keeps for reuse, as after a start
    const blocks: unknown[] = []
    const live: unknown[] = []
    for (let i = 0; i < (64 * MiB) / (16 * 1024); i++) {
      const p = malloc(16 * 1024)
      memset(p, 1, 16 * 1024)
      blocks.push(p)
      live.push(malloc(64))
    }
    for (const p of blocks) free(p)
    const kept = anonymousBytes()
    await releaseFreedMemory()
    const released = kept - anonymousBytes()
    for (const p of live) free(p)
    assert.ok(released >= 32 * MiB, `${released / MiB} MiB given back of the 64 MiB freed`)
  })
})

describe('releaseFreedMemory({ collectGarbage })', () => {
  it("collects V8's whole heap: what a big reconcile left behind is gone", async () => {
    let garbage: Array<{ name: string; tags: number[] }> | undefined = []
    for (let i = 0; i < 300_000; i++) garbage.push({ name: `svc${i}.bench`, tags: [i, i + 1] })
    garbage = undefined
    const before = process.memoryUsage().heapUsed // nothing allocates between here and the collection
    await releaseFreedMemory({ collectGarbage: 'full' })
    const freed = before - process.memoryUsage().heapUsed
    assert.ok(freed >= 20 * MiB, `${(freed / MiB).toFixed(1)} MiB of the heap collected`)
  })
})

describe('releaseFreedMemoryAfterStart', () => {
  it("trims at once, then collects all it can and trims when the start has settled; a failure is swallowed", async () => {
    mock.timers.enable({ apis: ['setTimeout'] })
    try {
      const calls: Array<GarbageCollection | undefined> = []
      releaseFreedMemoryAfterStart(async ({ collectGarbage } = {}) => {
        calls.push(collectGarbage)
        throw new Error('no trim today') // never an unhandled rejection
      })
      assert.deepEqual(calls, [undefined])
      mock.timers.tick(RELEASE_AFTER_START_MS - 1)
      assert.deepEqual(calls, [undefined])
      mock.timers.tick(1)
      assert.deepEqual(calls, [undefined, 'all'])
      mock.timers.tick(10 * RELEASE_AFTER_START_MS)
      assert.deepEqual(calls, [undefined, 'all'])
    } finally {
      mock.timers.reset()
    }
    await new Promise((resolve) => setImmediate(resolve)) // the rejections above settle here, handled
  })
})

describe('releaseAfterReconcile', () => {
  it(`trims; after ${COLLECT_AFTER_LISTENER_CHANGES} listener changes or ${COLLECT_AFTER_SERVICES} services or more collects at once, and all it can ${SETTLE_AFTER_RECONCILE_MS} ms after the last of them`, async () => {
    mock.timers.enable({ apis: ['setTimeout'] })
    try {
      const calls: Array<GarbageCollection | undefined> = []
      const release = async ({ collectGarbage }: { collectGarbage?: GarbageCollection } = {}): Promise<void> => void calls.push(collectGarbage)
      const settled = (): boolean => false
      const few = COLLECT_AFTER_SERVICES - 1
      releaseAfterReconcile({ services: few, listenersAdded: 0, listenersRemoved: 0 }, release, settled)
      releaseAfterReconcile({ services: few, listenersAdded: COLLECT_AFTER_LISTENER_CHANGES - 1, listenersRemoved: 0 }, release, settled)
      mock.timers.tick(10 * SETTLE_AFTER_RECONCILE_MS)
      assert.deepEqual(calls, [undefined, undefined], 'small reconciles only trim')
      for (const big of [
        { services: few, listenersAdded: COLLECT_AFTER_LISTENER_CHANGES / 2, listenersRemoved: COLLECT_AFTER_LISTENER_CHANGES / 2 },
        { services: 0, listenersAdded: 0, listenersRemoved: 10_000 },
        { services: COLLECT_AFTER_SERVICES, listenersAdded: 0, listenersRemoved: 0 }, // a poll of a big account that changed nothing
      ]) {
        calls.length = 0
        releaseAfterReconcile(big, release, settled)
        mock.timers.tick(SETTLE_AFTER_RECONCILE_MS - 1)
        assert.deepEqual(calls, ['full'], JSON.stringify(big))
        mock.timers.tick(1)
        assert.deepEqual(calls, ['full', 'all'], JSON.stringify(big))
      }
      calls.length = 0
      const poll = { services: COLLECT_AFTER_SERVICES, listenersAdded: 0, listenersRemoved: 0 }
      releaseAfterReconcile(poll, release, settled)
      mock.timers.tick(SETTLE_AFTER_RECONCILE_MS / 2)
      releaseAfterReconcile(poll, release, settled)
      mock.timers.tick(SETTLE_AFTER_RECONCILE_MS - 1)
      assert.deepEqual(calls, ['full', 'full'], 'a big reconcile puts the settled collection off')
      mock.timers.tick(1)
      await settleTurn()
      mock.timers.tick(10 * SETTLE_AFTER_RECONCILE_MS)
      assert.deepEqual(calls, ['full', 'full', 'all'], 'once')
    } finally {
      mock.timers.reset()
    }
  })

  it(`collects all again ${SETTLE_AFTER_RECONCILE_MS} ms later while the young generation stays grown, ${SETTLE_RETRIES} more times at most`, async () => {
    mock.timers.enable({ apis: ['setTimeout'] })
    try {
      const calls: Array<GarbageCollection | undefined> = []
      const release = async ({ collectGarbage }: { collectGarbage?: GarbageCollection } = {}): Promise<void> => void calls.push(collectGarbage)
      const poll = { services: COLLECT_AFTER_SERVICES, listenersAdded: 0, listenersRemoved: 0 }
      let grownFor = 2 // settles
      releaseAfterReconcile(poll, release, () => grownFor-- > 0)
      for (let i = 0; i < 10; i++) {
        mock.timers.tick(SETTLE_AFTER_RECONCILE_MS)
        await settleTurn()
      }
      assert.deepEqual(calls, ['full', 'all', 'all', 'all'], 'until it shrank')
      calls.length = 0
      releaseAfterReconcile(poll, release, () => true)
      for (let i = 0; i < 10; i++) {
        mock.timers.tick(SETTLE_AFTER_RECONCILE_MS)
        await settleTurn()
      }
      assert.deepEqual(calls, ['full', ...Array<GarbageCollection>(1 + SETTLE_RETRIES).fill('all')], 'bounded')
    } finally {
      mock.timers.reset()
    }
  })

  it('knows when the young generation has grown beyond its size at the start, and when it is back', () => {
    const gc = exposedGc()
    assert.ok(gc, 'gc() can be had')
    let kept: object[] | undefined = []
    for (let i = 0; i < 2_000_000; i++) kept.push({ i }) // survives scavenges: V8 grows the young generation
    assert.equal(youngGenerationGrown(), true)
    kept = undefined
    for (let i = 0; i < 3; i++) collectAllGarbage(gc)
    // Node 24 shrinks it in its memory-reducing collection; Node 20 only after 5 s of little allocation
    if (Number(process.versions.v8.split('.')[0]) >= 13) assert.equal(youngGenerationGrown(), false)
  })
})

/** Lets a settle that the timer started finish its awaited release. */
function settleTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

describe('collectAllGarbage', () => {
  it("asks V8 13 and later for one memory-reducing collection, older V8 for two full ones", () => {
    const calls: unknown[] = []
    const gc: GcFunction = (options) => void calls.push(options)
    collectAllGarbage(gc, 13)
    assert.deepEqual(calls, [{ type: 'major', execution: 'sync', flavor: 'last-resort' }])
    calls.length = 0
    collectAllGarbage(gc, 11)
    assert.deepEqual(calls, [undefined, undefined])
    collectAllGarbage(undefined, 13) // no gc() to be had: nothing, no error
  })

  const v8Major = Number(process.versions.v8.split('.')[0])
  it('gives back at once the young generation a burst of allocation grew (V8 13 and later)', {
    skip: !exposedGc() ? 'no gc() here' : v8Major < 13 ? `V8 ${v8Major} shrinks it only after 5 s of little allocation` : false,
  }, () => {
    const youngGeneration = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_size
    // objects that survive scavenges grow the young generation, as a big reconcile's do
    let kept: object[] | undefined = []
    for (let i = 0; i < 300_000; i++) kept.push({ i, name: `svc${i}` })
    const grown = youngGeneration()
    kept = undefined
    collectAllGarbage()
    assert.ok(youngGeneration() < grown, `young generation ${grown} → ${youngGeneration()} bytes`)
  })
})
