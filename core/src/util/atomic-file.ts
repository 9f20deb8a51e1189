import { closeSync, fchmodSync, fchownSync, fsyncSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { lstat, mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises'
import { dirname, basename, join } from 'node:path'
import { randomBytes } from 'node:crypto'

export interface AtomicWriteOptions {
  /** File mode of the new file, e.g. 0o600 for keys. Applied before any byte is written. */
  mode?: number
  /** Owner of the new file, set before it is renamed into place (needs the privilege to chown). */
  owner?: { uid: number; gid: number }
  /**
   * Where the temp file is made; default beside `path`. Must be on the same file system. For
   * folders whose every file is read as configuration (macOS's /etc/resolver).
   */
  tempDir?: string
  /**
   * Mode of the folders made for `path` when they are missing; default 0o700, as a state dir is made (prepareStateDir):
   * what is written is most often state, and a folder made wider would let others read it. A system folder others
   * read (macOS's /etc/resolver) passes 0o755.
   */
  dirMode?: number
}

/** A complete, fsync'd copy of the new content beside the file it is to replace. */
export interface StagedFile {
  /** `.<name>.<pid>.<8 hex digits>.tmp` in the directory of the file. */
  readonly temp: string
  /** Removes the temp file (when it is not used after all); errors are ignored. */
  discard(): Promise<void>
}

/**
 * `.<name>.<pid>.<random>.tmp`: the temp file of a write to `<name>` by process `pid`. The pid lets
 * {@link removeStaleTempFiles} tell a file left by a killed writer from one being written now.
 */
const TEMP_NAME = /^\.(.+)\.(\d+)\.([0-9a-f]{8})\.tmp$/

/** A new temp file name for a write to `path` ({@link TEMP_NAME}), in `tempDir` or beside `path`. */
export function tempPathFor(path: string, tempDir = dirname(path)): string {
  return join(tempDir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
}

/**
 * Writes `data` to a new temp file beside `path` (mode and owner set first, then the bytes, then
 * fsync), for the caller to rename over `path` when it is ready. The temp file is removed if writing fails.
 */
export async function stageFile(path: string, data: string | Uint8Array, { mode = 0o644, owner, tempDir, dirMode = 0o700 }: AtomicWriteOptions = {}): Promise<StagedFile> {
  const dir = dirname(path)
  await mkdir(dir, { recursive: true, mode: dirMode })
  const temp = tempPathFor(path, tempDir)
  const discard = () => unlink(temp).catch(() => {})
  const handle = await open(temp, 'wx', mode)
  try {
    await handle.chmod(mode) // the umask may have narrowed it
    if (owner) await handle.chown(owner.uid, owner.gid)
    await handle.writeFile(data)
    await handle.sync()
  } catch (e) {
    await handle.close().catch(() => {})
    await discard()
    throw e
  }
  await handle.close()
  return { temp, discard }
}

/**
 * Replaces `path` with `data` so that a reader or a crash sees either the old or the new file,
 * never a mix: write a temp file beside it, fsync, rename over, fsync the directory.
 * Throws the rename error untouched (EBUSY on a bind-mounted file is the caller's to handle).
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const staged = await stageFile(path, data, options)
  try {
    await rename(staged.temp, path)
  } catch (e) {
    await staged.discard()
    throw e
  }
  await fsyncDir(dirname(path))
}

/**
 * {@link writeFileAtomic} in synchronous system calls only, for code that must not wait on libuv's
 * thread pool (e.g. while holding a lease that makes other opens of a file wait).
 */
export function writeFileAtomicSync(path: string, data: Uint8Array, { mode = 0o644, owner, tempDir, dirMode = 0o700 }: AtomicWriteOptions = {}): void {
  const dir = dirname(path)
  mkdirSync(dir, { recursive: true, mode: dirMode })
  const temp = tempPathFor(path, tempDir)
  const fd = openSync(temp, 'wx', mode)
  try {
    try {
      fchmodSync(fd, mode)
      if (owner) fchownSync(fd, owner.uid, owner.gid)
      for (let done = 0; done < data.length; ) done += writeSync(fd, data, done, data.length - done)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(temp, path)
  } catch (e) {
    try {
      unlinkSync(temp)
    } catch {
      // never created, or renamed already
    }
    throw e
  }
  const dirFd = openSync(dir, 'r')
  try {
    fsyncSync(dirFd)
  } catch {
    // some file systems refuse fsync on directories; the rename itself is still atomic
  } finally {
    closeSync(dirFd)
  }
}

/**
 * Removes the temp files that writes to `path` by {@link stageFile} left behind when their process
 * was killed: only regular files named `.<name of path>.<pid>.<8 hex digits>.tmp`, and only when no
 * process `pid` is alive (a live pid, even one reused by another program, keeps its file). Returns
 * the paths removed.
 */
export function removeStaleTempFiles(path: string): Promise<string[]> {
  const name = basename(path)
  return removeDeadTemps(dirname(path), (target) => target === name)
}

/** The same for the temp files of every file in `dir` (a state directory, which is ngrokd's alone). */
export function removeStaleTempFilesIn(dir: string): Promise<string[]> {
  return removeDeadTemps(dir, () => true)
}

async function removeDeadTemps(dir: string, forTarget: (name: string) => boolean): Promise<string[]> {
  let entries: string[]
  try {
    entries = await readdir(dir)
  } catch {
    return []
  }
  const removed: string[] = []
  for (const entry of entries) {
    const m = TEMP_NAME.exec(entry)
    if (!m || !forTarget(m[1]!) || isProcessAlive(Number(m[2]))) continue
    const temp = join(dir, entry)
    try {
      if (!(await lstat(temp)).isFile()) continue
      await unlink(temp)
      removed.push(temp)
    } catch {
      // gone already, or not ours to remove
    }
  }
  return removed
}

/** True when a process with this pid exists (also one of another user: EPERM). */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** fsyncs a directory so that a rename in it survives a power cut. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } catch {
    // some file systems refuse fsync on directories; the rename itself is still atomic
  } finally {
    await handle.close()
  }
}

/** True when something exists at `path` (any type). */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch {
    return false
  }
}

/**
 * Where a component keeps its state: a file, or a state directory (then `<stateDir>/<default name>`).
 * Shared by the components that persist a stable mapping (allocations, network ports).
 */
export type StateFileLocation =
  | { /** JSON state file; its directory is created if missing. */ stateFile: string; stateDir?: undefined }
  | { /** The state directory; the file gets the component's default name. */ stateDir: string; stateFile?: undefined }
