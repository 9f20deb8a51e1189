/**
 * For the children of the privileged hosts-file tests, which run as root under
 * `unshare --mount --propagation private`: nothing they mount is seen outside their process.
 */
import { execFileSync } from 'node:child_process'
import { openSync, closeSync, writeSync, readlinkSync, rmSync } from 'node:fs'
import type { Logger } from '../../contracts/logger.js'

/**
 * Refuses to go on unless this process's mount namespace differs from the parent's
 * (NGROKD_TEST_PARENT_MNTNS), so the machine's own /etc/hosts cannot be touched by mistake.
 */
export function enterPrivateMountNamespace(): void {
  const parentNs = process.env.NGROKD_TEST_PARENT_MNTNS
  const ownNs = readlinkSync('/proc/self/ns/mnt')
  if (!parentNs || parentNs === ownNs) throw new Error(`not in a private mount namespace (own ${ownNs}, parent ${parentNs ?? 'unset'})`)
  execFileSync('mount', ['--make-rprivate', '/'])
}

/**
 * Unmounts `mounted` (in this order; one not mounted is skipped) and removes `dir`: the mounts go with
 * the namespace, but a temp dir made under the machine's /tmp would stay behind.
 */
export function removeTempDir(dir: string, ...mounted: string[]): void {
  for (const target of mounted) {
    try {
      execFileSync('umount', ['--lazy', target], { stdio: 'ignore' })
    } catch {
      // not mounted (the scenario failed before mounting it)
    }
  }
  rmSync(dir, { recursive: true, force: true })
}

/** A tmpfs of `size` (e.g. `64k`) on `dir`: a small disk that is easy to fill. */
export function mountTmpfs(dir: string, size: string): void {
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir])
}

export function bindMount(source: string, target: string): void {
  execFileSync('mount', ['--bind', source, target])
}

/** Writes `file` until its file system is full (ENOSPC); returns the bytes written. */
export function fillUp(file: string): number {
  const fd = openSync(file, 'w')
  const chunk = Buffer.alloc(1024, 0x78)
  let total = 0
  try {
    for (;;) total += writeSync(fd, chunk)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e
  } finally {
    closeSync(fd)
  }
  return total
}

/** A logger that keeps `level: message` lines. */
export function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = []
  const log = (level: string) => (a: unknown, b?: string) => {
    lines.push(`${level}: ${typeof a === 'string' ? a : (b ?? '')}`)
  }
  const logger = { lines, trace: log('trace'), debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error'), fatal: log('fatal'), child: () => logger }
  return logger
}
