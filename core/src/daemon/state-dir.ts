import { mkdir } from 'node:fs/promises'
import { assertTrustedPath, runsAsRoot } from '../util/trusted-path.js'

/**
 * Creates `state_dir` (0700) when it is missing and, as root, refuses one that another user could
 * change: the client key, the registration and the hosts-file backups live there, and after a crash
 * a backup from it is put back over the hosts file, so whoever may write in it would choose what
 * root writes. Resolves with the directory's real path (as root) or `stateDir`.
 * @throws NgrokdError `NGROKD_ERR_PATH_UNTRUSTED` naming the directory (or the one above it), its owner, mode and fix.
 */
export async function prepareStateDir(stateDir: string): Promise<string> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 })
  return checkStateDirTrust(stateDir)
}

/** The rule of {@link prepareStateDir} alone, for a directory that exists (doctor, which creates nothing). */
export function checkStateDirTrust(stateDir: string): Promise<string> {
  return runsAsRoot() ? assertTrustedPath(stateDir, { what: 'state directory' }) : Promise.resolve(stateDir)
}
