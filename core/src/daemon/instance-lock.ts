import { createHash, randomBytes } from 'node:crypto'
import { access, constants, link, lstat, mkdir, readFile, realpath, rename, stat, unlink, writeFile } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import type { DaemonConfig } from '../config/daemon-config.js'
import { NgrokdError, isNgrokdError } from '../errors/ngrokd-error.js'
import { makeProtectedDirectory, stateDirError } from './state-dir.js'
import { systemFileSecurity } from '../util/windows-security-ffi.js'
import { removeStaleTempFilesIn, tempPathFor } from '../util/atomic-file.js'
import { refusedRootHint } from '../util/privilege.js'
import { defaultRunDir } from '../config/platform-defaults.js'
import { namespaceId } from '../util/namespace-id.js'
import { commandLineOf, otherBoot, processStartOf, sameClockView, sameStart } from '../util/process-command-line.js'
import { mountPoints } from '../util/mount-points.js'

/** Who holds a lock: written into the lock file, shown to the one refused. */
export interface LockHolder {
  pid: number
  socket: string
  interface: string
  stateDir: string
  startedAt: string
  /** The hosts file whose block it writes, when it writes one. */
  hostsFile?: string
  /** The named instance whose block that is (none: the default daemon's). */
  instance?: string
  /** The subnet it hands addresses out of, when it locked one. */
  subnet?: string
  /** When the holder process started ({@link processStartOf}): tells it from a later process of its pid. */
  processStart?: string
}

export interface InstanceLockOptions {
  stateDir: string
  interfaceName: string
  socketPath: string
  /**
   * Where the per-interface lock goes (one per network namespace and interface name), so that two
   * daemons with different state dirs cannot share an interface either. Default {@link defaultRunDir}: as the
   * machine's root `/run/ngrokd` (macOS `/var/db/ngrokd/run`, Windows `%ProgramData%\ngrokd\run`); none otherwise
   * (the state-dir lock still holds), in a user namespace a user made too, whose uid 0 may not write there.
   */
  runDir?: string | null
  /**
   * The hosts-file block this daemon writes: `path` and the named instance whose block it is (none:
   * the default block). Locked in `runDir` per mount namespace, so that two daemons with different
   * state dirs and interfaces cannot take turns rewriting one block.
   */
  hostsBlock?: { path: string; instance?: string }
  /**
   * The `net.subnet` the daemon hands addresses out of, locked in `runDir` per network namespace, so that two daemons
   * (instances whose names chose one /16) cannot hand out the same addresses. Only the daemon takes it, not `cleanup`.
   */
  subnet?: string
}

/** What of the config names the locked things. */
type LockedConfig = Pick<DaemonConfig, 'stateDir' | 'instance'> & { net: Pick<DaemonConfig['net'], 'interfaceName'>; control: Pick<DaemonConfig['control'], 'socket'>; names: Pick<DaemonConfig['names'], 'hostsFile'> }

/** The lock file of a state dir. */
export const STATE_LOCK_FILE = 'ngrokd.lock'

