import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository's root folder. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url))

/** The workspace folders of the root package.json (`dir` or `dir/*`), relative to the root. */
export function workspaces(): string[] {
  const root = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { workspaces: string[] }
  const dirs: string[] = []
  for (const w of root.workspaces) {
    if (!w.endsWith('/*')) dirs.push(w)
    else {
      const lock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, unknown> }
      const parent = w.slice(0, -2)
      for (const p of Object.keys(lock.packages)) if (dirname(p) === parent && !p.startsWith('node_modules/')) dirs.push(p)
    }
  }
  return [...new Set(dirs)]
}
