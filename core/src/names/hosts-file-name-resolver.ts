import { access, chown, constants, mkdir, open, readFile, realpath, stat, unlink } from 'node:fs/promises'
import type { Stats } from 'node:fs'
import { dirname, isAbsolute, join } from 'node:path'
import type { Check } from '../contracts/check.js'
import { silentLogger, type Logger } from '../contracts/logger.js'
import type { NameRecord, NameResolver } from '../contracts/name-resolver.js'
import { NgrokdError, PermissionError } from '../errors/ngrokd-error.js'
import { fsyncDir, pathExists, writeFileAtomic } from '../util/atomic-file.js'
import { parseHostsBlock, updateHostsText } from './hosts-block.js'

export interface HostsFileNameResolverOptions {
  /** The hosts file. Default `/etc/hosts`. A symlink is followed and its target edited. */
  path?: string
  /** Where the backup and the write-in-flight marker of in-place rewrites live (created 0700). */
  stateDir: string
  logger?: Logger
  /**
   * Replaces a file atomically (temp file, fsync, rename). Default `writeFileAtomic`; tests inject
   * one that fails like `rename()` onto a bind mount does.
   */
  replaceFile?: (path: string, data: string, options: { mode: number }) => Promise<void>
}

/** Name of the copy of the hosts file taken before an in-place rewrite, in `stateDir`. */
export const HOSTS_BACKUP_FILE = 'hosts.ngrokd-backup'
/** Present in `stateDir` while an in-place rewrite runs; JSON `{ path, startedAt }`. */
export const HOSTS_INFLIGHT_FILE = 'hosts.ngrokd-inflight'

const errno = (e: unknown): string | undefined => (e as NodeJS.ErrnoException | undefined)?.code

