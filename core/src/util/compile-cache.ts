import { mkdirSync, statSync } from 'node:fs'
import module from 'node:module'
import { homedir } from 'node:os'
import { nearestExisting } from './nearest-existing.js'
import { join } from 'node:path'

/**
 * Turns on Node's compile cache (Node 22.1+; Node 20 has none and this does nothing): the CLI's and
 * daemon's code is compiled once and reused by the next start (measured: loading the daemon 15–25 %
 * faster on Node 24). The cache is code that will run, so it lives where only this user can write:
 * `$XDG_CACHE_HOME/ngrokd` or `~/.cache/ngrokd`, made 0700, used only when it belongs to this user
 * and nobody else may write it — never Node's default under the shared temp directory. As root the
 * whole path must pass the trusted-path rule, and nothing is made in a folder another user may change
 * (a HOME kept by `sudo -E` is that user's). Off with NODE_DISABLE_COMPILE_CACHE=1, as Node documents.
 * Await it before importing the rest.
 */
export async function enableCompileCache(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const enable = (module as { enableCompileCache?: (dir: string) => { status: number; directory?: string } }).enableCompileCache
  if (!enable || env.NODE_DISABLE_COMPILE_CACHE) return undefined
  const dir = join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'ngrokd', 'compile-cache')
  try {
    // loaded only as root: what is imported before the cache is on is compiled without it
    const trusted = process.platform !== 'win32' && process.getuid?.() === 0 ? await import('./trusted-path.js') : undefined
    const asRoot = trusted?.runsAsRoot() ?? false
    if (asRoot) await trusted!.assertTrustedPath(nearestExisting(dir), { what: 'compile cache folder' })
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const st = statSync(dir)
    const uid = process.getuid?.()
    if ((uid !== undefined && st.uid !== uid) || st.mode & 0o022) return undefined
    return enable(asRoot ? await trusted!.assertTrustedPath(dir, { what: 'compile cache folder' }) : dir).directory
  } catch {
    return undefined // a read-only home, or as root one that is another user's: start without the cache
  }
}
