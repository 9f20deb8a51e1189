import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, statSync } from 'node:fs'
import { access, constants, lstat, mkdir, open, readFile, readlink, realpath, rm, stat, unlink, type FileHandle } from 'node:fs/promises'
import type { Stats } from 'node:fs'
import { createHash } from 'node:crypto'
import { dirname, isAbsolute, join } from 'node:path'
import type { Check } from '../contracts/check.js'
import { silentLogger, type Logger } from '../contracts/logger.js'
import type { NameRecord, NameResolver, NameResolverHealth } from '../contracts/name-resolver.js'
import { formatError, isNgrokdError, NgrokdError, PermissionError } from '../errors/ngrokd-error.js'
import { Lifecycle } from '../util/lifecycle.js'
import { refusedRootHint } from '../util/privilege.js'
import { assertTrustedPath, judgeEntry, runsAsRoot } from '../util/trusted-path.js'
import { fsyncDir, pathExists, removeStaleTempFiles, stageFile, writeFileAtomicSync } from '../util/atomic-file.js'
import { writeStateFile } from '../util/state-dir-guard.js'
import { parseHostsBlock, updateHostsBytes, type HostsBlockOptions } from './hosts-block.js'
import { InPlaceWriteFailure, readAllSync, rewriteInPlace } from './in-place-rewrite.js'
import { judgeInterruptedWrite, tornThenAppended, type InterruptedWriteState } from './interrupted-write.js'
import { loadLeases, sameInode, waitForWritersLock, type Leases } from './leases.js'
import { ReplacedFiles } from './replaced-files.js'
import { mountPoints } from '../util/mount-points.js'

export interface HostsFileNameResolverOptions {
  /** The hosts file. Default `/etc/hosts`. A symlink is followed and its target edited. */
  path?: string
  /** Where the backup, the write-in-flight marker and the frozen state live (created 0700). */
  stateDir: string
  /** A named instance's own block (`instance` of the config); unset: the default daemon's. */
  instance?: string
  logger?: Logger
  /**
   * Renames the new file over the hosts file. Default `fs.renameSync`: it runs synchronously right
   * after the last check that the file is unchanged. Tests inject one that fails with EBUSY, as
   * `rename()` onto a bind-mounted file does.
   */
  rename?: (from: string, to: string) => void
  /**
   * Whether a file may be renamed over while this process holds it open. Default true (POSIX): the replaced copy stays
   * open, for lines appended to it later to be carried over. Windows' rename (MoveFileExW) refuses a target that any
   * handle holds open (ERROR_ACCESS_DENIED, EPERM): there the file is checked through its path, and nothing of it is
   * held at the rename.
   */
  renameOverOpenFile?: boolean
}

/** Whether `path` is still the file `stats` was taken of (undefined: that there is none). */
function sameFile(path: string, stats: Stats | undefined): boolean {
  const now = statSync(path, { throwIfNoEntry: false })
  return stats === undefined ? now === undefined : now !== undefined && now.ino === stats.ino && now.dev === stats.dev
}

/** One record as a key: `address hostname`. */
const recordKey = (r: NameRecord): string => `${r.address} ${r.hostname}`

/** The hosts file's content before an in-place rewrite, in `stateDir`. Kept after the write. */
export const HOSTS_BACKUP_FILE = 'hosts.ngrokd-backup'
/** The content an in-place rewrite is writing, in `stateDir`. */
export const HOSTS_NEXT_FILE = 'hosts.ngrokd-next'
/**
 * Present in `stateDir` from before an in-place rewrite touches the file until the file is read back
 * correct: JSON `{ path, startedAt, old: { size, sha256 }, new: { size, sha256 } }` describing the
 * backup and the new content.
 */
export const HOSTS_INFLIGHT_FILE = 'hosts.ngrokd-inflight'
/** Present in `stateDir` while name changes are frozen after a failed write: JSON `{ path, since, message, hint }`. */
export const HOSTS_FROZEN_FILE = 'hosts.ngrokd-frozen'
/** A change another program made to a replaced copy that could not be merged (not an append), in `stateDir`. */
export const HOSTS_UNMERGED_FILE = 'hosts.ngrokd-unmerged'

/** Rounds of read → change → write before giving up on a file that keeps changing under us. */
const MAX_ROUNDS = 20

interface InflightMarker {
  path: string
  startedAt: string
  old: { size: number; sha256: string }
  new: { size: number; sha256: string }
}

interface FrozenState {
  path: string
  since: string
  message: string
  hint: string
  /** Set when only a restart lifts it: the file was a mount of its own that went with a replaced file. */
  restartFixes?: true
}

interface Current {
  data: Buffer
  /** Undefined when the file does not exist. */
  stats?: Stats
}

const errno = (e: unknown): string | undefined => (e as NodeJS.ErrnoException | undefined)?.code
const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex')

