import { win32 } from 'node:path'
import { runsAsRoot } from '../util/trusted-path.js'

/**
 * The one home of the defaults whose POSIX path means "this OS's place" (as `names.hosts_file`'s `/etc/hosts`
 * means the file under %SystemRoot% on Windows, names/platform-hosts-file.ts). On Windows a POSIX path resolves
 * against the drive root (`/etc/ngrokd/config.yml` → `C:\etc\ngrokd\config.yml`), where any Authenticated User may
 * create folders: another user could plant the config the LocalSystem service reads, and the state folder would
 * inherit Users' read. So on win32 both live under %ProgramData%\ngrokd, a folder ngrokd creates with a protected
 * DACL (state-dir.ts). A named instance's are derived from these as on POSIX (instance.ts): `NAME.yml` beside
 * `config.yml`, `state-NAME` beside `state`.
 */

/** The configuration file read when none is named or found (POSIX). */
export const POSIX_CONFIG_PATH = '/etc/ngrokd/config.yml'
/** `state_dir`'s default in config.schema.json (POSIX). */
export const POSIX_STATE_DIR = '/var/lib/ngrokd'
/** Where %ProgramData% is on a stock Windows, for an environment without it (KNOWNFOLDERID FOLDERID_ProgramData). */
const PROGRAM_DATA_FALLBACK = 'C:\\ProgramData'

export interface PlatformDefaultsOptions {
  /** Default `process.platform`. */
  platform?: NodeJS.Platform
  /** Where `ProgramData` is read on Windows. Default `process.env`. */
  env?: NodeJS.ProcessEnv
}

/**
 * `%ProgramData%\ngrokd`: ngrokd's machine-wide folder on Windows. `ProgramData` comes from the environment (a
 * service's is the machine's); one that is not an absolute path with a drive (`D:\ProgramData`) is not used, as a
 * relative one would resolve against the working directory.
 */
export function windowsNgrokdDir(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.ProgramData ?? env.PROGRAMDATA
  const programData = fromEnv && /^[A-Za-z]:[\\/]/.test(fromEnv) ? fromEnv : PROGRAM_DATA_FALLBACK
  return win32.join(programData, 'ngrokd')
}

/**
 * The default configuration file of this OS: `/etc/ngrokd/config.yml`, on Windows `%ProgramData%\ngrokd\config.yml`.
 *
 * ```ts
 * defaultConfigPath({ platform: 'win32', env: { ProgramData: 'D:\\ProgramData' } }) // 'D:\\ProgramData\\ngrokd\\config.yml'
 * ```
 */
export function defaultConfigPath({ platform = process.platform, env = process.env }: PlatformDefaultsOptions = {}): string {
  return platform === 'win32' ? win32.join(windowsNgrokdDir(env), 'config.yml') : POSIX_CONFIG_PATH
}

/** The default `state_dir` of this OS: `/var/lib/ngrokd`, on Windows `%ProgramData%\ngrokd\state`. */
export function defaultStateDir({ platform = process.platform, env = process.env }: PlatformDefaultsOptions = {}): string {
  return platform === 'win32' ? win32.join(windowsNgrokdDir(env), 'state') : POSIX_STATE_DIR
}

/** `control.socket`'s default in config.schema.json (Linux). */
export const POSIX_CONTROL_SOCKET = '/run/ngrokd/ngrokd.sock'

/**
 * The default `control.socket` of this OS: `/run/ngrokd/ngrokd.sock`; on macOS, which has no `/run` (its system volume
 * is read-only) and whose `/var/run` is writable by the group `daemon` (root:daemon 0775, which the trust rule of
 * assertTrustedPath refuses above the socket), `/var/db/ngrokd/ngrokd.sock` (`/var/db` is root's alone). On Windows
 * the pipe is named by the file name (`ngrokd`).
 */
export function defaultControlSocket({ platform = process.platform }: PlatformDefaultsOptions = {}): string {
  return platform === 'darwin' ? '/var/db/ngrokd/ngrokd.sock' : POSIX_CONTROL_SOCKET
}

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
 *   {@link defaultControlSocket}), beside the control socket;
 * - Windows, elevated: `%ProgramData%\ngrokd\run`, created with the state dir's protected DACL (instance-lock.ts).
 */
export function defaultRunDir({ platform = process.platform, elevated, env = process.env }: RunDirOptions = {}): string | null {
  if (!(elevated ?? runsAsRoot())) return null
  if (platform === 'linux') return '/run/ngrokd'
  if (platform === 'darwin') return '/var/db/ngrokd/run'
  if (platform === 'win32') return win32.join(windowsNgrokdDir(env), 'run')
  return null
}
