import { closeSync, constants, fstatSync, openSync, statSync, unlinkSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { defaultRunDir } from '../config/platform-defaults.js'

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
 * read, its lease attempts (~0.1 s) and a few system calls: this is a safety net, not a figure. Only ngrokd
 * processes can take the lock (see {@link waitForWritersLock}).
 */
const WRITERS_LOCK_WAIT_MS = 10_000

/**
 * The folder of the writers' lock files ({@link waitForWritersLock}): root's run dir as root on Linux, else none.
 * Tests give their own.
 */
export type WritersLockDir = string | null

/**
 * Resolves holding the lock every ngrokd process takes before rewriting the hosts file at `path`, with the function
 * that releases it, or undefined where there is none (no leases here, or a file system without flock). Without it,
 * two daemons (named instances, each with its own block) that read the file at the same time could each write back
 * what it read, and one block would be lost.
 *
 * The lock is a file of its own in `lockDir` (as root: /run/ngrokd, root's, the file 0600), never the hosts file:
 * flock needs only read access, so on a hosts file anyone may read any user could hold the lock and freeze every
 * rewrite, names withdrawn at stop included. With no `lockDir` (a daemon that is not root, writing a file of its
 * own), or where the lock file cannot be made (a run dir that is a file: `cleanup` must still remove the block; the
 * daemon refuses to start so), it locks `fd`, the hosts file.
 */
export async function waitForWritersLock(fd: number, leases: Leases | undefined, path: string, lockDir: WritersLockDir = defaultRunDir()): Promise<(() => void) | undefined> {
  if (!leases) return undefined
  const deadline = Date.now() + WRITERS_LOCK_WAIT_MS
  for (;;) {
    const lock = (lockDir ? await openLockFile(lockDir, fd).catch(() => undefined) : undefined) ?? { fd, path: undefined }
    const closeLock = () => lock.path !== undefined && closeSync(lock.fd)
    const held = leases.lockWriters(lock.fd)
    if (held === undefined) {
      closeLock()
      return undefined
    }
    // a lock file its last holder removed (below) is no one's lock: open the one in its place
    if (held && (lock.path === undefined || sameInode(lock.path, lock.fd))) {
      return () => {
        // removed while held: whoever waits on this inode finds it gone and opens the next
        if (lock.path !== undefined) tryUnlink(lock.path)
        leases.unlockWriters(lock.fd)
        closeLock()
      }
    }
    if (held) leases.unlockWriters(lock.fd)
    closeLock()
    if (Date.now() > deadline) throw new Error(`another ngrokd has held the lock on ${path} for over ${WRITERS_LOCK_WAIT_MS / 1000} s (flock${lock.path ? ` on ${lock.path}` : ''})`)
    await sleep(2)
  }
}

/**
 * The writers' lock file of the hosts file open as `fd`, opened (created 0600, no symlink followed). Named by the
 * file's device and inode, which every mount namespace sees alike (a systemd service has one of its own): two daemons
 * that reach one file by different paths or namespaces take the same lock. A file renamed over it is another inode,
 * whose lock a rewrite that finds the file replaced (and reads it again) takes then.
 */
async function openLockFile(lockDir: string, fd: number): Promise<{ fd: number; path: string }> {
  await mkdir(lockDir, { recursive: true, mode: 0o755 })
  const { dev, ino } = fstatSync(fd)
  const lockPath = join(lockDir, `hosts-writers-${dev}-${ino}.lock`)
  return { fd: openSync(lockPath, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600), path: lockPath }
}

function tryUnlink(path: string): void {
  try {
    unlinkSync(path)
  } catch {
    // gone already: `ngrokd cleanup` or a reboot cleared the run dir
  }
}

/** True when `path` still names the file open as `fd` (its device and inode). */
export function sameInode(path: string, fd: number): boolean {
  try {
    const a = statSync(path)
    const b = fstatSync(fd)
    return a.ino === b.ino && a.dev === b.dev
  } catch {
    return false
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