/**
 * Publishes names in a managed block of the hosts file (see `hosts-block.ts` for the block).
 *
 * Nothing outside the block is lost, whatever happens:
 * - The file is handled as bytes: what is not UTF-8 and CRLF line ends stay byte for byte.
 * - ngrokd processes sharing the file (named instances, each with its own block) take turns: each rewrite
 *   holds a lock (flock, Linux; as root on a file of ngrokd's in /run/ngrokd that no other user can open, see
 *   `leases.ts`), so neither writes back a copy without the other's block.
 * - A plain file is replaced atomically (temp file, fsync, rename, directory fsync), keeping its
 *   mode and owner. Right before the rename the file must still be what was read (else read again
 *   and redo); lines another program appends to the replaced copy afterwards are carried over
 *   (see `replaced-files.ts`).
 * - When rename fails with EBUSY or EXDEV (a bind mount, as in Docker) the file is rewritten in
 *   place (see `in-place-rewrite.ts`): the backup, the new content and a marker are saved to
 *   `stateDir` first; room is reserved before any old byte is overwritten; a failure puts the old
 *   content back; the marker goes once the file reads back correct.
 * - After an in-place write was cut off (crash, kill -9), the file is restored from the backup only
 *   when it is damaged, as defined in `interrupted-write.ts`; a file changed since is kept.
 * - A write that fails freezes name changes: `publish()` rejects with `NGROKD_ERR_NAMES_FROZEN`
 *   (naming the file and the fix) and tries again on every call; `health()` and `diagnose()` report
 *   it (also to `ngrokd doctor` in another process, through `stateDir`) until a write succeeds.
 * - `open()` removes temp files of ours that a killed process left behind.
 *
 * `publish()` before `open()` (or after `close()`) rejects with `NGROKD_ERR_DRIVER_MISUSE`, so
 * recovery always runs before a write.
 *
 * ```ts
 * const names = new HostsFileNameResolver({ stateDir: '/var/lib/ngrokd', logger })
 * await names.open()
 * await names.publish({ records: [{ hostname: 'api.prod', address: '10.107.0.2' }] })
 * ```
 */
export class HostsFileNameResolver implements NameResolver {
  readonly resolver = 'hosts-file'
  readonly path: string
  readonly stateDir: string
  /** Whose block this resolver edits (a named instance has its own). */
  private readonly block: HostsBlockOptions
  readonly backupPath: string
  readonly nextPath: string
  readonly inflightPath: string
  readonly frozenPath: string
  private readonly logger: Logger
  private readonly rename: (from: string, to: string) => void
  private readonly renameOverOpenFile: boolean
  /**
   * The records (`address hostname`) this resolver last wrote; undefined before its first write, when the block is an
   * earlier run's (a start after a crash, `ngrokd cleanup`). After it, what else a rewrite drops was put there by hand.
   */
  private lastWritten: Set<string> | undefined
  /** Set after the first EBUSY/EXDEV: later writes go straight to the in-place path. */
  private inPlace = false
  private opened: Promise<void> | undefined
  private readonly lifecycle = new Lifecycle('hosts-file')
  /** Hostnames already warned about (user lines naming them); cleared when the conflict goes away. */
  private warned = new Set<string>()
  private queue: Promise<unknown> = Promise.resolve()
  private frozen: FrozenState | undefined
  /** Folders found where the backup, next-content or marker file goes, said once each. */
  private readonly saidNotAFile = new Set<string>()
  /**
   * The hosts file was a mount point of its own at the start (Linux: a systemd unit's ReadWritePaths bind-mounts it into
   * a read-only system). Replaced by rename outside (sed -i, an editor, a config tool), the kernel drops that mount
   * here: the path then shows the replacement through the read-only system until a restart mounts it again.
   */
  private mountedAtStart = false
  /** As root: why the state dir is not trusted now (taken over under the daemon); no backup is read or written there. */
  private stateDirRefused: NgrokdError | undefined
  private leases: Leases | undefined
  private replaced: ReplacedFiles

  constructor(options: HostsFileNameResolverOptions) {
    this.path = options.path ?? '/etc/hosts'
    this.stateDir = options.stateDir
    this.block = options.instance ? { instance: options.instance } : {}
    this.backupPath = join(options.stateDir, HOSTS_BACKUP_FILE)
    this.nextPath = join(options.stateDir, HOSTS_NEXT_FILE)
    this.inflightPath = join(options.stateDir, HOSTS_INFLIGHT_FILE)
    this.frozenPath = join(options.stateDir, HOSTS_FROZEN_FILE)
    this.logger = options.logger ?? silentLogger
    this.rename = options.rename ?? renameSync
    this.renameOverOpenFile = options.renameOverOpenFile ?? true
    this.replaced = new ReplacedFiles(undefined, this.logger)
  }

  async open(options: { signal?: AbortSignal } = {}): Promise<void> {
    checkAborted(options.signal, 'open')
    this.opened ??= this.serialised(() => this.start()).then(
      () => {
        this.lifecycle.open()
      },
      (e: unknown) => {
        this.opened = undefined
        throw e
      },
    )
    await this.opened
  }

  async publish(options: { records: readonly NameRecord[]; signal?: AbortSignal }): Promise<{ changed: boolean }> {
    checkAborted(options.signal, 'publish')
    this.lifecycle.assertOpen('publish()')
    return this.serialised(() => this.publishNow(options.records, options.signal))
  }

  async list(): Promise<NameRecord[]> {
    const { data } = await this.read(await this.target())
    return parseHostsBlock(data, this.block).records
  }

