import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { outsiderEnv } from './outsider-env.js'

const exec = promisify(execFile)

/** Safety net for one npm command (default); offline installs of this size take a few seconds. */
const NPM_TIMEOUT_MS = 120_000

/** Quiet, and nothing that would reach for the network on its own (update check, audit, funding). */
const NPM_SETTINGS = { npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false', npm_config_loglevel: 'error' }

/**
 * Runs `npm <args>` in `cwd` and returns its stdout; a failure throws with npm's own error text.
 *
 * ```ts
 * const registry = (await runNpm(['config', 'get', 'registry'], { cwd })).trim()
 * ```
 */
export async function runNpm(args: readonly string[], { cwd, timeoutMs = NPM_TIMEOUT_MS }: { cwd: string; timeoutMs?: number }): Promise<string> {
  try {
    const { stdout } = await exec('npm', [...args], { cwd, env: { ...outsiderEnv(), ...NPM_SETTINGS }, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 })
    return stdout
  } catch (e) {
    const { stderr, stdout } = e as { stderr?: string; stdout?: string }
    throw new Error(`npm ${args.join(' ')} (in ${cwd}) failed: ${(e as Error).message}\n${stderr ?? ''}${stdout ?? ''}`)
  }
}
