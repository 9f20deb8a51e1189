import { mkdir } from 'node:fs/promises'
import { NgrokdError } from '../errors/ngrokd-error.js'
import { assertTrustedPath, runsAsRoot } from '../util/trusted-path.js'

/**
 * Creates `state_dir` (0700) when it is missing and, as root, refuses one that another user could
 * change: the client key, the registration and the hosts-file backups live there, and after a crash
 * a backup from it is put back over the hosts file, so whoever may write in it would choose what
 * root writes. Resolves with the directory's real path (as root) or `stateDir`.
 * @throws NgrokdError `NGROKD_ERR_PATH_UNTRUSTED` naming the directory (or the one above it), its owner, mode and fix.
 */
export async function prepareStateDir(stateDir: string): Promise<string> {
  try {
    await mkdir(stateDir, { recursive: true, mode: 0o700 })
  } catch (cause) {
    throw stateDirError(stateDir, cause)
  }
  return checkStateDirTrust(stateDir)
}

/** A failure to make or write in `state_dir` as a coded error with its fix, not Node's bare errno. */
export function stateDirError(stateDir: string, cause: unknown): unknown {
  const code = (cause as NodeJS.ErrnoException).code
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new NgrokdError('NGROKD_ERR_PERMISSION', `state_dir ${stateDir} cannot be created or written: ${code}`, {
      cause,
      hint: 'run ngrokd as root (sudo), or set state_dir to a directory you own',
    })
  }
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new NgrokdError('NGROKD_ERR_STATE', `state_dir ${stateDir} cannot be written: ${code === 'ENOSPC' ? 'no space left on its device' : 'its disk quota is used up'} (${code})`, {
      cause,
      hint: `free space on the file system of ${stateDir} (df -h ${stateDir}), or set state_dir to a directory on another`,
    })
  }
  if (code === 'EEXIST' || code === 'ENOTDIR') {
    return new NgrokdError('NGROKD_ERR_STATE', `state_dir ${stateDir} is not a directory (${code}: it, or a path above it, is a file)`, {
      cause,
      hint: 'set state_dir to a directory (ngrokd creates a missing one)',
    })
  }
  return cause
}

/** The rule of {@link prepareStateDir} alone, for a directory that exists (doctor, which creates nothing). */
export function checkStateDirTrust(stateDir: string): Promise<string> {
  return runsAsRoot() ? assertTrustedPath(stateDir, { what: 'state directory' }) : Promise.resolve(stateDir)
}
