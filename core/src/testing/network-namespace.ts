import { spawn, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { requires, type SkipReason } from './requires.js'

/** Set in the re-run process so that it knows it is inside. */
const INSIDE = 'NGROKD_TEST_NETNS'

/**
 * Runs the calling test file in a throwaway network and mount namespace (`unshare -n -m`), so a
 * privileged driver test can add links, addresses and listeners without touching the machine.
 * Call it at the top of the file, before any `describe`/`it`:
 *
 * ```ts
 * const netns = await enterNetworkNamespace(import.meta.url)
 * describe('linux-netlink: conformance', { skip: netns }, () => { … })
 * ```
 *
 * - Outside, with the means (Linux, root, `unshare`): re-runs this file with the same node flags,
 *   environment and stdio inside a new namespace, then exits with its exit code; it never returns.
 *   The runner sees the inner process's output as this file's.
 * - Inside: brings `lo` up and resolves `false` (run the tests).
 * - Without the means: resolves the reason, for the runner's skip option.
 */
export async function enterNetworkNamespace(moduleUrl: string): Promise<SkipReason> {
  if (process.env[INSIDE] === String(process.pid)) {
    const up = spawnSync('ip', ['link', 'set', 'lo', 'up'], { stdio: 'ignore' })
    return up.status === 0 ? false : 'could not bring lo up inside the network namespace (is `ip` installed?)'
  }
  const reason = requires.all(requires.networkNamespace(), requires.command('ip'))
  if (reason) return reason
  const file = fileURLToPath(moduleUrl)
  // `exec` keeps the pid, so the inner process can tell it is the one that was re-run
  const script = `export ${INSIDE}=$$; exec "$0" "$@"`
  const child = spawn('unshare', ['--net', '--mount', '--', 'sh', '-c', script, process.execPath, ...process.execArgv, file, ...process.argv.slice(2)], {
    stdio: 'inherit',
  })
  const code = await new Promise<number>((resolve) => {
    child.once('error', () => resolve(1))
    child.once('exit', (status, signal) => resolve(status ?? (signal ? 128 : 1)))
  })
  process.exit(code)
}
