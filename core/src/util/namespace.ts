import { spawnSync, spawn } from 'node:child_process'
import { constants } from 'node:os'
import { NgrokdError } from '../errors/ngrokd-error.js'

/**
 * How to make a private network + mount namespace here: as root, plain `unshare`; otherwise an
 * unprivileged user namespace where the kernel allows it. Returns the unshare arguments, or throws
 * a coded error saying that root is needed.
 */
export function privateNamespaceArgs(): string[] {
  const base = ['--net', '--mount', '--propagation', 'private']
  if (spawnSync('unshare', ['--version'], { stdio: 'ignore' }).error) {
    throw new NgrokdError('NGROKD_ERR_NAMESPACE', 'the unshare command (util-linux) is not installed', { hint: 'install util-linux (apt install util-linux)' })
  }
  if (process.getuid?.() === 0) return base
  const userns = ['--user', '--map-root-user', ...base]
  if (spawnSync('unshare', [...userns, 'true'], { stdio: 'ignore' }).status === 0) return userns
  throw new NgrokdError('NGROKD_ERR_NAMESPACE', 'cannot create a private network namespace: not root, and this kernel does not allow unprivileged user namespaces', {
    hint: 'run it with sudo, or allow user namespaces (sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces)',
  })
}

/**
 * Re-runs this process's command line inside a private namespace; SIGINT and SIGTERM to this process are passed on to
 * it. Resolves with its exit code (128 + the signal's number when a signal ended it).
 */
export function rerunInPrivateNamespace(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const child = spawn('unshare', [...privateNamespaceArgs(), '--', process.execPath, ...args], { stdio: 'inherit', env })
  // SIGINT and SIGTERM to this process are passed on (`kill -INT`, a harness's child.kill('SIGINT')); Ctrl-C at a
  // terminal then reaches the child twice, through the process group too, which the child must take as one stop
  const forward = (signal: NodeJS.Signals) => child.kill(signal)
  process.on('SIGINT', forward)
  process.on('SIGTERM', forward)
  return new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      process.off('SIGINT', forward)
      process.off('SIGTERM', forward)
      resolve(code ?? (signal ? 128 + constants.signals[signal] : 1))
    }),
  )
}

/** Runs a command and throws a readable error if it fails. */
export function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  if (r.error || r.status !== 0) {
    throw new NgrokdError('NGROKD_ERR_NAMESPACE', `${cmd} ${args.join(' ')} failed: ${r.error?.message ?? r.stderr.trim()}`)
  }
}