/**
 * One daemon per state dir, per interface and per hosts block, for the daemon's whole life: a second
 * `ngrokd run` on the same state dir, interface or block is refused (NGROKD_ERR_ALREADY_RUNNING,
 * naming the holder's pid, socket and interface) instead of taking over the first one's.
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
    /** What this daemon wrote into its locks, and the instance it is (for a refusal's hint): to take one again. */
    private readonly taker?: { holder: LockHolder; instance: string | undefined },
  ) {}

  /**
   * The locks of the daemon (or `cleanup`) of `config`: its state dir, interface and hosts block (the
   * block whatever `names.resolver` is: a plugin's resolver may fall back to the hosts file, and
   * `cleanup` removes the block in any case), and with `subnet` (the daemon) its subnet's.
   */
  static acquireFor(config: LockedConfig, options: Pick<InstanceLockOptions, 'runDir' | 'subnet'> = {}): Promise<InstanceLock> {
    return InstanceLock.acquire({
      stateDir: config.stateDir,
      interfaceName: config.net.interfaceName,
      socketPath: config.control.socket,
      hostsBlock: { path: config.names.hostsFile, ...(config.instance ? { instance: config.instance } : {}) },
      ...options,
    })
  }

  static async acquire(options: InstanceLockOptions): Promise<InstanceLock> {
    const holder: LockHolder = {
      pid: process.pid,
      socket: options.socketPath,
      interface: options.interfaceName,
      stateDir: options.stateDir,
      startedAt: new Date().toISOString(),
      ...processStartField(),
      ...(options.hostsBlock ? { hostsFile: resolve(options.hostsBlock.path), ...(options.hostsBlock.instance ? { instance: options.hostsBlock.instance } : {}) } : {}),
      ...(options.subnet ? { subnet: options.subnet } : {}),
    }
    const runDir = options.runDir === undefined ? defaultRunDir() : options.runDir
    if (runDir) {
      await makeRunDir(runDir).catch(async (e: unknown) => Promise.reject(await runDirMkdirError(runDir, e)))
      await removeStaleTempFilesIn(runDir).catch(() => []) // a lock's temp file of a daemon killed while it took it
    }
    const paths = await lockPaths(options, runDir)
    const taken: string[] = []
    const stale: string[] = []
    try {
      for (const path of paths) {
        if (await takeLock(path, holder, options.hostsBlock?.instance)) stale.push(path)
        taken.push(path)
      }
    } catch (e) {
      await new InstanceLock(taken).release()
      throw lockError(paths[taken.length]!, options.stateDir, e)
    }
    return new InstanceLock(paths, stale, { holder, instance: options.hostsBlock?.instance })
  }

  /**
   * Whether the state dir's lock (its first) is still there and names this daemon: removing the state dir under a
   * running daemon removes it, and a second daemon would then not be refused. Not held: `other` is the live ngrokd that
   * took it since; none when the lock is gone, or names a daemon that no longer runs.
   */
  async stateLock(): Promise<{ held: true } | { held: false; other?: LockHolder }> {
    const holder = await readHolder(this.paths[0]!)
    const mine = this.taker?.holder
    if (holder && mine && holder.pid === mine.pid && holder.startedAt === mine.startedAt) return { held: true }
    return holder && holds(holder) ? { held: false, other: holder } : { held: false }
  }

  /**
   * Takes the state dir's lock again, as {@link acquire} took it (the state dir must exist: prepareStateDir). Resolves
   * undefined once it is this daemon's again, or the live ngrokd that holds it (which keeps it).
   */
  async retakeStateLock(): Promise<LockHolder | undefined> {
    const path = this.paths[0]!
    if (!this.taker) throw new NgrokdError('NGROKD_ERR_STATE', `the lock ${path} was never taken by this process`, { hint: 'take the locks with InstanceLock.acquire first' })
    try {
      await takeLock(path, this.taker.holder, this.taker.instance)
      return undefined
    } catch (e) {
      const other = isNgrokdError(e, 'NGROKD_ERR_ALREADY_RUNNING') ? await readHolder(path) : undefined
      if (other) return other
      throw lockError(path, this.taker.holder.stateDir, e)
    }
  }

  /**
   * For `cleanup`: removes the subnet's lock that a daemon now gone left, and returns its path. A live holder's stays:
   * the subnet is not cleanup's to lock (a running daemon of another config may use it, `net.force`).
   */
  static async removeStaleSubnetLock(subnet: string, runDir: string | null = defaultRunDir()): Promise<string | undefined> {
    if (!runDir) return undefined
    const path = subnetLockPath(runDir, subnet)
    const holder = await readHolder(path)
    if (holder && holds(holder)) return undefined
    try {
      await unlink(path)
      return path
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined // ENOTDIR: the run dir is a file, no lock is in it
      throw staleLockError(path, e)
    }
  }

  /**
   * For `cleanup` when its locks cannot be written (a full state disk, a folder in a lock's place, a file where
   * the run dir should be): what the locks of `config` say still decides. Refused (NGROKD_ERR_ALREADY_RUNNING)
   * when a live daemon holds any of them, and then nothing is removed; otherwise each lock a daemon now gone left is
   * removed (`removed`), and one that cannot be is said with its reason and fix (`failed`). Like
   * {@link acquireFor} without `subnet`: the subnet's lock is {@link removeStaleSubnetLock}'s.
   */
  static async clearStaleFor(config: LockedConfig, options: Pick<InstanceLockOptions, 'runDir'> = {}): Promise<{ removed: string[]; failed: string[] }> {
    const runDir = options.runDir === undefined ? defaultRunDir() : options.runDir
    const lockOptions = {
      stateDir: config.stateDir,
      interfaceName: config.net.interfaceName,
      hostsBlock: { path: config.names.hostsFile, ...(config.instance ? { instance: config.instance } : {}) },
    }
    const paths = await lockPaths(lockOptions, runDir)
    // every lock is read before any goes: a live holder's are never removed, nor anything else
    for (const path of paths) {
      const holder = await readHolder(path)
      if (holder && holds(holder)) throw alreadyRunning(holder, path, config.instance)
    }
    const removed: string[] = []
    const failed: string[] = []
    for (const path of paths) {
      try {
        await unlink(path)
        removed.push(path)
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code
        // ENOTDIR: the run dir is a file, so no lock is in it (the error that stopped the locking says so)
        if (code === 'ENOENT' || code === 'ENOTDIR') continue
        failed.push(`lock ${path}: ${code ?? String(e)} (it is no running ngrokd's; remove it: rm -r ${path})`)
      }
    }
    return { removed, failed }
  }

  /** Removes the lock files that are still ours. Safe to call twice. */
  async release(): Promise<void> {
    for (const path of this.paths) {
      const holder = await readHolder(path)
      if (holder?.pid === process.pid) await unlink(path).catch(() => {})
      // a breaker of this process's that a racer put back after this process was done with it (removeDeadBreaker)
      if ((await readHolder(`${path}.break`))?.pid === process.pid) await unlink(`${path}.break`).catch(() => {})
    }
  }
}

