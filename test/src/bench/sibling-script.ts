import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'

/**
 * The command line that runs `name` (a module beside `fromUrl`) in a child Node process: the
 * compiled `.js` under dist, or the `.ts` source through tsx when the caller itself runs from source.
 *
 * ```ts
 * const { args } = siblingScript(import.meta.url, 'sim-host')
 * spawn(process.execPath, [...args, JSON.stringify(spec)])
 * ```
 */
export function siblingScript(fromUrl: string, name: string): { path: string; args: string[] } {
  const self = fileURLToPath(fromUrl)
  const fromSource = self.endsWith('.ts')
  const path = join(dirname(self), `${name}.${fromSource ? 'ts' : 'js'}`)
  return { path, args: fromSource ? ['--import', 'tsx', path] : [path] }
}
