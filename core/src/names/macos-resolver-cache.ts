import { execFile } from 'node:child_process'

/** Runs a program with arguments (no shell) and resolves when it exited 0. */
export type CommandRunner = (file: string, args: readonly string[], options: { signal?: AbortSignal }) => Promise<void>

/**
 * What flushes the macOS resolver cache after /etc/hosts changed, as Apple documents it ("Reset the
 * DNS cache in macOS": `sudo dscacheutil -flushcache; sudo killall -HUP mDNSResponder`). Absolute
 * paths: ngrokd runs as root and must not take these from PATH.
 */
export const MACOS_RESOLVER_CACHE_FLUSH: ReadonlyArray<readonly [file: string, args: readonly string[]]> = [
  ['/usr/bin/dscacheutil', ['-flushcache']],
  ['/usr/bin/killall', ['-HUP', 'mDNSResponder']],
]

export interface CommandOutcome {
  /** The command as one would type it, e.g. `/usr/bin/killall -HUP mDNSResponder`. */
  command: string
  ok: boolean
  /** Why it failed (the exit code or the error), when it did. */
  error?: string
}

/** execFile without a shell, killed after 10 s (a hung resolver must not hold the reconcile). */
export const execFileRunner: CommandRunner = (file, args, { signal }) =>
  new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 10_000, ...(signal ? { signal } : {}) }, (error, _stdout, stderr) => {
      if (!error) return resolve()
      const detail = String(stderr).trim()
      reject(new Error(`${error.message.split('\n')[0]}${detail ? `: ${detail}` : ''}`))
    })
  })

/**
 * Makes macOS forget cached names so that a changed /etc/hosts takes effect at once. Runs both
 * commands even when the first fails, and reports each: a failed flush only delays the change
 * until the cached entries expire, so the caller logs it and goes on.
 *
 * ```ts
 * const outcomes = await flushMacosResolverCache()
 * for (const o of outcomes) if (!o.ok) logger.warn(`${o.command} failed: ${o.error}`)
 * ```
 */
export async function flushMacosResolverCache({ run = execFileRunner, signal }: { run?: CommandRunner; signal?: AbortSignal } = {}): Promise<CommandOutcome[]> {
  const outcomes: CommandOutcome[] = []
  for (const [file, args] of MACOS_RESOLVER_CACHE_FLUSH) {
    const command = [file, ...args].join(' ')
    try {
      await run(file, args, signal ? { signal } : {})
      outcomes.push({ command, ok: true })
    } catch (e) {
      outcomes.push({ command, ok: false, error: (e as Error).message })
    }
  }
  return outcomes
}