/** The lock files of `options`: its state dir's, then (with a run dir) its interface's, hosts block's and subnet's. */
async function lockPaths(options: Pick<InstanceLockOptions, 'stateDir' | 'interfaceName' | 'hostsBlock' | 'subnet'>, runDir: string | null): Promise<string[]> {
  const paths = [join(options.stateDir, STATE_LOCK_FILE)]
  if (runDir) {
    paths.push(join(runDir, `interface-${namespaceId('net')}-${options.interfaceName}.lock`))
    if (options.hostsBlock) paths.push(join(runDir, await hostsBlockLockName(options.hostsBlock)))
    if (options.subnet) paths.push(subnetLockPath(runDir, options.subnet))
  }
  return paths
}

/** The run dir; on Windows with the state dir's protected DACL (%ProgramData% lets Users add files). */
async function makeRunDir(runDir: string): Promise<void> {
  if (process.platform === 'win32') await makeProtectedDirectory(runDir, systemFileSecurity())
  else await mkdir(runDir, { recursive: true, mode: 0o755 })
}

/** A lock that cannot be written, as a coded error with its fix (one in state_dir names state_dir). */
function lockError(path: string, stateDir: string, e: unknown): unknown {
  if (isNgrokdError(e)) return e
  if (dirname(resolve(path)) === resolve(stateDir)) return stateDirError(stateDir, e)
  return runDirError(dirname(path), path, e)
}

/**
 * The run dir (`/run/ngrokd`) or a lock in it that cannot be made or written, as a coded error naming `path` and the
 * fix; an errno not listed here stays as it is.
 */
function runDirError(runDir: string, path: string, e: unknown): unknown {
  const code = (e as NodeJS.ErrnoException).code
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    // the run dir is root's: root refused there (chattr +i) is not helped by sudo
    const hint = code !== 'EROFS' && process.getuid?.() === 0 ? refusedRootHint(runDir, { folder: true }) : 'run ngrokd as root (sudo)'
    return new NgrokdError('NGROKD_ERR_PERMISSION', `cannot write the lock ${path}: ${code}`, { cause: e, hint })
  }
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EIO') {
    const why = code === 'EIO' ? 'an I/O error on its device' : code === 'ENOSPC' ? 'no space left on its device' : 'its disk quota is used up'
    return new NgrokdError('NGROKD_ERR_STATE', `cannot write the lock ${path}: ${why} (${code})`, {
      cause: e,
      hint: code === 'EIO' ? `check the device of ${runDir} (dmesg)` : `free space on the file system of ${runDir} (df -h ${runDir})`,
    })
  }
  return e
}

function staleLockError(path: string, cause: unknown): NgrokdError {
  return new NgrokdError('NGROKD_ERR_STATE', `the lock ${path} is no running ngrokd's and cannot be replaced: ${(cause as NodeJS.ErrnoException).code}`, {
    cause,
    hint: `remove it (rm -r ${path}) and start again`,
  })
}

/**
 * The run dir that cannot be made, as a coded error: one that is a file (EEXIST from mkdir; or a link to one) or is
 * under one (ENOTDIR) names that file and its fix; other errors as {@link runDirError}.
 */
