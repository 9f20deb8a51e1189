import { NgrokdError } from '../errors/ngrokd-error.js'
import { refusedRootHint } from './privilege.js'
import { runsAsSystemdService } from './systemd-service.js'

/** Why a write in `state_dir` failed, by its errno, and the fix. */
export interface StateDirProblem {
  code: 'NGROKD_ERR_PERMISSION' | 'NGROKD_ERR_STATE'
  /** For a message: `EACCES`, `no space left on its device (ENOSPC)`. */
  why: string
  hint: string
}

/**
 * What a failed write in `state_dir` means and how to fix it, for the errnos that say (else undefined): the one home of
 * these hints, for `stateDirError` (daemon/state-dir.ts), the state files and the errors that name the file (the registration's).
 */
export function stateDirProblem(stateDir: string, cause: unknown, { asRoot = process.getuid?.() === 0 }: { asRoot?: boolean } = {}): StateDirProblem | undefined {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code
  // a state dir refused while the daemon runs (state-dir-guard.ts): its message says which and why
  if (code === 'NGROKD_ERR_PATH_UNTRUSTED') return { code: 'NGROKD_ERR_STATE', why: (cause as Error).message, hint: (cause as { hint?: string }).hint ?? `remove ${stateDir}` }
  if (code === 'EACCES' || code === 'EPERM') {
    // root is refused only by the attributes (chattr +i) or a security module: neither sudo nor ownership is the fix
    const hint = asRoot ? refusedRootHint(stateDir, { folder: true }) : 'run ngrokd as root (sudo), or set state_dir to a directory you own'
    return { code: 'NGROKD_ERR_PERMISSION', why: code, hint }
  }
  // root's or not, nothing is written there: a privilege is not the fix
  if (code === 'EROFS') {
    // a systemd service sees a read-only system but for the paths its unit was installed with
    const hint = runsAsSystemdService()
      ? `under the ngrokd service, only the paths it was installed with are writable (the unit's ReadWritePaths): after changing state_dir, run \`sudo ngrokd service install\` again; else remount the file system of ${stateDir} read-write`
      : `remount the file system of ${stateDir} read-write, or set state_dir to a directory on a writable one`
    return { code: 'NGROKD_ERR_STATE', why: 'its file system is read-only (EROFS)', hint }
  }
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return {
      code: 'NGROKD_ERR_STATE',
      why: `${code === 'ENOSPC' ? 'no space left on its device' : 'its disk quota is used up'} (${code})`,
      hint: `free space on the file system of ${stateDir} (df -h ${stateDir}), or set state_dir to a directory on another file system`,
    }
  }
  return undefined
}

/** What a state file that is not a plain file is, for {@link notAFileError}: `a symbolic link`, `a directory`, `not a regular file`. */
export function notAFileKind(st: { isSymbolicLink(): boolean; isDirectory(): boolean }): string {
  return st.isSymbolicLink() ? 'a symbolic link' : st.isDirectory() ? 'a directory' : 'not a regular file'
}

/**
 * A state file that is a link, a directory or a device (`what`, {@link notAFileKind}): ngrokd's own files are plain
 * files it writes itself, so the fix is to remove it; `then` says what ngrokd does without it. `owner` names the reader
 * in the message (`registration`, `allocator`).
 */
export function notAFileError(owner: string, path: string, what: string, then: string, cause?: unknown): NgrokdError {
  return new NgrokdError('NGROKD_ERR_STATE', `${owner}: ${path} is ${what}, not a file of ngrokd's`, { cause, hint: `remove it (rm -r ${path}); ${then}` })
}
