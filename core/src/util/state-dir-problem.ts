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
export function stateDirProblem(stateDir: string, cause: unknown): StateDirProblem | undefined {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code
  // a state dir refused while the daemon runs (state-dir-guard.ts): its message says which and why
  if (code === 'NGROKD_ERR_PATH_UNTRUSTED') return { code: 'NGROKD_ERR_STATE', why: (cause as Error).message, hint: (cause as { hint?: string }).hint ?? `remove ${stateDir}` }
  if (code === 'EACCES' || code === 'EPERM') return { code: 'NGROKD_ERR_PERMISSION', why: code, hint: 'run ngrokd as root (sudo), or set state_dir to a directory you own' }
  // root's or not, nothing is written there: a privilege is not the fix
  if (code === 'EROFS') return { code: 'NGROKD_ERR_STATE', why: 'its file system is read-only (EROFS)', hint: `remount the file system of ${stateDir} read-write, or set state_dir to a directory on a writable one` }
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return {
      code: 'NGROKD_ERR_STATE',
      why: `${code === 'ENOSPC' ? 'no space left on its device' : 'its disk quota is used up'} (${code})`,
      hint: `free space on the file system of ${stateDir} (df -h ${stateDir}), or set state_dir to a directory on another`,
    }
  }
  return undefined
}