async function runDirMkdirError(runDir: string, e: unknown): Promise<unknown> {
  const code = (e as NodeJS.ErrnoException).code
  if (code !== 'EEXIST' && code !== 'ENOTDIR') return runDirError(runDir, runDir, e)
  let file = runDir
  for (let p = runDir; p !== dirname(p); p = dirname(p)) {
    const st = await stat(p).catch(() => undefined)
    if (st && !st.isDirectory()) {
      file = p
      break
    }
  }
  return new NgrokdError('NGROKD_ERR_STATE', `the lock directory ${runDir} cannot be made: ${file === runDir ? 'it' : file} is a file, not a directory (${code})`, {
    cause: e,
    hint: `remove it: rm ${file} (ngrokd makes ${runDir} again as a directory; it holds only ngrokd's locks)`,
  })
}

/** Takes the lock at `path`; true when it replaced a stale one. */
async function takeLock(path: string, holder: LockHolder, instance: string | undefined): Promise<boolean> {
  const temp = tempPathFor(path) // removed below, or as a dead process's temp file at the next start
  try {
    await writeFile(temp, `${JSON.stringify(holder)}\n`, { mode: 0o644 })
    // a link; else the stale lock broken (or another's breaking waited out) and a link again: a few rounds, then refused
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await link(temp, path)
        return attempt > 0
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
      }
      const other = await readHolder(path)
      if (other && holds(other)) throw alreadyRunning(other, path, instance)
      await breakStaleLock(path, instance)
    }
    throw new NgrokdError('NGROKD_ERR_ALREADY_RUNNING', `cannot take the lock ${path}: another ngrokd is starting at the same moment`, {
      hint: 'start one ngrokd at a time',
    })
  } finally {
    await unlink(temp).catch(() => {})
  }
}

/**
 * Removes the lock at `path` that {@link takeLock} read as stale — and only a stale one. Another ngrokd starting at the
 * same moment may have broken it already and linked its own: so the removal happens under a breaker file
 * (`<lock>.break`, linked whole with its holder: one remover at a time), after finding the lock still there and still
 * stale — while the breaker is held nobody else removes it, and no live lock can take its place (a link fails while
 * it is there). A live daemon's lock refuses this start; while another holds the breaker this returns, and takeLock's
 * next link decides. One that cannot be removed (a folder in the lock's place) is not another daemon starting.
 */
async function breakStaleLock(path: string, instance: string | undefined): Promise<void> {
  const breaker = `${path}.break`
  const mine = JSON.stringify({ pid: process.pid, startedAt: new Date().toISOString(), ...processStartField(), token: randomBytes(8).toString('hex') })
  // made whole (linked from a temp file), so another never reads it empty
  const temp = tempPathFor(breaker)
  try {
    await writeFile(temp, `${mine}\n`, { mode: 0o644 })
    await link(temp, breaker)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw staleLockError(path, e)
    await removeDeadBreaker(breaker)
    return
  } finally {
    await unlink(temp).catch(() => {})
  }
  try {
    const st = await lstat(path).catch(() => undefined)
    if (!st) return // broken by another already: the link decides
    if (st.isDirectory()) throw staleLockError(path, Object.assign(new Error(`EISDIR: illegal operation on a directory, unlink '${path}'`), { code: 'EISDIR' }))
    const now = await readHolder(path)
    if (now && holds(now)) throw alreadyRunning(now, path, instance)
    await unlink(path).catch((e: unknown) => {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw staleLockError(path, e)
    })
  } finally {
    // this remover's own breaker only
    if ((await readFile(breaker, 'utf8').catch(() => '')).trim() === mine) await unlink(breaker).catch(() => {})
  }
}

/**
 * Removes the breaker at `breaker` when its remover is gone (killed in those few system calls: its pid no ngrokd, or
 * this process's pid from before it started — a container's pid 1). One of a live remover, even a stopped one, is left:
 * starts are refused meanwhile, never let in two at a time. Captured by a rename, so that only the dead one read is
 * removed: another's, linked in meanwhile, is put back.
 */
async function removeDeadBreaker(breaker: string): Promise<void> {
  const text = await readFile(breaker, 'utf8').catch(() => undefined)
  if (text === undefined) return // gone: its remover finished
  let holder: LockHolder | undefined
  try {
    holder = JSON.parse(text) as LockHolder
  } catch {
    holder = undefined
  }
  if (holder && Number.isInteger(holder.pid) && holds(holder)) return
  const aside = tempPathFor(breaker)
  try {
    await rename(breaker, aside)
  } catch {
    return // gone meanwhile
  }
  if ((await readFile(aside, 'utf8').catch(() => '')) !== text) await link(aside, breaker).catch(() => {})
  await unlink(aside).catch(() => {})
}

