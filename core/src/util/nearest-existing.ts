import { existsSync } from 'node:fs'
import { dirname, resolve } from 'node:path'

/**
 * `path` (made absolute), or the nearest folder above it that exists: where a missing path would be made, and what
 * decides who may make it. A folder this user may not search counts as missing. The root when nothing exists.
 */
export function nearestExisting(path: string): string {
  let at = resolve(path)
  while (!existsSync(at) && dirname(at) !== at) at = dirname(at)
  return at
}
