import { mkdir } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { NgrokdError, isNgrokdError } from '../errors/ngrokd-error.js'
import { nearestExisting } from '../util/nearest-existing.js'
import { stateDirProblem } from '../util/state-dir-problem.js'
import { assertTrustedPath, makeTrustedDirs, runsAsRoot } from '../util/trusted-path.js'
import { systemFileSecurity, type WindowsFileSecurity } from '../util/windows-security-ffi.js'

/**
 * The descriptor of every folder an elevated ngrokd creates for its state on Windows (the state dir, and
 * %ProgramData%\ngrokd above the default one): owner Administrators, a protected DACL (no ACE inherited from
 * %ProgramData%, which lets Users add files) giving SYSTEM and Administrators full control, inherited by all
 * inside (OI: files, CI: folders) — the 0700 of POSIX. sddl.h: O: owner, D:P protected DACL, FA FILE_ALL_ACCESS.
 */
export const WINDOWS_STATE_DIR_SDDL = 'O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)'

export interface PrepareStateDirOptions {
  /** Default `process.platform`. */
  platform?: NodeJS.Platform
  /** Running as root, elevated on Windows. Default {@link runsAsRoot}. */
  elevated?: boolean
  /** On Windows, how folders are created with their descriptor. Default the system's (windows-security-ffi.ts). */
  security?: () => Pick<WindowsFileSecurity, 'createDirectory'>
}

/**
 * Creates `state_dir` (0700) when it is missing and, as root, refuses one that another user could
 * change: the client key, the registration and the hosts-file backups live there, and after a crash
 * a backup from it is put back over the hosts file, so whoever may write in it would choose what
 * root writes. On Windows, elevated, each folder it creates gets {@link WINDOWS_STATE_DIR_SDDL}; as root (elevated)
 * the directory is then judged like any trusted path. Resolves with the directory's real path (as root) or `stateDir`.
 * @throws NgrokdError `NGROKD_ERR_PATH_UNTRUSTED` naming the directory (or the one above it), its owner, mode and fix.
 */
export async function prepareStateDir(stateDir: string, { platform = process.platform, elevated = runsAsRoot(), security = systemFileSecurity }: PrepareStateDirOptions = {}): Promise<string> {
  try {
    // Windows ignores the mode: an elevated ngrokd gives what it creates a DACL of its own; another's copy of
    // ngrokd, unelevated, keeps what it inherits, as a user's 0700 folder on POSIX is the user's. As root on POSIX
    // nothing is made through another user's link or in their folder (the check after it would refuse the result,
    // but root's folders would be made where they chose)
    if (platform === 'win32' && elevated) await makeProtectedDirectory(stateDir, security())
    else if (elevated) await makeTrustedDirs(stateDir, { what: 'state directory', mode: 0o700, platform })
    else await mkdir(stateDir, { recursive: true, mode: 0o700 })
  } catch (cause) {
    if (isNgrokdError(cause, 'NGROKD_ERR_PATH_UNTRUSTED')) throw cause
    throw stateDirError(stateDir, cause)
  }
  return elevated ? assertTrustedPath(stateDir, { what: 'state directory' }) : stateDir
}

/** A failure to make or write in `state_dir` as a coded error with its fix, not Node's bare errno. */
export function stateDirError(stateDir: string, cause: unknown): unknown {
  const code = (cause as NodeJS.ErrnoException).code
  const problem = stateDirProblem(stateDir, cause)
  if (problem) {
    const verb = problem.code === 'NGROKD_ERR_PERMISSION' ? 'created or written' : 'written'
    return new NgrokdError(problem.code, `state_dir ${stateDir} cannot be ${verb}: ${problem.why}`, { cause, hint: problem.hint })
  }
  if (code === 'ENOENT' && (cause as NodeJS.ErrnoException).syscall === 'mkdir') {
    // mkdir -p met a folder that takes no new ones, or one removed meanwhile
    return new NgrokdError('NGROKD_ERR_STATE', `state_dir ${stateDir} cannot be created (ENOENT: a folder above it takes no new folders, as /proc and /sys do, or was removed meanwhile)`, {
      cause,
      hint: 'set state_dir to a directory on a disk (the default is /var/lib/ngrokd)',
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

/**
 * `mkdir -p` of `dir` where every folder made is created with {@link WINDOWS_STATE_DIR_SDDL}, top down: no folder
 * exists for a moment with the descriptor it would inherit (another user could add a file to it then). A folder
 * that is already there is left as it is, to be judged by the trusted-path rule.
 */
export async function makeProtectedDirectory(dir: string, security: Pick<WindowsFileSecurity, 'createDirectory'>): Promise<void> {
  const existing = nearestExisting(dir)
  const missing: string[] = []
  for (let p = resolve(dir); p !== existing; p = dirname(p)) missing.unshift(p)
  for (const folder of missing) security.createDirectory(folder, WINDOWS_STATE_DIR_SDDL)
}