/**
 * The daemon that still runs on what `config` names, by the locks it holds (its state dir's, and with `runDir` its
 * interface's and its hosts block's), and which of them, where no daemon answers on `config`'s socket. Commands
 * follow only the state dir's (`runDir` null): a daemon on the same interface or hosts block is another config's.
 * Doctor reads all three: what such a daemon made is not left over.
 */
export async function liveHolderFor(config: LockedConfig, runDir: string | null = defaultRunDir()): Promise<{ holder: LockHolder; holds: string } | undefined> {
  const paths = await lockPaths({ stateDir: config.stateDir, interfaceName: config.net.interfaceName, hostsBlock: { path: config.names.hostsFile, ...(config.instance ? { instance: config.instance } : {}) } }, runDir)
  const what = [`state dir ${config.stateDir}`, `interface ${config.net.interfaceName}`, `the ngrokd ${config.instance ? `instance ${config.instance} ` : ''}block of ${config.names.hostsFile}`]
  for (const [i, path] of paths.entries()) {
    const holder = await readHolder(path)
    if (holder && holder.pid !== process.pid && isNgrokd(holder)) return { holder, holds: what[i]! }
  }
  return undefined
}

/** The live ngrokd (not this process) that holds `subnet` in this network namespace, by its lock in `runDir`; none without a run dir. */
export async function liveSubnetHolder(subnet: string, runDir: string | null = defaultRunDir()): Promise<LockHolder | undefined> {
  if (!runDir) return undefined
  const holder = await readHolder(subnetLockPath(runDir, subnet)).catch(() => undefined)
  return holder && holder.pid !== process.pid && isNgrokd(holder) ? holder : undefined
}

/** Whom the lock of `stateDir` names; undefined when there is none (or it is not a lock ngrokd wrote). */
export function stateLockHolder(stateDir: string): Promise<LockHolder | undefined> {
  return readHolder(join(stateDir, STATE_LOCK_FILE))
}

/** Whether this process may read the state dir's lock at all (a `control.group` member may not: state_dir is 0700). */
export async function stateLockReadable(stateDir: string): Promise<boolean> {
  return access(stateDir, constants.X_OK).then(
    () => true,
    (e: NodeJS.ErrnoException) => e.code !== 'EACCES' && e.code !== 'EPERM',
  )
}

/** Read errors that say nothing of the lock, only of this process or the disk now: the lock may well be there. */
const CANNOT_TELL = new Set(['EMFILE', 'ENFILE', 'ENOMEM', 'EIO', 'EAGAIN', 'EINTR'])

/** The lock's holder; undefined when it is gone or not a lock ngrokd wrote (stale). Throws when it cannot be read now ({@link CANNOT_TELL}). */
async function readHolder(path: string): Promise<LockHolder | undefined> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (e) {
    if (CANNOT_TELL.has((e as NodeJS.ErrnoException).code ?? '')) throw e // out of descriptors is no removed lock
    return undefined // gone, or not a file
  }
  try {
    const holder = JSON.parse(text) as LockHolder
    return Number.isInteger(holder.pid) && holder.pid > 0 ? holder : undefined
  } catch {
    return undefined // not a lock we wrote: stale
  }
}

/**
 * Whether the daemon that wrote `holder` still runs. Our own pid counts only when this process wrote
 * it (another daemon in this process); a lock older than this process with our pid is a previous run's
 * (a container's ngrokd is pid 1 every time).
 */
function holds(holder: LockHolder): boolean {
  if (holder.pid !== process.pid) return isNgrokd(holder)
  const thisProcessStarted = Date.now() - process.uptime() * 1000
  return Date.parse(holder.startedAt) >= thisProcessStarted - 1000
}

/** `processStart` of this process, for the locks it writes (none where it cannot be told). */
function processStartField(): { processStart?: string } {
  const processStart = processStartOf(process.pid)
  return processStart ? { processStart } : {}
}

/**
 * Whether the process that wrote `holder` still runs and is an ngrokd: a reused pid of another program is not (after a
 * reboot on any OS, within minutes on Windows, or a pid another user made a process of theirs take on purpose, named
 * ngrokd, to keep root's daemon and cleanup out), or its lock would refuse every start. Where the lock names the
 * holder's start ({@link processStartOf}) the process must have that start; else its command line must name ngrokd. What
 * cannot be read counts as ngrokd's.
 */
