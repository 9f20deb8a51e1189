import { statSync } from 'node:fs'
import type { DaemonConfig } from './daemon-config.js'
import { sameDaemonFlags } from './load-config.js'
import { nearestExisting } from '../util/nearest-existing.js'

/**
 * The command line a hint gives for acting on the daemon of this config (`ngrokd set-api-key --config FILE`): the flags
 * that reach it ({@link sameDaemonFlags}), under sudo when its state is root's — its `state_dir`, or the nearest folder
 * above it that exists, is owned by root (`/var/lib/ngrokd`) — and not for a user's own daemon with its state in
 * their home, which sudo would send to root's config and state instead. Windows has no sudo.
 */
export function daemonCommandLine(command: string, config: Pick<DaemonConfig, 'instance' | 'stateDir'>, configFile: string | undefined, platform: NodeJS.Platform = process.platform): string {
  return `${platform !== 'win32' && stateIsRoots(config.stateDir) ? 'sudo ' : ''}ngrokd ${command}${sameDaemonFlags(config.instance, configFile)}`
}

function stateIsRoots(stateDir: string): boolean {
  // not there (or in a folder this user may not search): the folder above decides
  return (statSync(nearestExisting(stateDir), { throwIfNoEntry: false })?.uid ?? 0) === 0
}