  /**
   * `frozen` after a write of the hosts file failed: name changes are refused (`publish()` rejects
   * with `NGROKD_ERR_NAMES_FROZEN` and tries again on every call) until a write succeeds.
   */
  health(): NameResolverHealth {
    if (!this.frozen) return { state: 'ok' }
    const { since, message, hint, restartFixes } = this.frozen
    return { state: 'frozen', since, error: { code: 'NGROKD_ERR_NAMES_FROZEN', message, hint }, ...(restartFixes ? { restartFixes } : {}) }
  }

  /**
   * Waits for a write in progress and carries over what other programs appended to replaced copies
   * of the file. A later `open()` checks for an interrupted write again.
   */
  async close(): Promise<void> {
    const wasReady = this.lifecycle.isOpen
    this.lifecycle.close()
    this.opened = undefined
    await this.queue.catch(() => {})
    if (wasReady && this.replaced.size > 0) {
      await this.serialised(async () => {
        const { data } = await this.read(await this.target())
        await this.publishNow(parseHostsBlock(data, this.block).records)
      }).catch((e: unknown) => this.logger.warn({ err: e }, `hosts-file: carrying over lines appended to a replaced copy of ${this.path} failed`))
    }
    await this.replaced.closeAll()
  }

  async diagnose(): Promise<Check[]> {
    const checks: Check[] = []
    const target = await this.target()
    let data: Buffer | undefined
    try {
      await access(target, constants.R_OK | constants.W_OK)
      data = await readFile(target)
      checks.push({ id: 'hosts-file.access', status: 'ok', summary: `${target} is readable and writable` })
    } catch (e) {
      const code = errno(e)
      const dangling = code === 'ENOENT' ? await this.danglingLink() : undefined
      if (dangling) {
        checks.push({ id: 'hosts-file.access', status: 'fail', summary: dangling.message, hint: dangling.hint!, code: dangling.code })
      } else if (code === 'ENOENT') {
        checks.push({ id: 'hosts-file.access', status: 'warn', summary: `${target} does not exist; ngrokd will create it`, hint: `check that ${this.path} is the hosts file this system reads` })
      } else {
        checks.push({
          id: 'hosts-file.access',
          status: 'fail',
          summary: `cannot read and write ${target}: ${code ?? String(e)}`,
          hint: code === 'EROFS' ? `${target} is on a read-only file system; choose another name resolver` : code === 'EACCES' || code === 'EPERM' ? refusedHint(target) : `check ${target}`,
          code: code === 'EACCES' || code === 'EPERM' ? 'NGROKD_ERR_PERMISSION' : 'NGROKD_ERR_HOSTS_FILE',
        })
      }
    }
    if (data !== undefined) {
      const info = parseHostsBlock(data, this.block)
      const problems: string[] = []
      if (info.blocks > 1) problems.push(`${info.blocks} ngrokd blocks`)
      if (info.strayMarkers.length > 0) problems.push(`unpaired ngrokd marker on line ${info.strayMarkers.join(', ')}`)
      if (info.invalidLines.length > 0) problems.push(`unreadable line ${info.invalidLines.join(', ')} inside the block`)
      checks.push(
        problems.length === 0
          ? { id: 'hosts-file.markers', status: 'ok', summary: info.blocks === 1 ? `ngrokd block with ${info.records.length} names` : 'no ngrokd block yet' }
          : {
              id: 'hosts-file.markers',
              status: 'warn',
              summary: `${target} has ${problems.join('; ')}`,
              hint: 'delete those lines by hand; ngrokd rewrites its block on the next change',
              code: 'NGROKD_ERR_HOSTS_FILE',
            },
      )
      const shadowed = [...new Set(info.records.map((r) => r.hostname))].filter((h) => info.userHostnames.has(h))
      if (shadowed.length > 0) {
        checks.push({
          id: 'hosts-file.conflicts',
          status: 'warn',
          summary: `lines outside the ngrokd block also name ${shadowed.join(', ')}`,
          hint: `remove those lines from ${target}; programs may resolve the other address`,
        })
      }
    }
    if (await pathExists(this.inflightPath)) {
      const judged = await this.judge().catch(() => undefined)
      const what: Record<InterruptedWriteState, string> = {
        old: 'the file still holds its old content',
        new: 'the file holds the new content',
        torn: `the file is damaged; ngrokd restores it from ${this.backupPath}`,
        changed: `the file was changed since and is kept; the content from before is in ${this.backupPath}`,
      }
      checks.push({
        id: 'hosts-file.interrupted-write',
        status: 'warn',
        summary: `an in-place write of the hosts file did not finish (${this.inflightPath}): ${judged ? what[judged.state] : 'the state files cannot be read'}`,
        hint: 'ngrokd settles it when it next starts or changes a name',
      })
    }
    const frozen = this.frozen ?? (await this.readFrozen())
    if (frozen) {
      checks.push({ id: 'hosts-file.frozen', status: 'fail', summary: `${frozen.message} (since ${frozen.since})`, hint: frozen.hint, code: 'NGROKD_ERR_NAMES_FROZEN' })
    }
    return checks
  }

  // --- start, publish ------------------------------------------------------------------------