function isNgrokd({ pid, processStart }: Pick<LockHolder, 'pid' | 'processStart'>): boolean {
  let mayAsk = true
  try {
    process.kill(pid, 0)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false // ESRCH: no such process
    mayAsk = false // another user's: alive
  }
  const start = processStart ? processStartOf(pid) : undefined
  if (start && processStart) {
    if (otherBoot(start, processStart)) return false // written before this boot: its process is gone
    // read through another time namespace than the lock was written in, starttimes differ: the command line decides
    if (sameClockView(start, processStart)) return sameStart(start, processStart)
  }
  const line = commandLineOf(pid)
  // '' says none, but kill said it is there: another user's process hidden from this one (/proc mounted hidepid=2)
  if (line === undefined || (line === '' && !mayAsk)) return true
  return /ngrokd/.test(line)
}

/**
 * The lock of one block of one hosts file, the same for every mount namespace that reaches the same file:
 * `hosts-<where>-<sha256 of the instance, 16 hex>.lock`. Where the file is, as the kernel names it, for a path that
 * stays the same file across the renames a rewrite makes:
 * - a file mounted on its own (a private copy bind-mounted over /etc/hosts, as a test, the demo or the bench make it;
 *   a systemd unit's ReadWritePaths): that file's device and inode (it is rewritten in place, so they stay);
 * - any other: the device and inode of its folder, and its name (a rewrite renames a new file over it).
 * The real path is judged: the resolver edits a symlinked hosts file's target. What cannot be read falls back to the
 * mount namespace and the path (`hosts-<mnt ns>-…`). A systemd service's file is mounted on its own where the same file
 * outside it is not: such a service and a daemon started by hand do not see each other's lock.
 */
async function hostsBlockLockName({ path, instance }: { path: string; instance?: string }): Promise<string> {
  const file = await realpath(path).catch(() => resolve(path))
  const id = createHash('sha256').update(instance ?? '').digest('hex').slice(0, 16)
  try {
    if (mountPoints().has(file)) {
      const { dev, ino } = await stat(file)
      return `hosts-f${dev}-${ino}-${id}.lock`
    }
    const folder = await stat(dirname(file))
    const name = createHash('sha256').update(basename(file)).digest('hex').slice(0, 16)
    return `hosts-d${folder.dev}-${folder.ino}-${name}-${id}.lock`
  } catch {
    const named = createHash('sha256').update(`${file}\0${instance ?? ''}`).digest('hex').slice(0, 16)
    return `hosts-${namespaceId('mnt')}-${named}.lock`
  }
}

const SUBNET_LOCK_PREFIX = 'subnet-'

/** The refusal, naming the holder; `instance`: the refused one's, whose status command it names. */
function alreadyRunning(holder: LockHolder, path: string, instance: string | undefined): NgrokdError {
  const where = `state dir ${holder.stateDir} / interface ${holder.interface}${holder.hostsFile ? ` / the ngrokd ${holder.instance ? `instance ${holder.instance} ` : ''}block of ${holder.hostsFile}` : ''}${holder.subnet ? ` / subnet ${holder.subnet}` : ''}`
  return new NgrokdError(
    'NGROKD_ERR_ALREADY_RUNNING',
    `another ngrokd (pid ${holder.pid}, started ${holder.startedAt}) already runs on ${where}; its control socket is ${holder.socket} (lock ${path})`,
    {
      hint: basename(path).startsWith(SUBNET_LOCK_PREFIX)
        ? `it hands out addresses of ${holder.subnet ?? 'this subnet'}: give this daemon a net.subnet of its own${instance ? ` (in /etc/ngrokd/${instance}.yml: two instance names can choose one /16)` : ''}`
        : instance
        ? `stop it first (\`ngrokd status --instance ${instance}\` shows it), or give this instance its own state_dir, net.interface_name and control.socket`
        : 'stop it first (`ngrokd status --config …` shows it), or run this one as a named instance (`--instance NAME`: its own state dir, interface, subnet, socket and hosts block)',
    },
  )
}

/** The lock of `subnet` in this network namespace. */
function subnetLockPath(runDir: string, subnet: string): string {
  return join(runDir, `${SUBNET_LOCK_PREFIX}${namespaceId('net')}-${subnet.replace('/', '_')}.lock`)
}
