import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { RESERVE_BYTE } from './interrupted-write.js'
import { waitForWritersLock, type Leases, type WritersLockDir } from './leases.js'

/** What an in-place rewrite wrote over what. */
export interface InPlaceRewrite {
  old: Buffer
  next: Buffer
}

/** An in-place rewrite failed after it began; `intact`: the old content was put back (read back to check). */
export class InPlaceWriteFailure extends Error {
  constructor(
    override readonly cause: unknown,
    readonly intact: boolean,
  ) {
    super(cause instanceof Error ? cause.message : String(cause))
  }
}

export interface InPlaceRewriteOptions {
  /** The content to put over `current`; the same bytes when there is nothing to change. */
  desired(current: Buffer): Buffer
  /**
   * Called before the file is touched, with what will be written over what (the caller saves its
   * backup there). Synchronous: it may run while the lease is held (see below).
   */
  prepare(old: Buffer, next: Buffer): void
  leases?: Leases
  /** How often to ask for the write lease while another program has the file open (2 ms apart). Default 50. */
  leaseAttempts?: number
  /** Where the ngrokd writers' lock file goes ({@link waitForWritersLock}); default root's run dir as root. */
  lockDir?: WritersLockDir
}

/**
 * Rewrites `path` in place (the same inode, so a bind-mounted file works), in steps that a failure
 * at any point can undo:
 *
 * 0. Take the lock every ngrokd process takes before rewriting the file (flock, where there are leases): two
 *    daemons (named instances, each with its own block) never read and write over each other.
 * 1. Read the file, work out the new content, `prepare()`.
 * 2. Where Linux grants a write lease, other programs' open() of the file now waits until the rewrite
 *    is done: nobody reads a half-written file or appends in between. If the file changed since
 *    step 1, the new content is worked out again (and prepared again) under the lease. Without a
 *    lease (another program keeps the file open, another system), a file changed since step 1 is
 *    left alone (the result is `undefined`: read it again), and the steps below run back to back as
 *    synchronous system calls: only a write landing between two of them could be lost.
 * 3. A growing file is first extended with newlines to the new length: its room is taken before any
 *    old byte is overwritten. A full disk (ENOSPC) fails here, and cutting the padding off gives
 *    back the old content exactly.
 * 4. The new content is written over the start (inside the file's own bytes: no new room needed);
 *    a shrinking file is then cut to length, carrying behind the new content any bytes another
 *    program appended meanwhile.
 * 5. fsync, then the file is read back: it must start with the new content.
 *
 * From the lease on, everything is a synchronous system call: while the lease is held, every open()
 * of the file waits — also this process's own (a name lookup reads the hosts file in libuv's thread
 * pool), so nothing held may wait on that pool.
 *
 * A failure in steps 3–5 writes the old content back and cuts the file to its length:
 * {@link InPlaceWriteFailure} says whether that worked. Failing to open the file throws as is (nothing
 * was touched). Returns what was written over what, or `undefined` when nothing was written.
 */
export async function rewriteInPlace(path: string, { desired, prepare, leases, leaseAttempts = 50, lockDir }: InPlaceRewriteOptions): Promise<InPlaceRewrite | undefined> {
  const fd = openSync(path, 'r+')
  let leased = false
  let unlock: (() => void) | undefined
  try {
    unlock = await waitForWritersLock(fd, leases, path, lockDir)
    let old = readAllSync(fd)
    let next = desired(old)
    if (next.equals(old)) return undefined
    prepare(old, next) // before the lease: readers are not held up while the caller saves its backup
    leased = await takeLease(fd, leases, leaseAttempts)
    // from here on, no await until the lease is released
    const now = readAllSync(fd)
    if (!now.equals(old)) {
      if (!leased) return undefined
      old = now
      next = desired(old)
      if (next.equals(old)) return undefined
      prepare(old, next)
    }
    try {
      if (next.length > old.length) writeAllSync(fd, Buffer.alloc(next.length - old.length, RESERVE_BYTE), old.length)
      writeAllSync(fd, next, 0)
      if (next.length < old.length) truncateCarrying(fd, old.length, next)
      fsyncSync(fd)
      const back = readAllSync(fd)
      if (!back.subarray(0, next.length).equals(next)) throw new Error('the file read back differs from what was written')
      return { old, next }
    } catch (e) {
      throw new InPlaceWriteFailure(e, undo(fd, old))
    }
  } finally {
    if (leased) leases!.releaseLease(fd)
    unlock?.()
    closeSync(fd)
  }
}

/** Resolves holding the lease (true) or without one; the waiting happens before it is held. */
async function takeLease(fd: number, leases: Leases | undefined, attempts: number): Promise<boolean> {
  if (!leases) return false
  for (let i = 0; i < attempts; i++) {
    const held = leases.takeWriteLease(fd)
    if (held !== false) return held === true
    await sleep(2) // another program has the file open right now
  }
  return false
}

/**
 * Cuts the file to `next`'s length. Bytes appended after `oldLength` by another program since the
 * check are moved behind `next` first (they lie beyond `next`, so writing them there overwrites only
 * old bytes), until the file stops growing between the size check and the cut.
 */
function truncateCarrying(fd: number, oldLength: number, next: Buffer): void {
  let carried = 0
  for (let round = 0; ; round++) {
    const size = fstatSync(fd).size
    if (size === oldLength + carried || round === 1000) {
      ftruncateSync(fd, next.length + carried)
      return
    }
    const tail = readRangeSync(fd, oldLength, size)
    writeAllSync(fd, Buffer.concat([next, tail]), 0)
    carried = tail.length
  }
}

/** Puts `old` back: write it over the start, cut to its length, fsync. True when the file then reads `old`. */
function undo(fd: number, old: Buffer): boolean {
  try {
    writeAllSync(fd, old, 0)
    ftruncateSync(fd, old.length)
    return readAllSync(fd).equals(old)
  } catch {
    return false
  }
}

/** The whole file behind `fd`, read from offset 0 to its end. */
export function readAllSync(fd: number): Buffer {
  let buf = Buffer.allocUnsafe(fstatSync(fd).size + 1) // one more byte: notices growth since fstat
  let n = 0
  for (;;) {
    if (n === buf.length) {
      const bigger = Buffer.allocUnsafe(buf.length * 2)
      buf.copy(bigger, 0, 0, n)
      buf = bigger
    }
    const r = readSync(fd, buf, n, buf.length - n, n)
    if (r === 0) return buf.subarray(0, n)
    n += r
  }
}

function readRangeSync(fd: number, start: number, end: number): Buffer {
  const buf = Buffer.alloc(end - start)
  let n = 0
  while (n < buf.length) {
    const r = readSync(fd, buf, n, buf.length - n, start + n)
    if (r === 0) break
    n += r
  }
  return buf.subarray(0, n)
}

function writeAllSync(fd: number, data: Buffer, position: number): void {
  let done = 0
  while (done < data.length) done += writeSync(fd, data, done, data.length - done, position + done)
}