  /** Creates the state directory, removes stale temp files, loads a frozen state, settles an interrupted write. */
  private async start(): Promise<void> {
    try {
      await mkdir(this.stateDir, { recursive: true, mode: 0o700 })
    } catch (e) {
      throw new NgrokdError('NGROKD_ERR_STATE', `hosts-file: cannot create ${this.stateDir}: ${errno(e) ?? String(e)}`, { cause: e })
    }
    this.leases = await loadLeases()
    this.replaced = new ReplacedFiles(this.leases, this.logger)
    const target = await this.target()
    for (const file of [target, this.backupPath, this.nextPath, this.inflightPath, this.frozenPath, join(this.stateDir, HOSTS_UNMERGED_FILE)]) {
      for (const removed of await removeStaleTempFiles(file)) this.logger.info({ path: removed }, `hosts-file: removed ${removed}, left by a killed ngrokd`)
    }
    this.frozen = await this.readFrozen()
    this.mountedAtStart = process.platform === 'linux' && mountPoints().has(target)
    try {
      await this.settleInterruptedWrite()
    } catch (e) {
      // the file stays as it is and names stay frozen (already logged); nothing else has to stop
      if (!isNgrokdError(e, 'NGROKD_ERR_NAMES_FROZEN')) throw e
    }
  }

  private async publishNow(records: readonly NameRecord[], signal?: AbortSignal): Promise<{ changed: boolean }> {
    await this.settleInterruptedWrite() // throws NGROKD_ERR_NAMES_FROZEN while the file is damaged
    const target = await this.target()
    let wrote = false
    for (let round = 1; round <= MAX_ROUNDS; round++) {
      const current = await this.read(target)
      const carry = this.replaced.collect()
      await this.keepUnmerged(target, carry.unmergeable)
      /** The file with the block holding `records`, and what was appended to replaced copies carried over. */
      const desired = (data: Buffer) => updateHostsBytes(carry.apply(data), records, this.block) // throws on an unsafe record
      const update = desired(current.data)
      this.warnConflicts(target, update.userConflicts)
      if (update.data.equals(current.data)) {
        await carry.commit(current.data)
        await this.thaw(target)
        return { changed: wrote }
      }
      if (!wrote) checkAborted(signal, 'publish') // last point before the file is touched
      const dangling = await this.danglingLink()
      if (dangling) throw dangling
      this.warnDroppedLines(target, current.data, records)
      let written: Buffer | undefined
      try {
        written = await this.write(target, current, update.data, (data) => desired(data).data)
      } catch (e) {
        throw await this.freeze(target, e)
      }
      if (written) {
        wrote = true
        this.lastWritten = new Set(records.map(recordKey))
        await carry.commit(written)
        this.logger.debug({ path: target, records: records.length }, 'hosts-file: published')
      } else {
        this.logger.debug({ path: target }, `hosts-file: ${target} changed while it was being rewritten; reading it again`)
      }
      // the next round reads the file back: it must hold what was written
    }
    throw new NgrokdError('NGROKD_ERR_HOSTS_FILE', `hosts-file: ${target} kept changing while ngrokd rewrote it (${MAX_ROUNDS} rounds)`, {
      hint: `another program rewrites ${target} all the time; ngrokd tries again on the next reconcile`,
    })
  }

  // --- writing -------------------------------------------------------------------------------

  /**
   * Lines inside the block that ngrokd never writes (not `<ipv4> <name.namespace>`: a user's own line put there) go
   * when the block is rewritten: said at warn, with where to put them instead. So do names put in the block by hand
   * while this resolver runs, named (an earlier run's names go quietly at its first write).
   */
  private warnDroppedLines(target: string, data: Buffer, records: readonly NameRecord[]): void {
    const { invalidLines, records: inBlock } = parseHostsBlock(data, this.block)
    const kept = new Set(records.map(recordKey))
    const written = this.lastWritten
    const strangers = written ? inBlock.filter((r) => !kept.has(recordKey(r)) && !written.has(recordKey(r))) : []
    if (strangers.length > 0) {
      const shown = strangers.slice(0, 3).map((r) => `${r.hostname} ${r.address}`)
      this.logger.warn(
        { path: target, hostnames: strangers.map((r) => r.hostname) },
        `hosts-file: removing ${strangers.length} name${strangers.length === 1 ? '' : 's'} from ngrokd's block of ${target} that ngrokd did not write (${shown.join(', ')}${strangers.length > 3 ? ', …' : ''}) as it rewrites the block; put your own lines outside its BEGIN/END markers`,
      )
    }
    if (invalidLines.length === 0) return
    const lines = data.toString('latin1').split('\n')
    const shown = invalidLines.slice(0, 3).map((n) => `${n}: ${JSON.stringify((lines[n - 1] ?? '').replace(/\r$/, ''))}`)
    this.logger.warn(
      { path: target, lines: invalidLines },
      `hosts-file: dropping ${invalidLines.length} line${invalidLines.length === 1 ? '' : 's'} inside ngrokd's block of ${target} that ngrokd did not write (line ${shown.join(', line ')}${invalidLines.length > 3 ? ', …' : ''}) as it rewrites the block; put your own lines outside its BEGIN/END markers`,
    )
  }

  /** The file to edit: the symlink target when `path` is a symlink (`path` itself when it leads nowhere). */
  private async target(): Promise<string> {
    try {
      return await realpath(this.path)
    } catch {
      return this.path
    }
  }

