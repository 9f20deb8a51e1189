import { dirname } from 'node:path'
import type { Logger } from '../contracts/logger.js'
import { NgrokdError } from '../errors/ngrokd-error.js'
import type { NameResolver } from '../contracts/name-resolver.js'
import { HostsFileNameResolver } from './hosts-file-name-resolver.js'
import { MacosHostsFileNameResolver } from './macos-hosts.js'
import { WindowsHostsFileNameResolver, windowsHostsPath } from './windows-hosts.js'
import { assertTrustedPathOrDir, runsAsRoot } from '../util/trusted-path.js'

/** The `names.hosts_file` default of the configuration: the POSIX path, replaced on Windows by its own. */
export const POSIX_HOSTS_FILE = '/etc/hosts'

export interface PlatformHostsFileOptions {
  /** `names.hosts_file`; the POSIX default means "this OS's hosts file" (on Windows, under %SystemRoot%). */
  path: string
  stateDir: string
  /** `instance` of the config: a named instance edits its own block. */
  instance?: string
  logger: Logger
  platform?: NodeJS.Platform
  env?: NodeJS.ProcessEnv
}

/**
 * The hosts-file name resolver for this OS, the one home of that choice (daemon and doctor):
 * Linux and others edit the file; macOS also flushes the resolver cache after each change;
 * Windows finds the file under %SystemRoot%, keeps CRLF, retries while the file is held and flushes
 * the DNS client's cache.
 */
export function createHostsFileNameResolver({ path, stateDir, instance, logger, platform = process.platform, env = process.env }: PlatformHostsFileOptions): NameResolver {
  const block = instance ? { instance } : {}
  if (platform === 'win32') return new WindowsHostsFileNameResolver({ stateDir, logger, env, ...block, path: platformHostsPath(path, platform, env) })
  if (platform === 'darwin') return new MacosHostsFileNameResolver({ path, stateDir, logger, ...block })
  return new HostsFileNameResolver({ path, stateDir, logger, ...block })
}

/** The file `names.hosts_file` names on this OS: on Windows its POSIX default is the file under %SystemRoot%. */
export function platformHostsPath(path: string, platform: NodeJS.Platform = process.platform, env: NodeJS.ProcessEnv = process.env): string {
  return platform === 'win32' && path === POSIX_HOSTS_FILE ? windowsHostsPath(env) : path
}

/** The daemon's hosts-file resolver for `config`: `names.hosts_file`, `state_dir`, and a named instance's own block. */
export function hostsFileResolverFor(config: { names: { hostsFile: string }; stateDir: string; instance?: string }, logger: Logger): NameResolver {
  return createHostsFileNameResolver({ path: config.names.hostsFile, stateDir: config.stateDir, ...(config.instance ? { instance: config.instance } : {}), logger })
}

/**
 * As root, refuses a `names.hosts_file` another user could change or swap for a link (root would rewrite
 * whatever file it named); a missing one is judged by its directory, and one whose directory is missing is an
 * error of its own. Run before the daemon or cleanup touch it.
 * @throws NgrokdError `NGROKD_ERR_PATH_UNTRUSTED`, `NGROKD_ERR_HOSTS_FILE`
 */
export async function assertTrustedHostsFile(config: { names: { hostsFile: string } }): Promise<void> {
  if (!runsAsRoot()) return
  // the file the resolver will write, not C:\etc\hosts, which any Windows user may create
  const path = platformHostsPath(config.names.hostsFile)
  await assertTrustedPathOrDir(path, { what: 'hosts file (names.hosts_file)' }).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e
    throw new NgrokdError('NGROKD_ERR_HOSTS_FILE', `hosts file ${path}: its folder ${dirname(path)} does not exist`, {
      hint: 'set names.hosts_file to the hosts file this system reads (/etc/hosts), or create its folder',
    })
  })
}
