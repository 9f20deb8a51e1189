import { spawnSync, spawn } from 'node:child_process'
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

/** Re-runs this process's command line inside a private namespace; resolves with its exit code. */
export function rerunInPrivateNamespace(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const child = spawn('unshare', [...privateNamespaceArgs(), '--', process.execPath, ...args], { stdio: 'inherit', env })
  // Ctrl-C reaches the child through the terminal's process group; the parent just waits for it
  const ignore = () => {}
  process.on('SIGINT', ignore)
  process.on('SIGTERM', () => child.kill('SIGTERM'))
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 + 2 : 1))))
}

/** Runs a command and throws a readable error if it fails. */
export function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  if (r.error || r.status !== 0) {
    throw new NgrokdError('NGROKD_ERR_NAMESPACE', `${cmd} ${args.join(' ')} failed: ${r.error?.message ?? r.stderr.trim()}`)
  }
}