  /**
   * Why `path` must not be written, when it is a symbolic link to nothing: writing it would replace the user's link
   * with a file. Reading it reads as an empty file (nothing to remove, so `cleanup` has nothing to refuse).
   */
  private async danglingLink(): Promise<NgrokdError | undefined> {
    const link = await lstat(this.path).catch(() => undefined)
    if (!link?.isSymbolicLink()) return undefined
    const why = await realpath(this.path).then(() => undefined, (e: unknown) => errno(e) ?? String(e))
    if (why === undefined) return undefined
    const to = await readlink(this.path).catch(() => '(unreadable)')
    return new NgrokdError('NGROKD_ERR_HOSTS_FILE', `hosts-file: ${this.path} is a symbolic link to ${to}, which cannot be followed (${why})`, {
      hint: `create the file it points to, or set names.hosts_file to the file itself; ngrokd does not replace the link with a file`,
    })
  }

  private async read(target: string): Promise<Current> {
    try {
      const stats = await stat(target)
      return { data: await readFile(target), stats }
    } catch (e) {
      if (errno(e) === 'ENOENT') return { data: Buffer.alloc(0) }
      throw fileError(e, 'read', target)
    }
  }

  /**
   * Puts `next` (= `desired(current.data)`) in place of the file. Returns what the file now holds
   * (`desired` of what it held at the moment of writing), or undefined when it changed in a way that
   * needs a fresh read.
   */
  private async write(target: string, current: Current, next: Buffer, desired: (data: Buffer) => Buffer): Promise<Buffer | undefined> {
    if (!this.inPlace || !current.stats) {
      try {
        return await this.replaceByRename(target, current, next)
      } catch (e) {
        const code = errno(e)
        // EBUSY/EXDEV: the file is a bind mount (Docker). EACCES/EPERM/EROFS on the temp file: the
        // directory is not ours to write but the file may be (a file bind-mounted for us).
        const fileItselfWritable = current.stats !== undefined && ['EACCES', 'EPERM', 'EROFS'].includes(code ?? '') && (await isWritable(target))
        if (code !== 'EBUSY' && code !== 'EXDEV' && !fileItselfWritable) throw e
        this.inPlace = true
        this.logger.info(
          { path: target, code },
          `hosts-file: ${target} cannot be replaced by rename (${code}; a bind mount?), rewriting it in place with a backup in ${this.stateDir}`,
        )
      }
    }
    if (!current.stats) await createEmpty(target)
    return this.writeInPlace(target, desired)
  }

  /**
   * Temp file beside the target, then — synchronously — check the target and rename over it. If
   * the target only grew since it was read (another program appended whole lines), those lines go
   * behind the new content in the temp file too. The replaced copy stays open, so that lines
   * appended to it later are carried over (not where a file held open cannot be renamed over: Windows).
   */
  private async replaceByRename(target: string, current: Current, next: Buffer): Promise<Buffer | undefined> {
    const replaced: FileHandle | undefined = current.stats && this.renameOverOpenFile ? await open(target, 'r') : undefined
    let tracked = false
    let unlock: (() => void) | undefined
    try {
      // another ngrokd process (a named instance) that renames first leaves this one a replaced inode: read again
      if (replaced) unlock = await waitForWritersLock(replaced.fd, this.leases, target)
      const owner = current.stats && process.getuid?.() === 0 ? { uid: current.stats.uid, gid: current.stats.gid } : undefined
      const staged = await stageFile(target, next, { mode: current.stats ? current.stats.mode & 0o7777 : 0o644, owner })
      let seen = current.data
      let placed = next
      try {
        // critical section: synchronous from the check to the rename
        if (replaced ? !sameInode(target, replaced.fd) : !sameFile(target, current.stats)) {
          await staged.discard()
          return undefined
        }
        if (current.stats) {
          const now = replaced ? readAllSync(replaced.fd) : readFileSync(target)
          if (!now.equals(seen)) {
            if (!startsWith(now, seen) || !endsLine(seen) || !endsLine(next)) {
              await staged.discard()
              return undefined
            }
            const appended = now.subarray(seen.length)
            appendFileSync(staged.temp, appended)
            seen = now
            placed = Buffer.concat([next, appended])
          }
        }
        this.rename(staged.temp, target)
      } catch (e) {
        await staged.discard()
        throw e
      }
      await fsyncDir(dirname(target))
      if (current.stats) this.warnOwner(target, current.stats)
      if (replaced) {
        await this.replaced.track(replaced, seen, placed)
        tracked = true
      }
      return placed
    } finally {
      unlock?.()
      if (!tracked) await replaced?.close()
    }
  }

  /** Backup, new content and marker first; the marker goes once the file reads back correct (or was put back). */
  private async writeInPlace(target: string, desired: (data: Buffer) => Buffer): Promise<Buffer | undefined> {
    try {
      const written = await rewriteInPlace(target, { desired, prepare: (old, next) => this.saveBeforeInPlace(target, old, next), leases: this.leases })
      await this.clearInflight()
      return written?.next
    } catch (e) {
      // put back (or never touched): the marker goes; still cut: it stays, and the next call restores the backup
      if (!(e instanceof InPlaceWriteFailure) || e.intact) await this.clearInflight()
      throw e
    }
  }

