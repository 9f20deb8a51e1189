import { setTimeout as sleep } from 'node:timers/promises'

/**
 * Linux file leases for the hosts-file writer (see `ffi/lease.ts`), or `undefined` where there are
 * none (other systems, or koffi cannot load): the writer then works without them.
 */
export interface Leases {
  /** `true`/`false`: whether another descriptor has the file open for writing; `undefined`: unknown. */
  hasOtherWriters(fd: number): boolean | undefined
  /** `true`: held; `false`: the file is open elsewhere, try again; `undefined`: not available. */
  takeWriteLease(fd: number): boolean | undefined
  releaseLease(fd: number): void
  /** The lock ngrokd processes take before rewriting the file: `true` held; `false` another holds it; `undefined` not available. */
  lockWriters(fd: number): boolean | undefined
  unlockWriters(fd: number): void
}

/**
 * How long a rewrite waits for another ngrokd process's rewrite of the same file. That one holds the lock for a
 * read, its lease attempts (~0.1 s) and a few system calls: this is a safety net, not a figure.
 */
const WRITERS_LOCK_WAIT_MS = 10_000

/**
 * Resolves holding the lock every ngrokd process takes before rewriting the hosts file (true), or false where
 * there is none (no leases here, or a file system without flock). Without it, two daemons (named instances,
 * each with its own block) that read the file at the same time could each write back what it read, and one
 * block would be lost. Release it with `leases.unlockWriters(fd)` (closing `fd` does too).
 */
export async function waitForWritersLock(fd: number, leases: Leases | undefined, path: string): Promise<boolean> {
  if (!leases) return false
  const deadline = Date.now() + WRITERS_LOCK_WAIT_MS
  for (;;) {
    const held = leases.lockWriters(fd)
    if (held !== false) return held === true
    if (Date.now() > deadline) throw new Error(`another process has held the lock on ${path} for over ${WRITERS_LOCK_WAIT_MS / 1000} s (flock)`)
    await sleep(2)
  }
}

let loading: Promise<Leases | undefined> | undefined

export function loadLeases(): Promise<Leases | undefined> {
  if (process.platform !== 'linux') return Promise.resolve(undefined)
  loading ??= import('./ffi/lease.js').then(
    (m): Leases => m,
    () => undefined,
  )
  return loading
}
