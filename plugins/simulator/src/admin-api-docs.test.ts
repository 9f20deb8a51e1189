// The admin API is documented where users of the published package read it, the README: every route
// handleAdmin answers is in its "Admin API" table.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const source = readFileSync(fileURLToPath(new URL('./admin-api.js', import.meta.url)), 'utf8')
const readme = readFileSync(fileURLToPath(new URL('../README.md', import.meta.url)), 'utf8')
const table = readme.slice(readme.indexOf('## Admin API'))

/** `METHOD /path` of each route handleAdmin matches (`{id}` for a path segment it captures). */
function routes(js: string): string[] {
  const found: string[] = []
  for (const m of js.matchAll(/path === '(\/_admin[^']*)' && method === '(\w+)'/g)) found.push(`${m[2]} ${m[1]}`)
  for (const m of js.matchAll(/\/\^\\\/_admin\\\/(\w+)\\\/\(\[\^\/\]\+\)\$\/\.exec\(path\)\) && method === '(\w+)'/g)) found.push(`${m[2]} /_admin/${m[1]}/{id}`)
  return found
}

test("every admin route is in the README's Admin API table", () => {
  const all = routes(source)
  assert.ok(all.length >= 15 && all.includes('DELETE /_admin/operators/{id}'), `the routes were read: ${all.join(', ')}`)
  const missing = all.filter((r) => !table.includes(`\`${r}`))
  assert.deepEqual(missing, [], 'document these in plugins/simulator/README.md, "Admin API"')
})
