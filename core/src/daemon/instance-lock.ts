import { readFileSync, readlinkSync } from 'node:fs'
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { NgrokdError } from '../errors/ngrokd-error.js'
import { runsAsRoot } from '../util/trusted-path.js'

/** Who holds a lock: written into the lock file, shown to the one refused. */
export interface LockHolder {
  pid: number
  socket: string
  interface: string
  stateDir: string
  startedAt: string
}

export interface InstanceLockOptions {
  stateDir: string
  interfaceName: string
  socketPath: string
  /**
   * Where the per-interface lock goes (one per network namespace and interface name), so that two
   * daemons with different state dirs cannot share an interface either. Default: `/run/ngrokd` as the
   * machine's root on Linux; none otherwise (the state-dir lock still holds), in a user namespace a user
   * made too, whose uid 0 may not write there.
   */
  runDir?: string | null
}

/** The lock file of a state dir. */
export const STATE_LOCK_FILE = 'ngrokd.lock'

/**
 * One daemon per state dir and per interface, for the daemon's whole life: a second `ngrokd run` on
 * the same state dir or interface is refused (NGROKD_ERR_ALREADY_RUNNING, naming the holder's pid,
 * socket and interface) instead of taking over the first one's interface and hosts block.
 *
 * Each lock is a file made whole in a temp file and then `link()`ed into place, which fails when the
 * name exists: no half-written lock, no two winners. A lock whose pid is no longer an ngrokd (a
 * crash, `kill -9`) is stale and replaced.
 */
export class InstanceLock {
  private constructor(
    private readonly paths: readonly string[],
    /** Locks of a daemon that was gone (a crash), replaced by this one. */
    readonly replacedStale: readonly string[] = [],
  ) {}

  static async acquire(options: InstanceLockOptions): Promise<InstanceLock> {
    const holder: LockHolder = {
      pid: process.pid,
      socket: options.socketPath,
      interface: options.interfaceName,
      stateDir: options.stateDir,
      startedAt: new Date().toISOString(),
    }
    const paths = [join(options.stateDir, STATE_LOCK_FILE)]
    const runDir = options.runDir === undefined ? defaultRunDir() : options.runDir
    if (runDir) {
      await mkdir(runDir, { recursive: true, mode: 0o755 })
      paths.push(join(runDir, `interface-${networkNamespaceId()}-${options.interfaceName}.lock`))
    }
    const taken: string[] = []
    const stale: string[] = []
    try {
      for (const path of paths) {
        if (await takeLock(path, holder)) stale.push(path)
        taken.push(path)
      }
    } catch (e) {
      await new InstanceLock(taken).release()
      throw e
    }
    return new InstanceLock(paths, stale)
  }

  /** Removes the lock files that are still ours. Safe to call twice. */
  async release(): Promise<void> {
    for (const path of this.paths) {
      const holder = await readHolder(path)
      if (holder?.pid === process.pid) await unlink(path).catch(() => {})
    }
  }
}

/** Takes the lock at `path`; true when it replaced a stale one. */
async function takeLock(path: string, holder: LockHolder): Promise<boolean> {
  const temp = join(path, '..', `.${basename(path)}.${process.pid}.tmp`)
  await writeFile(temp, `${JSON.stringify(holder)}\n`, { mode: 0o644 })
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await link(temp, path)
        return attempt > 0
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
      }
      const other = await readHolder(path)
      if (other && holds(other)) throw alreadyRunning(other, path)
      await unlink(path).catch(() => {}) // stale: its daemon is gone
    }
    throw new NgrokdError('NGROKD_ERR_ALREADY_RUNNING', `cannot take the lock ${path}: another ngrokd is starting at the same moment`, {
      hint: 'start one ngrokd at a time',
    })
  } finally {
    await unlink(temp).catch(() => {})
  }
}

async function readHolder(path: string): Promise<LockHolder | undefined> {
  try {
    const holder = JSON.parse(await readFile(path, 'utf8')) as LockHolder
    return Number.isInteger(holder.pid) && holder.pid > 0 ? holder : undefined
  } catch {
    return undefined // gone, or not a lock we wrote: stale
  }
}

/**
 * Whether the daemon that wrote `holder` still runs. Our own pid counts only when this process wrote
 * it (another daemon in this process); a lock older than this process with our pid is a previous run's
 * (a container's ngrokd is pid 1 every time).
 */
function holds(holder: LockHolder): boolean {
  if (holder.pid !== process.pid) return isNgrokd(holder.pid)
  const thisProcessStarted = Date.now() - process.uptime() * 1000
  return Date.parse(holder.startedAt) >= thisProcessStarted - 1000
}

/** Whether `pid` is a live process that is an ngrokd (a reused pid of another program is not). */
function isNgrokd(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false // ESRCH: no such process
  }
  if (process.platform !== 'linux') return true
  try {
    return /ngrokd/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'))
  } catch {
    return false
  }
}

function alreadyRunning(holder: LockHolder, path: string): NgrokdError {
  return new NgrokdError(
    'NGROKD_ERR_ALREADY_RUNNING',
    `another ngrokd (pid ${holder.pid}, started ${holder.startedAt}) already runs on state dir ${holder.stateDir} / interface ${holder.interface}; its control socket is ${holder.socket} (lock ${path})`,
    { hint: 'stop it first (`ngrokd status --config …` shows it), or run this one as a named instance (`--instance NAME`: its own state dir, interface, subnet, socket and hosts block)' },
  )
}

function defaultRunDir(): string | null {
  return process.platform === 'linux' && runsAsRoot() ? '/run/ngrokd' : null
}

/** The network namespace's inode (`net:[4026531840]` → `4026531840`): interface names are per namespace. */
function networkNamespaceId(): string {
  try {
    return readlinkSync('/proc/self/ns/net').replace(/\D/g, '')
  } catch {
    return 'host'
  }
}