  /** Synchronous: it may run while a write lease holds up every open() of the hosts file (see `in-place-rewrite.ts`). */
  private saveBeforeInPlace(target: string, old: Buffer, next: Buffer): void {
    const refused = this.stateDirRefused
    if (refused) {
      throw new NgrokdError('NGROKD_ERR_STATE', `hosts-file: no backup is written in ${this.stateDir} before rewriting ${target}: ${refused.message}`, { cause: refused, hint: refused.hint ?? `fix ${this.stateDir}` })
    }
    try {
      mkdirSync(this.stateDir, { recursive: true, mode: 0o700 })
      writeFileAtomicSync(this.backupPath, old, { mode: 0o600 })
      writeFileAtomicSync(this.nextPath, next, { mode: 0o600 })
      const marker: InflightMarker = {
        path: target,
        startedAt: new Date().toISOString(),
        old: { size: old.length, sha256: sha256(old) },
        new: { size: next.length, sha256: sha256(next) },
      }
      writeFileAtomicSync(this.inflightPath, Buffer.from(JSON.stringify(marker) + '\n'), { mode: 0o600 })
    } catch (e) {
      throw new NgrokdError('NGROKD_ERR_STATE', `hosts-file: cannot save a backup in ${this.stateDir} before rewriting ${target}: ${errno(e) ?? String(e)}`, {
        cause: e,
        hint: `${this.stateDir} must be writable and have free space before the hosts file is rewritten in place`,
      })
    }
  }

  private async clearInflight(): Promise<void> {
    try {
      await unlink(this.inflightPath)
      await fsyncDir(this.stateDir)
    } catch (e) {
      if (errno(e) === 'ENOENT') return
      throw new NgrokdError('NGROKD_ERR_STATE', `hosts-file: cannot remove ${this.inflightPath}: ${errno(e) ?? String(e)}`, { cause: e })
    }
  }

  // --- an interrupted in-place write ----------------------------------------------------------

  /** The marker, the file and the two recorded contents; undefined when there is no marker. */
  private async judge(): Promise<{ state: InterruptedWriteState; path: string; file: Buffer; old: Buffer; next: Buffer } | undefined> {
    let text: string
    try {
      text = await readFile(this.inflightPath, 'utf8')
    } catch (e) {
      if (errno(e) === 'ENOENT') return undefined
      throw e
    }
    const marker = JSON.parse(text) as Partial<InflightMarker>
    if (typeof marker.path !== 'string' || !isAbsolute(marker.path) || !marker.old || !marker.new) throw new Error(`${this.inflightPath} is not a marker of this ngrokd version`)
    // only ever the hosts file this resolver edits: a marker naming another file is not put back over it
    if (marker.path !== this.path && marker.path !== (await this.target())) throw new Error(`${this.inflightPath} names ${marker.path}, not the hosts file ${this.path}`)
    const [file, old, next] = await Promise.all([readFile(marker.path).catch(() => Buffer.alloc(0)), readFile(this.backupPath), readFile(this.nextPath)])
    if (sha256(old) !== marker.old.sha256 || sha256(next) !== marker.new.sha256) throw new Error(`${this.backupPath} or ${this.nextPath} does not match ${this.inflightPath}`)
    return { state: judgeInterruptedWrite(file, old, next), path: marker.path, file, old, next }
  }

