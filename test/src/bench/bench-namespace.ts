import { spawn, spawnSync } from 'node:child_process'
import { readlinkSync } from 'node:fs'
import { constants } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { siblingScript } from './sibling-script.js'

/** Set by the outer run for the inner one: the outer's `readlink /proc/self/ns/net`. */
const HOST_NETNS_ENV = 'NGROKD_BENCH_HOST_NETNS'

/** Where the bench runs: in a fresh private network + mount namespace of its own, or unprivileged outside. */
export type BenchPlace =
  | { kind: 'namespace'; /** The namespace it was started from; netlink-apply-bench refuses to run there. */ hostNetns: string }
  | { kind: 'outer' }
  | { kind: 'unprivileged'; reason: string }

const hasCommand = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0

/**
 * Everything privileged happens in a namespace made for this run alone (lo up, a private copy of
 * /etc/hosts bind-mounted over the real path, by test/scripts/in-netns.sh), never on the machine's
 * own interfaces or hosts file, and never in a namespace another test already uses.
 */
export function benchPlace(): BenchPlace {
  const host = process.env[HOST_NETNS_ENV]
  if (host) {
    const here = readlinkSync('/proc/self/ns/net')
    if (process.env.NGROKD_TEST_NETNS !== '1' || here === host) {
      throw new Error(`bench: ${HOST_NETNS_ENV} is set but this is not a fresh namespace (${here}); start the bench without it`)
    }
    return { kind: 'namespace', hostNetns: host }
  }
  if (process.platform !== 'linux') return { kind: 'unprivileged', reason: `needs Linux network namespaces (this is ${process.platform})` }
  if (process.getuid?.() !== 0) return { kind: 'unprivileged', reason: 'needs root for a private network + mount namespace (unshare), netlink and /etc/hosts' }
  const missing = ['unshare', 'ip'].filter((c) => !hasCommand(c))
  if (missing.length > 0) return { kind: 'unprivileged', reason: `needs ${missing.join(' and ')} (util-linux, iproute2)` }
  return { kind: 'outer' }
}

/** Runs this bench again inside a fresh namespace with the same arguments; resolves with its exit code. */
export function rerunInNamespace(argv: string[]): Promise<number> {
  const script = join(dirname(fileURLToPath(import.meta.url)), '../../scripts/in-netns.sh')
  const { args } = siblingScript(import.meta.url, 'run-bench')
  const env: NodeJS.ProcessEnv = { ...process.env, [HOST_NETNS_ENV]: readlinkSync('/proc/self/ns/net') }
  delete env.NGROKD_TEST_NETNS // in-netns.sh sets it again inside the fresh namespace it makes
  const child = spawn('sh', [script, process.execPath, ...args, ...argv], { stdio: 'inherit', env })
  const forward = (signal: NodeJS.Signals) => child.kill(signal)
  process.on('SIGINT', forward)
  process.on('SIGTERM', forward)
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      process.off('SIGINT', forward)
      process.off('SIGTERM', forward)
      resolve(code ?? 128 + (signal ? constants.signals[signal] : 0))
    })
  })
}
