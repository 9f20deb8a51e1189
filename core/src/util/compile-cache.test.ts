import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import module from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const HAS_CACHE = typeof (module as { enableCompileCache?: unknown }).enableCompileCache === 'function'
const helper = new URL('./compile-cache.js', import.meta.url).href

/** Calls enableCompileCache() in a fresh process with XDG_CACHE_HOME=`cacheHome`; prints its answer. */
function enableIn(cacheHome: string): string {
  const script = `import(${JSON.stringify(helper)}).then((m) => console.log(String(m.enableCompileCache())))`
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: cacheHome }
  delete env.NODE_DISABLE_COMPILE_CACHE
  return execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', env }).trim()
}

test('the compile cache goes to a 0700 directory of this user, never one others may write', () => {
  const home = mkdtempSync(join(tmpdir(), 'ngrokd-cc-'))
  try {
    const dir = join(home, 'ngrokd', 'compile-cache')
    if (!HAS_CACHE) {
      assert.equal(enableIn(home), 'undefined', 'Node without module.enableCompileCache: nothing to turn on')
      return
    }
    assert.equal(enableIn(home), dir)
    assert.ok(readdirSync(dir).length > 0, 'compiled code was written there')
    chmodSync(dir, 0o777)
    assert.equal(enableIn(home), 'undefined', 'a directory others may write is not used')
    const other = join(home, 'other')
    mkdirSync(join(other, 'ngrokd', 'compile-cache'), { recursive: true, mode: 0o770 })
    chmodSync(join(other, 'ngrokd', 'compile-cache'), 0o770)
    assert.equal(enableIn(other), 'undefined', 'group-writable neither')
  } finally {
    rmSync(home, { recursive: true, force: true })
  }
})
