import { sep } from 'node:path'
import { NgrokdError } from '../errors/ngrokd-error.js'
import { writeFileAtomic, type AtomicWriteOptions } from './atomic-file.js'

/**
 * The state dirs this process must not write in now, with why: one removed under a running daemon and made again by
 * another user (Daemon.keepStateDir refuses it until the daemon holds its lock there again, then saves its state
 * again). Root's files would land in a folder whose owner may rename, replace or delete them.
 */
const refused = new Map<string, string>()

/** No state file is written in `dir` (nor below it) until {@link acceptStateDir}: `why` says why, for the refusal. */
export function refuseStateDir(dir: string, why: string): void {
  refused.set(dir, why)
}

export function acceptStateDir(dir: string): void {
  refused.delete(dir)
}

/**
 * Writes a state file (atomically, 0600 unless `options` say otherwise) unless its folder is refused now: the one way
 * ngrokd writes in `state_dir`.
 * @throws NgrokdError `NGROKD_ERR_PATH_UNTRUSTED` in a refused state dir, naming it and why; else writeFileAtomic's error
 */
export async function writeStateFile(path: string, data: string | Uint8Array, options: AtomicWriteOptions = { mode: 0o600 }): Promise<void> {
  for (const [dir, why] of refused) {
    if (path === dir || path.startsWith(dir.endsWith(sep) ? dir : `${dir}${sep}`)) {
      throw new NgrokdError('NGROKD_ERR_PATH_UNTRUSTED', `state_dir ${dir} is refused (${why}): ${path} is not written there`, {
        hint: `remove ${dir} (another user's now) and the daemon makes it again, 0700, at its next poll with what it holds`,
      })
    }
  }
  await writeFileAtomic(path, data, options)
}
