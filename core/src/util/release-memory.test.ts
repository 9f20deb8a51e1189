import { describe, it, mock } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { loadLibc } from './libc.js'
import { RELEASE_AFTER_START_MS, releaseFreedMemory, releaseFreedMemoryAfterStart } from './release-memory.js'

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

describe('releaseFreedMemoryAfterStart', () => {
  it('releases at once and once more when the start has settled; a failure is swallowed', async () => {
    mock.timers.enable({ apis: ['setTimeout'] })
    try {
      let calls = 0
      releaseFreedMemoryAfterStart(async () => {
        calls++
        throw new Error('no trim today') // never an unhandled rejection
      })
      assert.equal(calls, 1)
      mock.timers.tick(RELEASE_AFTER_START_MS - 1)
      assert.equal(calls, 1)
      mock.timers.tick(1)
      assert.equal(calls, 2)
      mock.timers.tick(10 * RELEASE_AFTER_START_MS)
      assert.equal(calls, 2)
    } finally {
      mock.timers.reset()
    }
    await new Promise((resolve) => setImmediate(resolve)) // the rejections above settle here, handled
  })
})
