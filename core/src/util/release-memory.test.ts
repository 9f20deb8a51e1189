import { describe, it, mock } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { loadLibc } from './libc.js'
import { COLLECT_AFTER_LISTENER_CHANGES, COLLECT_AFTER_SERVICES, RELEASE_AFTER_START_MS, releaseAfterReconcile, releaseFreedMemory, releaseFreedMemoryAfterStart } from './release-memory.js'

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
    await releaseFreedMemory({ collectGarbage: true })
    const freed = before - process.memoryUsage().heapUsed
    assert.ok(freed >= 20 * MiB, `${(freed / MiB).toFixed(1)} MiB of the heap collected`)
  })
})

describe('releaseFreedMemoryAfterStart', () => {
  it("trims at once, then collects and trims when the start has settled; a failure is swallowed", async () => {
    mock.timers.enable({ apis: ['setTimeout'] })
    try {
      const calls: boolean[] = []
      releaseFreedMemoryAfterStart(async ({ collectGarbage = false } = {}) => {
        calls.push(collectGarbage)
        throw new Error('no trim today') // never an unhandled rejection
      })
      assert.deepEqual(calls, [false])
      mock.timers.tick(RELEASE_AFTER_START_MS - 1)
      assert.deepEqual(calls, [false])
      mock.timers.tick(1)
      assert.deepEqual(calls, [false, true])
      mock.timers.tick(10 * RELEASE_AFTER_START_MS)
      assert.deepEqual(calls, [false, true])
    } finally {
      mock.timers.reset()
    }
    await new Promise((resolve) => setImmediate(resolve)) // the rejections above settle here, handled
  })
})

describe('releaseAfterReconcile', () => {
  it(`collects the whole heap only after ${COLLECT_AFTER_LISTENER_CHANGES} listener changes or ${COLLECT_AFTER_SERVICES} services or more`, async () => {
    const calls: boolean[] = []
    const release = async ({ collectGarbage = false } = {}): Promise<void> => void calls.push(collectGarbage)
    const few = COLLECT_AFTER_SERVICES - 1
    releaseAfterReconcile({ services: few, listenersAdded: 0, listenersRemoved: 0 }, release)
    releaseAfterReconcile({ services: few, listenersAdded: COLLECT_AFTER_LISTENER_CHANGES - 1, listenersRemoved: 0 }, release)
    releaseAfterReconcile({ services: few, listenersAdded: COLLECT_AFTER_LISTENER_CHANGES / 2, listenersRemoved: COLLECT_AFTER_LISTENER_CHANGES / 2 }, release)
    releaseAfterReconcile({ services: 0, listenersAdded: 0, listenersRemoved: 10_000 }, release)
    releaseAfterReconcile({ services: COLLECT_AFTER_SERVICES, listenersAdded: 0, listenersRemoved: 0 }, release) // a poll of a big account that changed nothing
    assert.deepEqual(calls, [false, false, true, true, true])
  })
})
