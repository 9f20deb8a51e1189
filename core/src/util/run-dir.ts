import { readlinkSync } from 'node:fs'
import { win32 } from 'node:path'
import { windowsNgrokdDir } from '../config/platform-defaults.js'
import { runsAsRoot } from './trusted-path.js'

export interface RunDirOptions {
  /** Default `process.platform`. */
  platform?: NodeJS.Platform
  /** Running as root, elevated on Windows. Default {@link runsAsRoot}. */
  elevated?: boolean
  /** Where `ProgramData` is read on Windows. Default `process.env`. */
  env?: NodeJS.ProcessEnv
}

/**
 * Root's folder for the locks of every ngrokd on the machine (its interface, hosts block and subnet), as root; none
 * otherwise (a user's daemon has only its state dir's lock):
 * - Linux: `/run/ngrokd` (a tmpfs: gone at a reboot, as the daemons holding the locks are);
 * - macOS: `/var/db/ngrokd/run` (`/var/db` is root's alone; `/var/run` is writable by the group `daemon`, see
 *   platform-defaults.ts), beside the control socket;
 * - Windows, elevated: `%ProgramData%\ngrokd\run`, created with the state dir's protected DACL (instance-lock.ts).
 */
export function defaultRunDir({ platform = process.platform, elevated, env = process.env }: RunDirOptions = {}): string | null {
  if (!(elevated ?? runsAsRoot())) return null
  if (platform === 'linux') return '/run/ngrokd'
  if (platform === 'darwin') return '/var/db/ngrokd/run'
  if (platform === 'win32') return win32.join(windowsNgrokdDir(env), 'run')
  return null
}

/**
 * A namespace's inode (`net:[4026531840]` → `4026531840`): interface names are per network
 * namespace, what a path names is per mount namespace.
 */
export function namespaceId(kind: 'net' | 'mnt'): string {
  try {
    return readlinkSync(`/proc/self/ns/${kind}`).replace(/\D/g, '')
  } catch {
    return 'host'
  }
}