  /**
   * Settles an in-place write that did not finish (see `interrupted-write.ts`): a torn file gets the
   * backup back; any other file is kept. Throws `NGROKD_ERR_NAMES_FROZEN` while the file stays torn.
   */
  private async settleInterruptedWrite(): Promise<void> {
    // its backup and marker decide what the hosts file becomes: as root, read from (and written to) a folder no one
    // else can change only (a state_dir removed under the daemon and made again by another user is refused)
    if (runsAsRoot()) {
      try {
        await assertTrustedPath(this.stateDir, { what: 'state directory (the hosts file\'s backup)' })
        this.stateDirRefused = undefined
        // and its entries, as they are (a link is not followed: one to /proc/PID/fd/N reads a file no one can judge): one
        // another user left while the folder was theirs never decides what the hosts file becomes
        for (const file of [this.inflightPath, this.backupPath, this.nextPath]) {
          const st = await lstat(file).catch(() => undefined)
          if (!st) continue
          if (st.isDirectory()) {
            // a folder in the place of ngrokd's file is not ngrokd's to remove (rm -r): said once, and a write that needs
            // the file freezes the names with this fix
            if (!this.saidNotAFile.has(file)) {
              this.saidNotAFile.add(file)
              this.logger.error({ path: file }, `hosts-file: ${file} is a directory, not a file of ngrokd's: remove it (rm -r ${file}); until then a rewrite of the hosts file in place cannot keep its backup there`)
            }
            continue
          }
          let refused: unknown
          try {
            if (!st.isFile()) throw new NgrokdError('NGROKD_ERR_PATH_UNTRUSTED', `refusing hosts file backup ${file}: it is not a regular file`)
            judgeEntry(file, st, 'hosts file backup')
          } catch (e) {
            refused = e
          }
          if (!refused) continue
          this.logger.error({ err: refused }, `hosts-file: ${formatError(refused).split('\n')[0]}: removed with the rest of an interrupted write's files, unused; the hosts file is kept as it is`)
          for (const f of [this.inflightPath, this.backupPath, this.nextPath]) await rm(f, { force: true }).catch(() => {})
          return
        }
      } catch (e) {
        if (!isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED')) throw e
        // nothing in it is judged or put back; a write that needs a backup there freezes the names (saveBeforeInPlace)
        this.stateDirRefused = e
        return
      }
    }
    let judged: Awaited<ReturnType<HostsFileNameResolver['judge']>>
    try {
      judged = await this.judge()
    } catch (e) {
      if (!existsSync(this.inflightPath)) return
      this.logger.error({ err: e }, `hosts-file: an in-place write did not finish but cannot be judged (${(e as Error).message}); the hosts file is kept as it is, check it by hand`)
      await this.clearInflight()
      return
    }
    if (!judged) return
    const { state, path, file, old, next } = judged
    // torn, and lines appended to it since (an admin's `>>`): the backup with those lines after it
    const appended = state === 'changed' ? tornThenAppended(file, old, next) : undefined
    if (state === 'torn' || appended) {
      const restore = appended ? Buffer.concat([old, appended]) : old
      try {
        // only over the torn content judged: a file changed meanwhile is judged again next time
        const restored = await rewriteInPlace(path, { desired: (now) => (now.equals(file) ? restore : now), prepare: () => {}, leases: this.leases })
        if (!restored) throw new Error(`${path} changed while it was being restored`)
      } catch (e) {
        throw await this.freeze(path, e, { verb: 'restore', damaged: true })
      }
      this.logger.warn({ path, backup: this.backupPath }, `hosts-file: restored ${path} from ${this.backupPath}: an in-place write of it was cut off${appended ? `; the ${appended.toString().split('\n').length - 1} line(s) appended to it since are kept after it` : ''}`)
    } else if (state === 'changed') {
      this.logger.warn({ path, backup: this.backupPath }, `hosts-file: an in-place write of ${path} did not finish, but the file has changed since; it is kept as it is (the content from before that write is in ${this.backupPath})`)
    } else {
      this.logger.info({ path }, `hosts-file: an in-place write of ${path} did not finish its bookkeeping; the file holds the ${state} content`)
    }
    await this.clearInflight()
  }

  // --- frozen ----------------------------------------------------------------------------------

  /**
   * Enters (or stays in) the frozen state for a failed write; returns the error `publish()` rejects
   * with. A refusal for lack of privilege (not root) is not a failed write: it is returned as it is. Root refused
   * (an immutable file, a security module) is one: the names published before still resolve.
   */
  private async freeze(target: string, e: unknown, { verb = 'write', damaged = e instanceof InPlaceWriteFailure && !e.intact } = {}): Promise<NgrokdError> {
    if (isNgrokdError(e) && e.code !== 'NGROKD_ERR_STATE') return e
    const cause = e instanceof InPlaceWriteFailure ? e.cause : e
    const code = errno(cause)
    const refused = code === 'EACCES' || code === 'EPERM'
    if (!(e instanceof InPlaceWriteFailure) && refused && !runsAsRoot()) return fileError(e, verb, target)
    const text = cause instanceof Error ? cause.message.replace(/^hosts-file: /, '') : String(cause)
    const reason = code && !text.startsWith(code) ? `${code} (${text})` : text
    const message = `hosts-file: name changes are frozen: cannot ${verb} ${target}: ${reason}; ${
      damaged ? `the file may be cut: ngrokd restores it from ${this.backupPath} as soon as it can` : 'the file keeps its previous content'
    }`
    const stateCode = errno((cause as Error | undefined)?.cause)
    const mountGone = code === 'EROFS' && this.mountedAtStart && !mountPoints().has(target)
    const fix = mountGone
      ? `${target} was replaced by another program (a rename over it: sed -i, an editor, a configuration tool), which took away the mount that let ngrokd write it under its service's read-only system (the systemd unit's ReadWritePaths); restart ngrokd (systemctl restart ngrokd), which writes the new file`
      : code === 'ENOSPC' || code === 'EDQUOT'
        ? `free space on the file system of ${target} (df -h ${dirname(target)})`
        : refused
          ? refusedRootHint(target)
        : code === 'EROFS'
          ? `${target} is on a read-only file system; make it writable or choose another name resolver`
          : isNgrokdError(cause, 'NGROKD_ERR_STATE') && stateCode === 'EISDIR'
            ? `a directory is where ngrokd keeps the hosts file's backup in ${this.stateDir}: remove it (rm -r ${this.backupPath}, or ${this.nextPath})`
          : isNgrokdError(cause, 'NGROKD_ERR_STATE') && isNgrokdError(cause.cause, 'NGROKD_ERR_PATH_UNTRUSTED')
            ? (cause.hint ?? `fix ${this.stateDir}`)
            : isNgrokdError(cause, 'NGROKD_ERR_STATE')
              ? `make ${this.stateDir} writable${stateCode === 'ENOSPC' || stateCode === 'EDQUOT' ? ' and free space on its file system' : ''}`
            : `check ${target} and the disk it is on`
    const hint = mountGone ? fix : `${fix}; ngrokd tries again on every reconcile and publishes names once a write succeeds`
    const again = this.frozen?.message === message
    this.frozen = { path: target, since: this.frozen?.since ?? new Date().toISOString(), message, hint, ...(mountGone ? { restartFixes: true as const } : {}) }
    // (not into a state dir refused now: another user's)
    if (!this.stateDirRefused) {
      await writeStateFile(this.frozenPath, JSON.stringify(this.frozen) + '\n').catch((err: unknown) => {
        this.logger.debug({ err }, `hosts-file: cannot save ${this.frozenPath}`)
      })
    }
    // loud once (an expected failure: its code and fix, the stack at debug); while the same failure repeats, quiet
    this.logger[again ? 'debug' : 'error']({ path: target, code: 'NGROKD_ERR_NAMES_FROZEN' }, `${message}; hint: ${hint}`)
    this.logger.debug({ err: e }, `hosts-file: the failed ${verb} of ${target}`)
    return new NgrokdError('NGROKD_ERR_NAMES_FROZEN', message, { cause: e instanceof InPlaceWriteFailure ? e.cause : e, hint })
  }

  private async thaw(target: string): Promise<void> {
    if (!this.frozen) return
    const since = this.frozen.since
    this.frozen = undefined
    await unlink(this.frozenPath).catch(() => {})
    this.logger.info({ path: target }, `hosts-file: names are published again in ${target} (frozen since ${since})`)
  }

  private async readFrozen(): Promise<FrozenState | undefined> {
    try {
      const state = JSON.parse(await readFile(this.frozenPath, 'utf8')) as Partial<FrozenState>
      if (typeof state.message === 'string' && typeof state.since === 'string') {
        return { path: state.path ?? this.path, since: state.since, message: state.message, hint: state.hint ?? '' }
      }
    } catch {
      // none, or unreadable: not frozen
    }
    return undefined
  }

  // --- other programs --------------------------------------------------------------------------

  /** Saves what another program wrote to a replaced copy that cannot be merged, and says so. */
  private async keepUnmerged(target: string, copies: Buffer[]): Promise<void> {
    for (const copy of copies) {
      const saved = join(this.stateDir, HOSTS_UNMERGED_FILE)
      await writeStateFile(saved, copy).catch(() => {})
      this.logger.error({ path: target, saved }, `hosts-file: another program edited ${target} while ngrokd replaced it, other than by appending lines; that edit is not in ${target}: its copy is ${saved}`)
    }
  }

  private warnOwner(target: string, before: Stats): void {
    const after = statSync(target)
    if (after.uid === before.uid && after.gid === before.gid) return
    this.logger.warn({ path: target, uid: before.uid, gid: before.gid }, `hosts-file: ${target} was owned by ${before.uid}:${before.gid}; ngrokd cannot give it back (not root)`)
  }

  /** One line per publish that brings new conflicts (another instance's block may name thousands). */
  private warnConflicts(target: string, conflicts: string[]): void {
    const fresh = conflicts.filter((hostname) => !this.warned.has(hostname))
    this.warned = new Set(conflicts)
    if (fresh.length === 0) return
    const SHOWN = 5
    const names = fresh.slice(0, SHOWN).join(', ') + (fresh.length > SHOWN ? ` and ${fresh.length - SHOWN} more` : '')
    const which = fresh.length === 1 ? 'a line outside the ngrokd block' : 'lines outside the ngrokd block'
    this.logger.warn(
      { path: target, hostnames: fresh.slice(0, 100), count: fresh.length },
      `hosts-file: ${which} of ${target} also name${fresh.length === 1 ? 's' : ''} ${names}; programs may resolve ${fresh.length === 1 ? 'that address' : 'those addresses'} instead`,
    )
  }

  private serialised<T>(fn: () => Promise<T>): Promise<T> {
    const turn = this.queue.catch(() => {}).then(fn)
    this.queue = turn
    return turn
  }
}

/** Empty, or ends with a line end: what is appended to it starts a line of its own. */
function endsLine(data: Buffer): boolean {
  return data.length === 0 || data[data.length - 1] === 0x0a
}

function startsWith(data: Buffer, prefix: Buffer): boolean {
  return data.length >= prefix.length && data.subarray(0, prefix.length).equals(prefix)
}


function checkAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new NgrokdError('NGROKD_ERR_ABORTED', `hosts-file: ${what} aborted`, { cause: signal.reason })
}

