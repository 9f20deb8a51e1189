import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { isResolverSuffix, ngrokdFiles, removeResolverFiles, resolverFileText, RESOLVER_FILE_MARKER, syncResolverFiles } from './macos-resolver-files.js'

const target = { nameserver: '127.0.0.1', port: 5354 }

describe('macOS /etc/resolver files', () => {
  let root: string
  let dir: string
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'ngrokd-resolver-'))
  })
  after(() => rm(root, { recursive: true, force: true }))
  let n = 0
  const freshDir = async () => {
    dir = join(root, `etc${n++}`, 'resolver') // like /etc/resolver, which does not exist on a fresh Mac
    await mkdir(join(dir, '..'), { recursive: true })
    return dir
  }

  it('a file is the marker, then nameserver and port lines (resolver(5))', () => {
    assert.equal(resolverFileText(target), `${RESOLVER_FILE_MARKER}\nnameserver 127.0.0.1\nport 5354\n`)
    assert.equal(resolverFileText({ nameserver: '::1', port: 53 }), `${RESOLVER_FILE_MARKER}\nnameserver ::1\nport 53\n`)
    assert.throws(() => resolverFileText({ nameserver: 'localhost', port: 53 }), (e) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'))
    assert.throws(() => resolverFileText({ nameserver: '127.0.0.1', port: 0 }), (e) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'))
  })

  it('writes one file per suffix, 0644, making the folder, with no temp file left in it', async () => {
    const dir = await freshDir()
    const change = await syncResolverFiles({ dir, suffixes: ['prod', 'demo', 'demo-app.ngrok.app'], target })
    assert.deepEqual(change, { written: ['demo', 'demo-app.ngrok.app', 'prod'], unchanged: [], removed: [], skipped: [] })
    assert.deepEqual((await readdir(dir)).sort(), ['demo', 'demo-app.ngrok.app', 'prod'])
    assert.deepEqual((await readdir(join(dir, '..'))).sort(), ['resolver'], 'the temp files were made beside the folder, and renamed away')
    assert.equal(await readFile(join(dir, 'prod'), 'utf8'), resolverFileText(target))
    assert.equal((await stat(join(dir, 'prod'))).mode & 0o777, 0o644)
  })

  it('leaves equal files alone, rewrites changed ones and removes only its own that are no longer wanted', async () => {
    const dir = await freshDir()
    await syncResolverFiles({ dir, suffixes: ['prod', 'demo', 'old'], target })
    await writeFile(join(dir, 'corp'), 'nameserver 10.0.0.53\n') // someone else's
    const before = (await stat(join(dir, 'prod'))).ino
    const same = await syncResolverFiles({ dir, suffixes: ['prod', 'demo'], target })
    assert.deepEqual(same, { written: [], unchanged: ['demo', 'prod'], removed: ['old'], skipped: [] })
    assert.equal((await stat(join(dir, 'prod'))).ino, before, 'an equal file is not rewritten')
    const moved = await syncResolverFiles({ dir, suffixes: ['prod'], target: { nameserver: '127.0.0.1', port: 5355 } })
    assert.deepEqual(moved, { written: ['prod'], unchanged: [], removed: ['demo'], skipped: [] })
    assert.match(await readFile(join(dir, 'prod'), 'utf8'), /^port 5355$/m)
    assert.deepEqual((await readdir(dir)).sort(), ['corp', 'prod'])
    assert.equal(await readFile(join(dir, 'corp'), 'utf8'), 'nameserver 10.0.0.53\n')
  })

  it("two daemons (state dirs) on one Mac each replace and remove only their own files; an older ngrokd's file (no owner) is either's", async () => {
    const dir = await freshDir()
    const a = { ...target, owner: '/var/lib/ngrokd' }
    const b = { nameserver: '127.0.0.1', port: 5355, owner: '/var/lib/ngrokd-two' }
    assert.equal(resolverFileText(a), `${RESOLVER_FILE_MARKER}\n# state_dir: /var/lib/ngrokd\nnameserver 127.0.0.1\nport 5354\n`)
    assert.throws(() => resolverFileText({ ...target, owner: '/x\nnameserver 10.0.0.1' }), (e) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'))
    await syncResolverFiles({ dir, suffixes: ['prod', 'shared'], target: a })
    await writeFile(join(dir, 'legacy'), resolverFileText(target))
    const second = await syncResolverFiles({ dir, suffixes: ['stage', 'shared'], target: b })
    assert.deepEqual(second.written, ['stage'])
    assert.deepEqual(second.removed, ['legacy'], "an older ngrokd's file is any instance's to remove")
    assert.equal(second.skipped.length, 1)
    assert.match(second.skipped[0]!.reason, /is written for the ngrokd of state_dir \/var\/lib\/ngrokd \(another instance serves shared\)$/)
    assert.equal(await readFile(join(dir, 'shared'), 'utf8'), resolverFileText(a), "the first daemon's file is not taken over")
    // the first one's next sync removes none of the second's
    assert.deepEqual((await syncResolverFiles({ dir, suffixes: ['prod'], target: a })).removed, ['shared'])
    assert.deepEqual(await ngrokdFiles(dir, a.owner), ['prod'])
    assert.deepEqual(await ngrokdFiles(dir, b.owner), ['stage'])
    assert.deepEqual(await ngrokdFiles(dir), ['prod', 'stage'], 'without an owner: every ngrokd file')
    assert.deepEqual(await removeResolverFiles({ dir, owner: b.owner }), ['stage'])
    assert.deepEqual(await readdir(dir), ['prod'])
  })

  it('never overwrites a file it did not write, and skips names that cannot be files', async () => {
    const dir = await freshDir()
    await mkdir(dir)
    await writeFile(join(dir, 'prod'), '# VPN client\nnameserver 10.8.0.1\n')
    const change = await syncResolverFiles({ dir, suffixes: ['prod', '../hosts', 'Prod', '', 'a..b'], target })
    assert.deepEqual(change.written, [])
    assert.deepEqual(change.skipped.map((s) => s.suffix), ['../hosts', 'Prod', '', 'a..b', 'prod'])
    assert.match(change.skipped.at(-1)!.reason, /exists and was not written by ngrokd/)
    assert.equal(await readFile(join(dir, 'prod'), 'utf8'), '# VPN client\nnameserver 10.8.0.1\n')
    assert.deepEqual(await readdir(join(dir, '..')), ['resolver'], 'nothing written outside the folder')
    assert.equal(isResolverSuffix('demo-app.ngrok.app'), true)
    assert.equal(isResolverSuffix('-prod'), false)
  })

  it('removes all of its own files on stop, and nothing else', async () => {
    const dir = await freshDir()
    await syncResolverFiles({ dir, suffixes: ['prod', 'demo'], target })
    await writeFile(join(dir, 'corp'), 'nameserver 10.0.0.53\n')
    await mkdir(join(dir, 'a-folder'))
    assert.deepEqual(await ngrokdFiles(dir), ['demo', 'prod'])
    assert.deepEqual(await removeResolverFiles({ dir }), ['demo', 'prod'])
    assert.deepEqual((await readdir(dir)).sort(), ['a-folder', 'corp'])
    assert.deepEqual(await removeResolverFiles({ dir }), [], 'twice is fine')
    assert.deepEqual(await removeResolverFiles({ dir: join(root, 'missing', 'resolver') }), [], 'no folder, nothing to do')
  })

  it('a folder it may not write is NGROKD_ERR_PERMISSION with a sudo hint', async () => {
    const dir = await freshDir()
    await mkdir(dir)
    await chmod(dir, 0o555)
    if (process.getuid?.() !== 0) {
      await assert.rejects(syncResolverFiles({ dir, suffixes: ['prod'], target }), (e) => isNgrokdError(e, 'NGROKD_ERR_PERMISSION') && /sudo/.test(e.hint ?? ''))
      return
    }
    // root may write anywhere: try it from a user namespace with no uid mapped (unshare -U), where uid 0 keeps
    // owner rights on the repo (so the module still loads wherever the checkout is) but loses CAP_DAC_OVERRIDE
    const fromSource = import.meta.url.endsWith('.ts') // run with tsx rather than from dist
    const script = `import(${JSON.stringify(new URL(`./macos-resolver-files.${fromSource ? 'ts' : 'js'}`, import.meta.url).href)}).then((m) => m.syncResolverFiles({ dir: ${JSON.stringify(dir)}, suffixes: ['prod'], target: { nameserver: '127.0.0.1', port: 5354 } })).then(() => console.log('{}'), (e) => console.log(JSON.stringify({ code: e.code, hint: e.hint })))`
    const child = spawnSync('unshare', ['-U', process.execPath, ...(fromSource ? ['--import', 'tsx'] : []), '--input-type=module', '-e', script], { encoding: 'utf8' })
    assert.equal(child.status, 0, `unshare -U node: ${child.stderr}`)
    const result = JSON.parse(child.stdout) as { code?: string; hint?: string }
    assert.equal(result.code, 'NGROKD_ERR_PERMISSION', child.stderr)
    assert.match(result.hint ?? '', /sudo/)
  })

  it('other failures are NGROKD_ERR_RESOLVER_FILE naming the file', async () => {
    const parent = join(root, 'not-a-folder')
    await writeFile(parent, 'x')
    await assert.rejects(syncResolverFiles({ dir: join(parent, 'resolver'), suffixes: ['prod'], target }), (e) => isNgrokdError(e, 'NGROKD_ERR_RESOLVER_FILE') && e.message.includes(join(parent, 'resolver', 'prod')))
  })
})