/**
 * Publishes names in a managed block of the hosts file (see `hosts-block.ts` for the block).
 *
 * Writing never leaves the file empty or half-written:
 * - a plain file is replaced atomically (temp file + fsync + rename + directory fsync), keeping
 *   its mode and owner;
 * - when rename fails with EBUSY or EXDEV (the file is a bind mount, as in Docker), the file is
 *   rewritten in place: first a backup and a write-in-flight marker are written (fsync'd) to
 *   `stateDir`, then the file is written, truncated and fsync'd, then the marker is removed.
 *   `open()` finds a marker left by a cut-off write and restores the backup before anything else.
 *
 * Nothing is written when the block already holds the records. `publish()` before `open()` (or
 * after `close()`) rejects with `NGROKD_ERR_DRIVER_MISUSE`, so recovery always runs before a write.
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
  readonly backupPath: string
  readonly inflightPath: string
  private readonly logger: Logger
  private readonly replaceFile: NonNullable<HostsFileNameResolverOptions['replaceFile']>
  /** Set after the first EBUSY/EXDEV: later writes go straight to the in-place path. */
  private inPlace = false
  private opened: Promise<void> | undefined
  private ready = false
  /** Hostnames already warned about (user lines naming them); cleared when the conflict goes away. */
  private warned = new Set<string>()
  private queue: Promise<unknown> = Promise.resolve()

  constructor(options: HostsFileNameResolverOptions) {
    this.path = options.path ?? '/etc/hosts'
    this.stateDir = options.stateDir
    this.backupPath = join(options.stateDir, HOSTS_BACKUP_FILE)
    this.inflightPath = join(options.stateDir, HOSTS_INFLIGHT_FILE)
    this.logger = options.logger ?? silentLogger
    this.replaceFile = options.replaceFile ?? ((path, data, { mode }) => writeFileAtomic(path, data, { mode }))
  }

  async open(options: { signal?: AbortSignal } = {}): Promise<void> {
    checkAborted(options.signal, 'open')
    this.opened ??= this.serialised(() => this.recover()).then(
      () => {
        this.ready = true
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
    if (!this.ready) {
      throw new NgrokdError('NGROKD_ERR_DRIVER_MISUSE', 'hosts-file: publish() called before open() or after close()', { hint: 'await open() first' })
    }
    return this.serialised(async () => {
      const target = await this.target()
      const { text: original, stats } = await this.read(target)
      const update = updateHostsText(original, options.records) // throws on an unsafe record
      this.warnConflicts(target, update.userConflicts)
      if (!update.changed) return { changed: false }
      checkAborted(options.signal, 'publish') // last point before the file is touched
      await this.write(target, update.text, original, stats)
      this.logger.debug({ path: target, records: options.records.length }, 'hosts-file: published')
      return { changed: true }
    })
  }

  async list(): Promise<NameRecord[]> {
    const { text } = await this.read(await this.target())
    return parseHostsBlock(text).records
  }

  /** Waits for a write in progress. A later `open()` checks for an interrupted write again. */
  async close(): Promise<void> {
    this.ready = false
    this.opened = undefined
    await this.queue.catch(() => {})
  }

  async diagnose(): Promise<Check[]> {
    const checks: Check[] = []
    const target = await this.target()
    let text: string | undefined
    try {
      await access(target, constants.R_OK | constants.W_OK)
      text = await readFile(target, 'utf8')
      checks.push({ id: 'hosts-file.access', status: 'ok', summary: `${target} is readable and writable` })
    } catch (e) {
      const code = errno(e)
      if (code === 'ENOENT') {
        checks.push({ id: 'hosts-file.access', status: 'warn', summary: `${target} does not exist; ngrokd will create it`, hint: `check that ${this.path} is the hosts file this system reads` })
      } else {
        checks.push({
          id: 'hosts-file.access',
          status: 'fail',
          summary: `cannot read and write ${target}: ${code ?? String(e)}`,
          hint: code === 'EROFS' ? `${target} is on a read-only file system; choose another name resolver` : 'run ngrokd as root (sudo)',
          code: code === 'EACCES' || code === 'EPERM' ? 'NGROKD_ERR_PERMISSION' : 'NGROKD_ERR_HOSTS_FILE',
        })
      }
    }
    if (text !== undefined) {
      const info = parseHostsBlock(text)
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
      checks.push({
        id: 'hosts-file.interrupted-write',
        status: 'warn',
        summary: `an in-place write of the hosts file was cut off (${this.inflightPath})`,
        hint: `ngrokd restores the file from ${this.backupPath} when it next starts`,
      })
    }
    return checks
  }

  /** The file to edit: the symlink target when `path` is a symlink. */
  private async target(): Promise<string> {
    try {
      return await realpath(this.path)
    } catch {
      return this.path
    }
  }

  private async read(target: string): Promise<{ text: string; stats?: Stats }> {
    try {
      const stats = await stat(target)
      return { text: await readFile(target, 'utf8'), stats }
    } catch (e) {
      if (errno(e) === 'ENOENT') return { text: '' }
      throw fileError(e, 'read', target)
    }
  }

  private async write(target: string, text: string, original: string, stats: Stats | undefined): Promise<void> {
    if (!this.inPlace) {
      try {
        await this.replaceFile(target, text, { mode: stats ? stats.mode & 0o7777 : 0o644 })
        if (stats) await this.keepOwner(target, stats)
        return
      } catch (e) {
        const code = errno(e)
        // EBUSY/EXDEV: the file is a bind mount (Docker). EACCES/EPERM/EROFS on the temp file: the
        // directory is not ours to write but the file may be (a file bind-mounted for us).
        const fileItselfWritable = ['EACCES', 'EPERM', 'EROFS'].includes(code ?? '') && (await isWritable(target))
        if (code !== 'EBUSY' && code !== 'EXDEV' && !fileItselfWritable) throw fileError(e, 'write', target)
        this.inPlace = true
        this.logger.info(
          { path: target, code },
          `hosts-file: ${target} cannot be replaced by rename (${code}; a bind mount?), rewriting it in place with a backup in ${this.stateDir}`,
        )
      }
    }
    await this.writeInPlace(target, text, original)
  }

  /** Backup + marker first, then the real file; the marker goes only once the file is complete. */
  private async writeInPlace(target: string, text: string, original: string): Promise<void> {
    try {
      await mkdir(this.stateDir, { recursive: true, mode: 0o700 })
      await writeFileAtomic(this.backupPath, original, { mode: 0o600 })
      await writeFileAtomic(this.inflightPath, JSON.stringify({ path: target, startedAt: new Date().toISOString() }) + '\n', { mode: 0o600 })
    } catch (e) {
      throw new NgrokdError('NGROKD_ERR_STATE', `hosts-file: cannot save a backup in ${this.stateDir}: ${errno(e) ?? String(e)}`, {
        cause: e,
        hint: 'the state directory must be writable before the hosts file is rewritten in place',
      })
    }
    try {
      await overwrite(target, text)
    } catch (e) {
      // The marker stays: the next open() restores the backup.
      throw fileError(e, 'write', target)
    }
    await this.clearInflight()
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

  /** Restores the hosts file after a cut-off in-place write. */
  private async recover(): Promise<void> {
    try {
      await mkdir(this.stateDir, { recursive: true, mode: 0o700 })
    } catch (e) {
      throw new NgrokdError('NGROKD_ERR_STATE', `hosts-file: cannot create ${this.stateDir}: ${errno(e) ?? String(e)}`, { cause: e })
    }
    let marker: string
    try {
      marker = await readFile(this.inflightPath, 'utf8')
    } catch (e) {
      if (errno(e) === 'ENOENT') return
      throw new NgrokdError('NGROKD_ERR_STATE', `hosts-file: cannot read ${this.inflightPath}: ${errno(e) ?? String(e)}`, { cause: e })
    }
    let path = await this.target()
    try {
      const parsed = JSON.parse(marker) as { path?: unknown }
      if (typeof parsed.path === 'string' && isAbsolute(parsed.path)) path = parsed.path
    } catch {
      // written atomically, so unreadable only if edited by hand: fall back to the configured file
    }
    let backup: string
    try {
      backup = await readFile(this.backupPath, 'utf8')
    } catch (e) {
      this.logger.error(
        { path, backup: this.backupPath },
        `hosts-file: a write of ${path} was cut off but ${this.backupPath} cannot be read (${errno(e) ?? String(e)}); check ${path} by hand`,
      )
      await this.clearInflight()
      return
    }
    try {
      await overwrite(path, backup)
    } catch (e) {
      throw fileError(e, 'restore', path)
    }
    await this.clearInflight()
    this.logger.warn({ path, backup: this.backupPath }, `hosts-file: restored ${path} from ${this.backupPath} after an interrupted write`)
  }

  private async keepOwner(target: string, before: Stats): Promise<void> {
    const after = await stat(target)
    if (after.uid === before.uid && after.gid === before.gid) return
    try {
      await chown(target, before.uid, before.gid)
    } catch (e) {
      this.logger.warn({ path: target, uid: before.uid, gid: before.gid }, `hosts-file: cannot give ${target} back to its owner: ${errno(e) ?? String(e)}`)
    }
  }

  private warnConflicts(target: string, conflicts: string[]): void {
    for (const hostname of conflicts) {
      if (this.warned.has(hostname)) continue
      this.logger.warn({ path: target, hostname }, `hosts-file: a line outside the ngrokd block of ${target} also names ${hostname}; programs may resolve that address instead`)
    }
    this.warned = new Set(conflicts)
  }

  private serialised<T>(fn: () => Promise<T>): Promise<T> {
    const turn = this.queue.catch(() => {}).then(fn)
    this.queue = turn
    return turn
  }
}

/** Writes `text` over the start of `path`, cuts it to length and fsyncs; the inode stays the same. */
async function overwrite(path: string, text: string): Promise<void> {
  const data = Buffer.from(text, 'utf8')
  const handle = await open(path, 'r+').catch(async (e: unknown) => {
    if (errno(e) !== 'ENOENT') throw e
    await mkdir(dirname(path), { recursive: true })
    return open(path, 'w', 0o644)
  })
  try {
    let done = 0
    while (done < data.length) {
      const { bytesWritten } = await handle.write(data, done, data.length - done, done)
      done += bytesWritten
    }
    await handle.truncate(data.length)
    await handle.sync()
  } finally {
    await handle.close()
  }
}


function checkAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new NgrokdError('NGROKD_ERR_ABORTED', `hosts-file: ${what} aborted`, { cause: signal.reason })
}

function fileError(e: unknown, verb: string, path: string): NgrokdError {
  const code = errno(e)
  if (code === 'EACCES' || code === 'EPERM') return new PermissionError(`hosts-file: cannot ${verb} ${path}: ${code}`, { cause: e })
  return new NgrokdError('NGROKD_ERR_HOSTS_FILE', `hosts-file: cannot ${verb} ${path}: ${code ?? String(e)}`, {
    cause: e,
    hint: code === 'EROFS' ? `${path} is on a read-only file system; choose another name resolver` : `check ${path} and the disk it is on`,
  })
}

async function isWritable(path: string): Promise<boolean> {
  try {
    await access(path, constants.W_OK)
    return true
  } catch {
    return false
  }
}
