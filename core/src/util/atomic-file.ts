import { open, rename, stat, unlink, mkdir } from 'node:fs/promises'
import { dirname, basename, join } from 'node:path'
import { randomBytes } from 'node:crypto'

export interface AtomicWriteOptions {
  /** File mode of the new file, e.g. 0o600 for keys. Applied before any byte is written. */
  mode?: number
  /**
   * Where the temp file is made; default beside `path`. Must be on the same file system. For
   * folders whose every file is read as configuration (macOS's /etc/resolver).
   */
  tempDir?: string
}

/**
 * Replaces `path` with `data` so that a reader or a crash sees either the old or the new file,
 * never a mix: write a temp file beside it, fsync, rename over, fsync the directory.
 * Throws the rename error untouched (EBUSY on a bind-mounted file is the caller's to handle).
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, { mode = 0o644, tempDir }: AtomicWriteOptions = {}): Promise<void> {
  const dir = dirname(path)
  await mkdir(dir, { recursive: true })
  const temp = join(tempDir ?? dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  const handle = await open(temp, 'wx', mode)
  try {
    await handle.chmod(mode) // the umask may have narrowed or widened nothing, but be explicit
    await handle.writeFile(data)
    await handle.sync()
  } catch (e) {
    await handle.close().catch(() => {})
    await unlink(temp).catch(() => {})
    throw e
  }
  await handle.close()
  try {
    await rename(temp, path)
  } catch (e) {
    await unlink(temp).catch(() => {})
    throw e
  }
  await fsyncDir(dir)
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