/** The fix for a refused access to the hosts file: root is refused only by the file's attributes or a security module. */
function refusedHint(path: string): string {
  return process.getuid?.() === 0
    ? refusedRootHint(path)
    : `run ngrokd as root (sudo), which may write ${path} (the other way to publish names, names.resolver: dns with plugins: [dns], needs root too: it answers on port 53)`
}

function fileError(e: unknown, verb: string, path: string): NgrokdError {
  const code = errno(e)
  if (code === 'EACCES' || code === 'EPERM') return new PermissionError(`hosts-file: cannot ${verb} ${path}: ${code}`, { hint: refusedHint(path), cause: e })
  return new NgrokdError('NGROKD_ERR_HOSTS_FILE', `hosts-file: cannot ${verb} ${path}: ${code ?? String(e)}`, {
    cause: e,
    hint: code === 'EROFS' ? `${path} is on a read-only file system; choose another name resolver` : `check ${path} and the disk it is on`,
  })
}

/** Creates `path` empty (0644) unless something is there already. */
async function createEmpty(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true })
  await open(path, 'wx', 0o644).then(
    (h) => h.close(),
    (e: unknown) => {
      if (errno(e) !== 'EEXIST') throw e
    },
  )
}

async function isWritable(path: string): Promise<boolean> {
  try {
    await access(path, constants.W_OK)
    return true
  } catch {
    return false
  }
}
