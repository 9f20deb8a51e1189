import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import module from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { localUser, localUserSkip } from './local-user.test-helper.js'

const HAS_CACHE = typeof (module as { enableCompileCache?: unknown }).enableCompileCache === 'function'
const helper = new URL('./compile-cache.js', import.meta.url).href

/** Calls enableCompileCache() in a fresh process with XDG_CACHE_HOME=`cacheHome`; prints its answer. */
function enableIn(cacheHome: string): string {
  const script = `import(${JSON.stringify(helper)}).then(async (m) => console.log(String(await m.enableCompileCache())))`
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

test("as root, a cache under a folder another user may change is neither made nor used (a HOME kept by sudo -E)", { skip: localUserSkip() || (!HAS_CACHE && 'Node without module.enableCompileCache') }, () => {
  const eve = localUser()!
  const top = mkdtempSync(join(tmpdir(), 'ngrokd-cc-'))
  try {
    chmodSync(top, 0o755)
    const evesCache = join(top, 'eve', '.cache')
    mkdirSync(evesCache, { recursive: true, mode: 0o755 })
    chownSync(join(top, 'eve'), eve.uid, eve.gid)
    chownSync(evesCache, eve.uid, eve.gid)
    assert.equal(enableIn(evesCache), 'undefined')
    assert.ok(!existsSync(join(evesCache, 'ngrokd')), 'nothing made in her folder')
    // root's own 0700 cache below her folder: she may rename it away and put hers in its place
    mkdirSync(join(evesCache, 'ngrokd', 'compile-cache'), { recursive: true, mode: 0o700 })
    assert.equal(enableIn(evesCache), 'undefined')
    assert.deepEqual(readdirSync(join(evesCache, 'ngrokd', 'compile-cache')), [], 'no compiled code written there')
  } finally {
    rmSync(top, { recursive: true, force: true })
  }
})
