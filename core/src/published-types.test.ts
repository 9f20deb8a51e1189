// The declarations @ngrokd/core publishes compile in a stranger's project (strict, skipLibCheck off): every
// package they import is a dependency that brings its own types, or a @types package among the dependencies.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { isBuiltin } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, { types?: string }>; dependencies: Record<string, string> }

/** The bare specifiers the declarations reachable from `entry` import, with the file that imports each. */
function bareImports(entry: string): Map<string, string> {
  const found = new Map<string, string>()
  const seen = new Set<string>()
  const stack = [entry]
  while (stack.length > 0) {
    const file = stack.pop()!
    if (seen.has(file) || !existsSync(file)) continue
    seen.add(file)
    for (const [, spec] of readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)) {
      if (spec!.startsWith('.')) stack.push(resolve(dirname(file), spec!.replace(/\.js$/, '.d.ts')))
      else if (!isBuiltin(spec!)) found.set(spec!.startsWith('@') ? spec!.split('/').slice(0, 2).join('/') : spec!.split('/')[0]!, file)
    }
  }
  return found
}

/** The installed package's manifest, found as Node finds packages: node_modules folders upwards from core. */
function manifestOf(name: string): { types?: string; typings?: string; exports?: unknown } {
  for (let dir = root; ; dir = dirname(dir)) {
    const path = join(dir, 'node_modules', name, 'package.json')
    if (existsSync(path)) return JSON.parse(readFileSync(path, 'utf8'))
    if (dirname(dir) === dir) throw new Error(`${name} is not installed`)
  }
}

function bringsTypes(name: string): boolean {
  const manifest = manifestOf(name)
  return Boolean(manifest.types ?? manifest.typings) || JSON.stringify(manifest.exports ?? {}).includes('"types"')
}

test('every package the published declarations import is a dependency with types', () => {
  const problems: string[] = []
  for (const [subpath, { types }] of Object.entries(pkg.exports)) {
    if (!types) continue
    for (const [name, from] of bareImports(join(root, types))) {
      if (name === '@ngrokd/core') continue
      if (!(name in pkg.dependencies)) problems.push(`${subpath}: ${from} imports ${name}, which is not a dependency`)
      else if (!bringsTypes(name) && !(`@types/${name}` in pkg.dependencies)) problems.push(`${subpath}: ${from} imports ${name}, whose types (@types/${name}) a user would not have`)
    }
  }
  assert.deepEqual(problems, [])
})
