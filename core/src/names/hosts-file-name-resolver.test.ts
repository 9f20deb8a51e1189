import { describe, it, before, after, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, lstat, writeFile, readlink } from 'node:fs/promises'
import { closeSync, existsSync, openSync, readFileSync, readlinkSync, renameSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Logger } from '../contracts/logger.js'
import { isNgrokdError, NgrokdError } from '../errors/ngrokd-error.js'
import { createHash } from 'node:crypto'
import { HostsFileNameResolver, HOSTS_BACKUP_FILE, HOSTS_FROZEN_FILE, HOSTS_INFLIGHT_FILE, HOSTS_NEXT_FILE, HOSTS_UNMERGED_FILE } from './hosts-file-name-resolver.js'
import { HOSTS_BLOCK_BEGIN, HOSTS_BLOCK_END, parseHostsBlock, updateHostsText } from './hosts-block.js'
import { appendedNumbers, appendedText, rewriteWhileAppending } from './test-fixtures/concurrent-append.js'
import { TestFramework } from '../testing/test-framework.js'
import { testNameResolver } from '../testing/suites/name-resolver-suite.js'

TestFramework.use({ describe, it, beforeAll: before, afterAll: after })
const readBack = async ({ dir }: { dir: string }) => parseHostsBlock(await readFile(join(dir, 'hosts'), 'utf8').catch(() => '')).records
testNameResolver({
  title: 'HostsFileNameResolver: name resolver conformance',
  create: ({ dir }) => new HostsFileNameResolver({ path: join(dir, 'hosts'), stateDir: join(dir, 'state') }),
  readBack,
})
// The same rules on the in-place path taken when rename() fails, as on a bind-mounted /etc/hosts.
testNameResolver({
  title: 'HostsFileNameResolver (rename fails with EBUSY): name resolver conformance',
  create: ({ dir }) =>
    new HostsFileNameResolver({
      path: join(dir, 'hosts'),
      stateDir: join(dir, 'state'),
      rename: () => {
        throw renameError('EBUSY')
      },
    }),
  readBack,
})

type Line = { level: string; msg: string }
function recordingLogger(): Logger & { lines: Line[] } {
  const lines: Line[] = []
  const make = (level: string) => (a: unknown, b?: string) => {
    lines.push({ level, msg: typeof a === 'string' ? a : (b ?? '') })
  }
  const logger = { lines, trace: make('trace'), debug: make('debug'), info: make('info'), warn: make('warn'), error: make('error'), fatal: make('fatal'), child: () => logger }
  return logger
}

function renameError(code: string): Error {
  return Object.assign(new Error(`${code}: rename failed`), { code })
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex')

/**
 * What ngrokd leaves when an in-place write from `old` to `next` is cut off: the backup, the new
 * content and the marker in `stateDir` (the format documented on HOSTS_INFLIGHT_FILE), and `file`.
 */
async function leaveInterruptedWrite(at: { hosts: string; stateDir: string }, old: Buffer, next: Buffer, file: Buffer): Promise<void> {
  await mkdir(at.stateDir, { recursive: true })
  await writeFile(join(at.stateDir, HOSTS_BACKUP_FILE), old)
  await writeFile(join(at.stateDir, HOSTS_NEXT_FILE), next)
  const marker = { path: at.hosts, startedAt: new Date().toISOString(), old: { size: old.length, sha256: sha256(old) }, new: { size: next.length, sha256: sha256(next) } }
  await writeFile(join(at.stateDir, HOSTS_INFLIGHT_FILE), JSON.stringify(marker))
  await writeFile(at.hosts, file)
}

const API = { hostname: 'api.prod', address: '10.107.0.2' }
const DB = { hostname: 'db.prod', address: '10.107.0.3' }
const ORIGINAL = '127.0.0.1 localhost\n# my comment\n\n10.0.0.1 mine.example' // no final newline
const BLOCK = `${HOSTS_BLOCK_BEGIN}\n10.107.0.2\tapi.prod\n10.107.0.3\tdb.prod\n${HOSTS_BLOCK_END}`

describe('HostsFileNameResolver', () => {
  let dir: string
  let hosts: string
  let stateDir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ngrokd-hosts-'))
    hosts = join(dir, 'hosts')
    stateDir = join(dir, 'state')
    await writeFile(hosts, ORIGINAL)
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('as root, while its state dir is another user\'s (removed and made again by them) their backup never becomes the hosts file: a write by rename needs none, one in place freezes the names', { skip: process.getuid?.() === 0 ? false : 'the trust rule applies as root' }, async () => {
    let inPlace = false // rename() onto a bind-mounted file fails with EBUSY: the write goes in place, with a backup
    const names = new HostsFileNameResolver({ path: hosts, stateDir, rename: (from, to) => {
      if (inPlace) throw Object.assign(new Error(`EBUSY: resource busy or locked, rename '${from}' -> '${to}'`), { code: 'EBUSY' })
      renameSync(from, to)
    } })
    await names.open()
    assert.deepEqual(await names.publish({ records: [API] }), { changed: true })
    const published = await readFile(hosts, 'utf8')
    // the state dir goes, and another user makes it again with a "torn write" to be settled from their backup
    await rm(stateDir, { recursive: true })
    await mkdir(stateDir, { mode: 0o755 })
    const evil = Buffer.from('6.6.6.6 github.com\n')
    const current = Buffer.from(published)
    await writeFile(join(stateDir, HOSTS_BACKUP_FILE), evil)
    await writeFile(join(stateDir, HOSTS_NEXT_FILE), Buffer.concat([current, Buffer.from('x')]))
    const sum = (b: Buffer) => createHash('sha256').update(b).digest('hex')
    await writeFile(join(stateDir, HOSTS_INFLIGHT_FILE), JSON.stringify({ path: hosts, startedAt: new Date().toISOString(), old: { size: evil.length, sha256: sum(evil) }, new: { size: current.length + 1, sha256: sum(Buffer.concat([current, Buffer.from('x')])) } }))
    for (const f of ['', HOSTS_BACKUP_FILE, HOSTS_NEXT_FILE, HOSTS_INFLIGHT_FILE]) await chown(join(stateDir, f), 4242, 4242)
    assert.deepEqual(await names.publish({ records: [API, DB] }), { changed: true })
    const renamed = await readFile(hosts, 'utf8')
    assert.deepEqual(parseHostsBlock(renamed).records, [API, DB], 'the records, by rename')
    assert.doesNotMatch(renamed, /github\.com/, 'their "backup" is not put back')
    assert.ok(existsSync(join(stateDir, HOSTS_INFLIGHT_FILE)), 'their marker is not judged, nor removed')
    // the admin gives the folder back to root: what that user left in it is removed unused, never put back
    await chown(stateDir, 0, 0)
    await chmod(stateDir, 0o700)
    assert.deepEqual(await names.publish({ records: [API] }), { changed: true })
    const fixed = await readFile(hosts, 'utf8')
    assert.doesNotMatch(fixed, /github\.com/, 'their backup never becomes the hosts file')
    assert.deepEqual(parseHostsBlock(fixed).records, [API])
    for (const f of [HOSTS_BACKUP_FILE, HOSTS_NEXT_FILE, HOSTS_INFLIGHT_FILE]) assert.equal(existsSync(join(stateDir, f)), false, `${f} removed`)
    // taken over again: a write in place, which needs a backup there, freezes the names
    await chown(stateDir, 4242, 4242)
    inPlace = true
    await assert.rejects(names.publish({ records: [API, DB] }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_NAMES_FROZEN') && /no backup is written in .* before rewriting/.test(e.message))
    assert.equal(await readFile(hosts, 'utf8'), fixed, 'frozen: the hosts file is untouched')
    assert.deepEqual(await readdir(stateDir), [], 'nothing written in their folder')
    await names.close().catch(() => {})
  })

  it('as root, an interrupted write\'s files that are links (to /proc/PID/fd/N, say: a file no one can judge) are removed unused', { skip: process.getuid?.() === 0 ? false : 'the trust rule applies as root' }, async () => {
    const evil = Buffer.from('6.6.6.6 bank.example\n')
    const current = await readFile(hosts)
    const elsewhere = join(dirname(hosts), 'elsewhere')
    await mkdir(elsewhere, { recursive: true })
    // a torn-looking write whose files the state dir only links to
    await leaveInterruptedWrite({ hosts, stateDir: elsewhere }, evil, Buffer.concat([current, Buffer.from('xx')]), current)
    await mkdir(stateDir, { recursive: true })
    for (const f of [HOSTS_INFLIGHT_FILE, HOSTS_BACKUP_FILE, HOSTS_NEXT_FILE]) await symlink(join(elsewhere, f), join(stateDir, f))
    const logger = recordingLogger()
    const names = new HostsFileNameResolver({ path: hosts, stateDir, logger })
    await names.open()
    assert.deepEqual(await readFile(hosts), current, 'never put back from what a link leads to')
    for (const f of [HOSTS_INFLIGHT_FILE, HOSTS_BACKUP_FILE, HOSTS_NEXT_FILE]) assert.equal(existsSync(join(stateDir, f)) || (await lstat(join(stateDir, f)).then(() => true, () => false)), false, `${f} removed`)
    assert.ok(logger.lines.some((l) => l.level === 'error' && /is not a regular file .*removed with the rest/.test(l.msg)), JSON.stringify(logger.lines))
    await names.close()
  })

  it('a folder where the backup goes (a bad restore) freezes an in-place write with the fix that works, is never said to be removed, and is said once', async () => {
    await mkdir(join(stateDir, HOSTS_BACKUP_FILE), { recursive: true })
    const logger = recordingLogger()
    const names = new HostsFileNameResolver({ path: hosts, stateDir, logger, rename: () => {
      throw renameError('EBUSY') // a bind-mounted hosts file: rewritten in place, after a backup
    } })
    await names.open()
    for (let i = 0; i < 3; i++) {
      await assert.rejects(names.publish({ records: [{ hostname: 'api.prod', address: '10.107.0.2' }] }), (e: unknown) => {
        assert.ok(isNgrokdError(e, 'NGROKD_ERR_NAMES_FROZEN'), String(e))
        assert.match(e.hint ?? '', new RegExp(`remove it \\(rm -r ${join(stateDir, HOSTS_BACKUP_FILE).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`))
        return true
      })
    }
    assert.ok((await stat(join(stateDir, HOSTS_BACKUP_FILE))).isDirectory(), 'not ngrokd\'s to remove')
    assert.ok(!logger.lines.some((l) => /removed with the rest/.test(l.msg)), 'never said to be removed')
    if (process.getuid?.() === 0) assert.equal(logger.lines.filter((l) => l.level === 'error' && /is a directory, not a file of ngrokd's: remove it/.test(l.msg)).length, 1, JSON.stringify(logger.lines))
    await names.close()
  })

  it('replaces a plain file atomically, keeps its mode, and writes nothing when unchanged', async () => {
    await chmod(hosts, 0o640)
    const inode = (await stat(hosts)).ino
    const names = new HostsFileNameResolver({ path: hosts, stateDir })
    await names.open()
    assert.equal(names.resolver, 'hosts-file')
    await names.open()
    assert.deepEqual(await names.publish({ records: [DB, API] }), { changed: true })
    assert.equal(await readFile(hosts, 'utf8'), `${ORIGINAL}\n${BLOCK}`)
    const after = await stat(hosts)
    assert.equal(after.mode & 0o777, 0o640)
    assert.notEqual(after.ino, inode) // a new file was renamed over the old one
    assert.equal(existsSync(join(stateDir, HOSTS_BACKUP_FILE)), false)
    assert.deepEqual(await names.list(), [API, DB])

    assert.deepEqual(await names.publish({ records: [API, DB] }), { changed: false })
    assert.equal((await stat(hosts)).ino, after.ino)

    assert.deepEqual(await names.publish({ records: [] }), { changed: true })
    assert.equal(await readFile(hosts, 'utf8'), ORIGINAL)
    assert.deepEqual(await names.list(), [])
    await names.close()
    await names.close()
  })

  it('keeps the owner of the file', { skip: process.getuid?.() !== 0 ? 'needs root to chown' : false }, async () => {
    await chown(hosts, 4321, 4322)
    const names = new HostsFileNameResolver({ path: hosts, stateDir })
    await names.open()
    await names.publish({ records: [API] })
    const st = await stat(hosts)
    assert.deepEqual([st.uid, st.gid], [4321, 4322])
  })

  it('edits the target of a symlinked hosts file and keeps the link', async () => {
    const link = join(dir, 'hosts-link')
    await symlink(hosts, link)
    const names = new HostsFileNameResolver({ path: link, stateDir })
    await names.open()
    await names.publish({ records: [API] })
    assert.ok((await lstat(link)).isSymbolicLink())
    assert.equal(await readlink(link), hosts)
    assert.match(await readFile(hosts, 'utf8'), /10\.107\.0\.2\tapi\.prod/)
  })

  it('a symlink to nothing is never written (a publish with names is refused, naming its target; doctor fails on it), and stays a link', async () => {
    const link = join(dir, 'hosts-dangling')
    const nowhere = join(dir, 'gone', 'hosts')
    await symlink(nowhere, link)
    const names = new HostsFileNameResolver({ path: link, stateDir })
    const refused = (e: unknown) =>
      isNgrokdError(e, 'NGROKD_ERR_HOSTS_FILE') && e.message.includes(`${link} is a symbolic link to ${nowhere}, which cannot be followed (ENOENT)`) && /create the file it points to/.test(e.hint ?? '')
    await names.open()
    // nothing to remove (cleanup, a stop): no write, no refusal; a doctor says what is wrong
    assert.deepEqual(await names.publish({ records: [] }), { changed: false })
    const access = (await names.diagnose()).find((c) => c.id === 'hosts-file.access')
    assert.equal(access?.status, 'fail')
    assert.ok(refused(new NgrokdError('NGROKD_ERR_HOSTS_FILE', access!.summary, { hint: access!.hint })), JSON.stringify(access))
    await assert.rejects(names.publish({ records: [API] }), refused)
    assert.ok((await lstat(link)).isSymbolicLink())
    assert.equal(await readlink(link), nowhere)
    assert.equal(existsSync(nowhere), false)
    await names.close()
    // its file removed while the daemon runs: the next publish refuses the same way
    await mkdir(join(dir, 'gone'))
    await writeFile(nowhere, '127.0.0.1 localhost\n')
    const running = new HostsFileNameResolver({ path: link, stateDir })
    await running.open()
    await rm(nowhere)
    await assert.rejects(running.publish({ records: [API] }), refused)
    assert.equal(await readlink(link), nowhere)
    assert.equal(existsSync(nowhere), false)
    await running.close()
  })

  it("a user's own line put inside the block goes as the block is rewritten, said at warn with its text; lines outside stay", async () => {
    await writeFile(hosts, `${ORIGINAL}\n${HOSTS_BLOCK_BEGIN}\n10.107.0.2\tapi.prod\n7.7.7.7 user-inside\n${HOSTS_BLOCK_END}\n`)
    const logger = recordingLogger()
    const names = new HostsFileNameResolver({ path: hosts, stateDir, logger })
    await names.open()
    await names.publish({ records: [API, DB] })
    assert.equal(await readFile(hosts, 'utf8'), `${ORIGINAL}\n${BLOCK}\n`)
    const said = logger.lines.filter((l) => l.level === 'warn').map((l) => l.msg)
    assert.deepEqual(said, [`hosts-file: dropping 1 line inside ngrokd's block of ${hosts} that ngrokd did not write (line 7: "7.7.7.7 user-inside") as it rewrites the block; put your own lines outside its BEGIN/END markers`])
    await names.publish({ records: [API] })
    assert.equal(logger.lines.filter((l) => l.level === 'warn').length, 1, 'said once: the line is gone')
    await names.close()
  })

  it("a well-formed line of the user's put inside the block goes too, named at warn; a name this run wrote, or an earlier run's, goes quietly", async () => {
    // an earlier run's block (a crash): its names go at the first write without a word, as ngrokd cleanup's do
    await writeFile(hosts, `${ORIGINAL}\n${HOSTS_BLOCK_BEGIN}\n10.107.0.9\tgone.prod\n${HOSTS_BLOCK_END}\n`)
    const logger = recordingLogger()
    const names = new HostsFileNameResolver({ path: hosts, stateDir, logger })
    await names.open()
    await names.publish({ records: [API, DB] })
    assert.doesNotMatch(await readFile(hosts, 'utf8'), /gone\.prod/)
    assert.equal(logger.lines.filter((l) => l.level === 'warn').length, 0, "an earlier run's name is ngrokd's own")
    const text = await readFile(hosts, 'utf8')
    await writeFile(hosts, text.replace(HOSTS_BLOCK_END, `10.9.9.9\tmine.demo\n${HOSTS_BLOCK_END}`))
    await names.publish({ records: [API] })
    assert.doesNotMatch(await readFile(hosts, 'utf8'), /mine\.demo/)
    const said = logger.lines.filter((l) => l.level === 'warn').map((l) => l.msg)
    assert.deepEqual(said, [`hosts-file: removing 1 name from ngrokd's block of ${hosts} that ngrokd did not write (mine.demo 10.9.9.9) as it rewrites the block; put your own lines outside its BEGIN/END markers`])
    await names.close()
  })

  it('creates a missing file only when there is something to publish', async () => {
    await rm(hosts)
    const names = new HostsFileNameResolver({ path: hosts, stateDir })
    await names.open()
    assert.deepEqual(await names.publish({ records: [] }), { changed: false })
    assert.equal(existsSync(hosts), false)
    await names.publish({ records: [API] })
    assert.equal((await stat(hosts)).mode & 0o777, 0o644)
    assert.deepEqual(await names.list(), [API])
  })

  for (const code of ['EBUSY', 'EXDEV']) {
    it(`rewrites in place with a backup when rename fails with ${code}`, async () => {
      const logger = recordingLogger()
      let attempts = 0
      const rename = () => {
        attempts++
        throw renameError(code)
      }
      const inode = (await stat(hosts)).ino
      const names = new HostsFileNameResolver({ path: hosts, stateDir, logger, rename })
      await names.open()
      assert.deepEqual(await names.publish({ records: [API, DB] }), { changed: true })
      assert.equal(await readFile(hosts, 'utf8'), `${ORIGINAL}\n${BLOCK}`)
      assert.equal((await stat(hosts)).ino, inode) // same file, rewritten
      assert.equal(await readFile(join(stateDir, HOSTS_BACKUP_FILE), 'utf8'), ORIGINAL)
      assert.equal(existsSync(join(stateDir, HOSTS_INFLIGHT_FILE)), false)
      assert.equal((await stat(stateDir)).mode & 0o777, 0o700)
      assert.equal(logger.lines.filter((l) => l.level === 'info' && l.msg.includes(code)).length, 1)

      // Shrinking: the tail of the longer old content must be cut off.
      await names.publish({ records: [API] })
      assert.equal(await readFile(hosts, 'utf8'), `${ORIGINAL}\n${HOSTS_BLOCK_BEGIN}\n10.107.0.2\tapi.prod\n${HOSTS_BLOCK_END}`)
      await names.publish({ records: [] })
      assert.equal(await readFile(hosts, 'utf8'), ORIGINAL)
      assert.equal(attempts, 1) // later writes go straight to the in-place path
    })
  }

  it('freezes name changes on other write failures, leaves the file alone, and thaws when a write succeeds', async () => {
    let fail = true
    const logger = recordingLogger()
    const rename = (from: string, to: string) => {
      if (fail) throw renameError('EIO')
      renameSync(from, to)
    }
    const names = new HostsFileNameResolver({ path: hosts, stateDir, logger, rename })
    await names.open()
    assert.deepEqual(names.health(), { state: 'ok' })
    for (let i = 0; i < 2; i++) {
      await assert.rejects(
        names.publish({ records: [API] }),
        (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_NAMES_FROZEN') && e.message.includes(hosts) && /EIO/.test(e.message) && /tries again/.test(e.hint ?? ''),
      )
    }
    assert.equal(await readFile(hosts, 'utf8'), ORIGINAL)
    const health = names.health()
    assert.equal(health.state, 'frozen')
    assert.match(health.state === 'frozen' ? health.error.message : '', /cannot write .*EIO.*keeps its previous content/)
    assert.equal(logger.lines.filter((l) => l.level === 'error').length, 1, 'loud once, not on every retry')
    // a restart keeps the state (doctor reads it too) until a write succeeds
    const again = new HostsFileNameResolver({ path: hosts, stateDir, logger, rename })
    await again.open()
    assert.equal(again.health().state, 'frozen')
    fail = false
    assert.deepEqual(await again.publish({ records: [API] }), { changed: true })
    assert.deepEqual(again.health(), { state: 'ok' })
    assert.equal((await again.diagnose()).some((c) => c.id === 'hosts-file.frozen'), false)
    assert.equal(existsSync(join(stateDir, HOSTS_FROZEN_FILE)), false)
  })

  it('rewrites in place when the directory refuses the temp file (EACCES) but the file itself is writable', async () => {
    // e.g. an unprivileged user namespace with a file of its own bind-mounted over /etc/hosts
    const inode = (await stat(hosts)).ino
    const names = new HostsFileNameResolver({
      path: hosts,
      stateDir,
      rename: () => {
        throw renameError('EACCES')
      },
    })
    await names.open()
    assert.deepEqual(await names.publish({ records: [API, DB] }), { changed: true })
    assert.equal(await readFile(hosts, 'utf8'), `${ORIGINAL}\n${BLOCK}`)
    assert.equal((await stat(hosts)).ino, inode)
    assert.equal(await readFile(join(stateDir, HOSTS_BACKUP_FILE), 'utf8'), ORIGINAL)
  })

  it('open() restores the file from the backup after an in-place write was cut off', async () => {
    // A crash while room was being reserved for the longer new content: the old content and newlines.
    await leaveInterruptedWrite({ hosts, stateDir }, Buffer.from(ORIGINAL), Buffer.from(`${ORIGINAL}\n${BLOCK}`), Buffer.from(`${ORIGINAL}\n\n\n`))
    const inode = (await stat(hosts)).ino
    const logger = recordingLogger()
    const names = new HostsFileNameResolver({ path: hosts, stateDir, logger })
    await names.open()
    assert.equal(await readFile(hosts, 'utf8'), ORIGINAL)
    assert.equal((await stat(hosts)).ino, inode) // restored in place: works on a bind mount too
    assert.equal(existsSync(join(stateDir, HOSTS_INFLIGHT_FILE)), false)
    assert.ok(logger.lines.some((l) => l.level === 'warn' && /restored .* from .*: an in-place write of it was cut off/.test(l.msg)))
  })

  it('open() restores a cut-off shrinking write over which an admin appended a line: the backup, then their line', async () => {
    const old = Buffer.from(`127.0.0.1 localhost\n${HOSTS_BLOCK_BEGIN}\n10.107.0.2\tapi.prod\n10.107.0.3\tdb.prod\n${HOSTS_BLOCK_END}\n`)
    const next = Buffer.from(`127.0.0.1 localhost\n${HOSTS_BLOCK_BEGIN}\n10.107.0.2\tapi.prod\n${HOSTS_BLOCK_END}\n`)
    const admin = '10.1.1.1 admin-added.local\n'
    // the new content written over the old one, the cut before its truncate; then `echo … >> /etc/hosts`
    await leaveInterruptedWrite({ hosts, stateDir }, old, next, Buffer.concat([next, old.subarray(next.length), Buffer.from(admin)]))
    const logger = recordingLogger()
    const names = new HostsFileNameResolver({ path: hosts, stateDir, logger })
    await names.open()
    assert.equal(await readFile(hosts, 'utf8'), `${old}${admin}`)
    assert.ok(logger.lines.some((l) => l.level === 'warn' && /an in-place write of it was cut off; the 1 line\(s\) appended to it since are kept after it/.test(l.msg)), JSON.stringify(logger.lines))
    await names.publish({ records: [] })
    assert.equal(await readFile(hosts, 'utf8'), `127.0.0.1 localhost\n${admin}`)
    await names.close()
  })

  it('an immutable hosts file refuses even root: a failed write that freezes name changes (the names published before still resolve), and the fix names the attribute, not sudo', { skip: process.getuid?.() !== 0 && 'needs root (chattr)' }, async (t) => {
    const names = new HostsFileNameResolver({ path: hosts, stateDir })
    await names.open()
    await names.publish({ records: [API] })
    if (spawnSync('chattr', ['+i', hosts]).status !== 0) return t.skip('chattr +i is not supported here')
    try {
      await assert.rejects(names.publish({ records: [API, { hostname: 'web.prod', address: '10.107.0.3' }] }), (e: unknown) => {
        assert.ok(isNgrokdError(e, 'NGROKD_ERR_NAMES_FROZEN'), String(e))
        assert.match(e.hint ?? '', /refuses even root: it is immutable or append-only \(lsattr .*; chattr -i -a /)
        return true
      })
      assert.equal(names.health().state, 'frozen')
      assert.match(await readFile(hosts, 'utf8'), /10\.107\.0\.2\s+api\.prod/, 'what was published stays')
      const check = (await names.diagnose()).find((c) => c.id === 'hosts-file.access')
      assert.match(check?.hint ?? '', /refuses even root/, JSON.stringify(check))
      await names.close().catch(() => {})
    } finally {
      spawnSync('chattr', ['-i', hosts])
    }
  })

  it('publish() before open() or after close() rejects; open() recovers before the first write', async () => {
    // torn: the new content's start over the old one, whose last line is cut
    const next = Buffer.from(`127.0.0.1 localhost\n${BLOCK}`)
    const torn = Buffer.concat([next.subarray(0, 30), Buffer.from(ORIGINAL).subarray(30)])
    await leaveInterruptedWrite({ hosts, stateDir }, Buffer.from(ORIGINAL), next, torn)
    const names = new HostsFileNameResolver({ path: hosts, stateDir })
    await assert.rejects(names.publish({ records: [API] }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_DRIVER_MISUSE'))
    assert.deepEqual(await readFile(hosts), torn)
    await names.open()
    await names.publish({ records: [API] })
    assert.equal(await readFile(hosts, 'utf8'), `${ORIGINAL}\n${HOSTS_BLOCK_BEGIN}\n10.107.0.2\tapi.prod\n${HOSTS_BLOCK_END}`)
    await names.close()
    await assert.rejects(names.publish({ records: [] }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_DRIVER_MISUSE'))
  })

  it('puts a backup back only over its own hosts file: a marker naming another file leaves that file alone', async () => {
    // a torn-looking "write" of another file: put back, the backup would replace that file's content
    const victim = join(dirname(hosts), 'victim')
    const content = Buffer.from('root-owned original content, do not change\n')
    await leaveInterruptedWrite({ hosts: victim, stateDir }, Buffer.from('PLANTED\n'), Buffer.concat([content.subarray(0, -1), Buffer.from('X')]), content)
    const logger = recordingLogger()
    const names = new HostsFileNameResolver({ path: hosts, stateDir, logger })
    await names.open()
    assert.deepEqual(await readFile(victim), content)
    assert.equal(await readFile(hosts, 'utf8'), ORIGINAL)
    assert.equal(existsSync(join(stateDir, HOSTS_INFLIGHT_FILE)), false)
    assert.ok(logger.lines.some((l) => l.level === 'error' && l.msg.includes(`names ${victim}, not the hosts file ${hosts}`)), JSON.stringify(logger.lines))
  })

  it('drops a marker without a backup, logs it and leaves the file alone', async () => {
    await mkdir(stateDir, { recursive: true })
    await writeFile(join(stateDir, HOSTS_INFLIGHT_FILE), JSON.stringify({ path: hosts }))
    const logger = recordingLogger()
    const names = new HostsFileNameResolver({ path: hosts, stateDir, logger })
    await names.open()
    assert.equal(await readFile(hosts, 'utf8'), ORIGINAL)
    assert.equal(existsSync(join(stateDir, HOSTS_INFLIGHT_FILE)), false)
    assert.ok(logger.lines.some((l) => l.level === 'error' && /cannot be judged/.test(l.msg)))
  })

  it('warns once per hostname about user lines naming our hostnames', async () => {
    await writeFile(hosts, '127.0.0.1 localhost\n10.0.0.1 api.prod\n')
    const logger = recordingLogger()
    const names = new HostsFileNameResolver({ path: hosts, stateDir, logger })
    await names.open()
    await names.publish({ records: [API, DB] })
    await names.publish({ records: [API, DB] })
    await names.publish({ records: [API] })
    const warnings = () => logger.lines.filter((l) => l.level === 'warn' && /also names? /.test(l.msg)).map((l) => l.msg)
    assert.equal(warnings().length, 1)
    assert.match(warnings()[0]!, /api\.prod/)
    // The user's line is kept.
    assert.match(await readFile(hosts, 'utf8'), /^127\.0\.0\.1 localhost\n10\.0\.0\.1 api\.prod\n/)
    // Gone and back: warned again.
    await names.publish({ records: [DB] })
    await names.publish({ records: [API] })
    assert.equal(warnings().length, 2)
  })

  it('says many conflicting hostnames in one line, naming a few and counting the rest', async () => {
    const records = Array.from({ length: 40 }, (_, i) => ({ hostname: `svc${String(i).padStart(2, '0')}.prod`, address: `10.107.0.${i + 2}` }))
    await writeFile(hosts, `127.0.0.1 localhost\n# BEGIN ngrokd instance work managed block (do not edit)\n${records.map((r) => `10.108.0.9\t${r.hostname}`).join('\n')}\n# END ngrokd instance work managed block\n`)
    const logger = recordingLogger()
    const names = new HostsFileNameResolver({ path: hosts, stateDir, logger })
    await names.open()
    await names.publish({ records })
    await names.publish({ records })
    const warnings = logger.lines.filter((l) => l.level === 'warn' && /also name /.test(l.msg)).map((l) => l.msg)
    assert.deepEqual(warnings, [`hosts-file: lines outside the ngrokd block of ${hosts} also name svc00.prod, svc01.prod, svc02.prod, svc03.prod, svc04.prod and 35 more; programs may resolve those addresses instead`])
  })

  it('refuses unsafe records and an aborted signal without touching the file', async () => {
    const names = new HostsFileNameResolver({ path: hosts, stateDir })
    await names.open()
    await assert.rejects(
      names.publish({ records: [API, { hostname: 'evil.prod\n6.6.6.6 bank.example', address: '10.107.0.9' }] }),
      (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_HOSTNAME_INVALID'),
    )
    await assert.rejects(names.publish({ records: [{ hostname: 'api.prod', address: '10.107.0.2 x.example' }] }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_HOSTS_FILE'))
    const controller = new AbortController()
    controller.abort()
    await assert.rejects(names.publish({ records: [API], signal: controller.signal }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_ABORTED'))
    await assert.rejects(names.open({ signal: controller.signal }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_ABORTED'))
    assert.equal(await readFile(hosts, 'utf8'), ORIGINAL)
  })

  it('diagnoses access, markers, conflicts and an interrupted write', async () => {
    const names = new HostsFileNameResolver({ path: hosts, stateDir })
    await names.open()
    await names.publish({ records: [API] })
    assert.deepEqual((await names.diagnose()).map((c) => [c.id, c.status]), [
      ['hosts-file.access', 'ok'],
      ['hosts-file.markers', 'ok'],
    ])
    await writeFile(hosts, `${HOSTS_BLOCK_END}\n10.0.0.1 api.prod\n${await readFile(hosts, 'utf8')}\n`)
    await writeFile(join(stateDir, HOSTS_INFLIGHT_FILE), '{}')
    const checks = await names.diagnose()
    assert.deepEqual(checks.map((c) => [c.id, c.status]), [
      ['hosts-file.access', 'ok'],
      ['hosts-file.markers', 'warn'],
      ['hosts-file.conflicts', 'warn'],
      ['hosts-file.interrupted-write', 'warn'],
    ])
    assert.match(checks[1]!.summary, /unpaired ngrokd marker on line 1/)
    const missing = new HostsFileNameResolver({ path: join(dir, 'nope'), stateDir })
    await missing.open()
    assert.equal((await missing.diagnose())[0]!.status, 'warn')
  })
})

// Real bind mount over /etc/hosts, in a private mount namespace so the machine's file is never touched.
const privileged = process.platform === 'linux' && process.getuid?.() === 0
const unshareAvailable = privileged && spawnSync('unshare', ['--mount', '--propagation', 'private', 'true']).status === 0
describe('HostsFileNameResolver on a bind-mounted /etc/hosts', () => {
  it(
    'rewrites in place, resolves through getent and dns.lookup, and restores byte for byte',
    { skip: !privileged ? 'needs root on Linux' : !unshareAvailable ? 'unshare --mount is not available' : false },
    () => {
      const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js'
      const child = fileURLToPath(new URL(`./test-fixtures/bind-mount-child${ext}`, import.meta.url))
      const execArgv = process.execArgv.filter((a) => !a.startsWith('--test'))
      const before = readlinkSync('/proc/self/ns/mnt')
      const r = spawnSync('unshare', ['--mount', '--propagation', 'private', process.execPath, ...execArgv, child], {
        encoding: 'utf8',
        env: { ...process.env, NGROKD_TEST_PARENT_MNTNS: before },
      })
      assert.equal(r.status, 0, r.stderr)
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>
      const block = `${HOSTS_BLOCK_BEGIN}\n10.107.0.2\tapi.ngrokd-test\n10.107.0.3\tdb.ngrokd-test\n${HOSTS_BLOCK_END}`
      assert.equal(out.first, true)
      assert.equal(out.published, `${out.original}\n${block}`)
      assert.equal(out.viaSource, out.published) // the bind source is the same inode
      assert.match(out.getent as string, /^10\.107\.0\.2\s+api\.ngrokd-test$/)
      assert.equal(out.resolved, '10.107.0.3')
      assert.deepEqual(out.listed, [
        { hostname: 'api.ngrokd-test', address: '10.107.0.2' },
        { hostname: 'db.ngrokd-test', address: '10.107.0.3' },
      ])
      assert.equal(out.second, false)
      assert.equal(out.backupExists, true)
      assert.equal(out.inflightExists, false)
      assert.equal(out.sameInode, true)
      assert.equal(out.restored, out.original)
      assert.ok((out.logs as string[]).some((l) => /EBUSY/.test(l)), String(out.logs))
      // The machine's own /etc/hosts never saw the block.
      assert.doesNotMatch(readFileSync('/etc/hosts', 'utf8'), /ngrokd-test/)
    },
  )
})

// --- Nobody gets in, nothing is lost: each test below reproduced a failure of the earlier writer ---

describe('HostsFileNameResolver keeps what is not its own', () => {
  let dir: string
  let hosts: string
  let stateDir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ngrokd-hosts-'))
    hosts = join(dir, 'hosts')
    stateDir = join(dir, 'state')
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  const ebusy = () => {
    throw renameError('EBUSY')
  }

  for (const mode of ['rename', 'in-place'] as const) {
    it(`keeps bytes that are not UTF-8 and CRLF line ends byte for byte (${mode})`, async () => {
      const original = Buffer.concat([
        Buffer.from([0xef, 0xbb, 0xbf]), // a UTF-8 byte order mark
        Buffer.from('127.0.0.1 localhost\r\n# caf', 'latin1'),
        Buffer.from([0xe9]), // latin-1 é: not UTF-8
        Buffer.from(' \r\n10.0.0.1 bad.example # ', 'latin1'),
        Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0x80]), // invalid UTF-8 sequences
        Buffer.from('\r\n10.0.0.2 last.example', 'latin1'), // no final line end
      ])
      await writeFile(hosts, original)
      const names = new HostsFileNameResolver({ path: hosts, stateDir, ...(mode === 'in-place' ? { rename: ebusy } : {}) })
      await names.open()
      await names.publish({ records: [API, DB] })
      const published = await readFile(hosts)
      assert.deepEqual(published.subarray(0, original.length), original, 'the user part, byte for byte')
      assert.equal(
        published.subarray(original.length).toString('latin1'),
        `\r\n${HOSTS_BLOCK_BEGIN}\r\n10.107.0.2\tapi.prod\r\n10.107.0.3\tdb.prod\r\n${HOSTS_BLOCK_END}`,
        'the block, with the file\'s CRLF line ends',
      )
      assert.deepEqual(await names.list(), [API, DB])
      await names.publish({ records: [API] })
      await names.publish({ records: [] })
      assert.deepEqual(await readFile(hosts), original, 'removing the block gives back every byte')
    })
  }

  for (const mode of ['rename', 'in-place'] as const) {
    it(`loses no line that another program appends while it rewrites the file (${mode})`, async () => {
      const original = '127.0.0.1\tlocalhost\n# user comment\n'
      await writeFile(hosts, original)
      const names = new HostsFileNameResolver({ path: hosts, stateDir, ...(mode === 'in-place' ? { rename: ebusy } : {}) })
      await names.open()
      const { appended, last } = await rewriteWhileAppending(names, hosts, 60)
      await names.publish({ records: last }) // the next reconcile
      await names.close()
      const text = await readFile(hosts, 'utf8')
      assert.ok(appended > 0)
      assert.deepEqual(appendedNumbers(text), [...Array(appended).keys()], `lines lost or reordered (${appended} appended)`)
      assert.equal(updateHostsText(text, []).text, original + appendedText(appended), 'the file outside the block')
      assert.deepEqual(parseHostsBlock(text).records, last)
    })
  }

  const leasesHere = process.platform === 'linux' ? false : 'needs Linux file leases to know who still writes a replaced copy'
  it('carries over lines written to the replaced copy by a program that had it open across the rename', { skip: leasesHere }, async () => {
    await writeFile(hosts, '127.0.0.1 localhost\n')
    const names = new HostsFileNameResolver({ path: hosts, stateDir })
    await names.open()
    const early = openSync(hosts, 'a') // opened before the rename, like `echo … >> /etc/hosts` at that moment
    await names.publish({ records: [API] })
    writeSync(early, '10.0.0.1 early.example\n') // lands in the replaced copy
    assert.doesNotMatch(await readFile(hosts, 'utf8'), /early/)
    assert.deepEqual(await names.publish({ records: [API] }), { changed: true }, 'the next publish carries it over')
    assert.equal(await readFile(hosts, 'utf8'), `127.0.0.1 localhost\n${HOSTS_BLOCK_BEGIN}\n10.107.0.2\tapi.prod\n${HOSTS_BLOCK_END}\n10.0.0.1 early.example\n`)
    writeSync(early, '10.0.0.2 later.example\n') // still open for writing: still watched
    closeSync(early)
    await names.close() // close() carries over what came since
    assert.match(await readFile(hosts, 'utf8'), /10\.0\.0\.1 early\.example\n10\.0\.0\.2 later\.example\n$/)
  })

  it('saves an edit to a replaced copy that is not an append, and says so', { skip: leasesHere }, async () => {
    await writeFile(hosts, '127.0.0.1 localhost\n')
    const logger = recordingLogger()
    const names = new HostsFileNameResolver({ path: hosts, stateDir, logger })
    await names.open()
    const early = openSync(hosts, 'r+')
    await names.publish({ records: [API] })
    writeSync(early, '127.0.0.2', 0) // an edit in the middle of the replaced copy
    closeSync(early)
    assert.deepEqual(await names.publish({ records: [API] }), { changed: false })
    assert.equal(await readFile(join(stateDir, HOSTS_UNMERGED_FILE), 'utf8'), '127.0.0.2 localhost\n')
    assert.ok(logger.lines.some((l) => l.level === 'error' && /other than by appending/.test(l.msg)), JSON.stringify(logger.lines))
    await names.close()
  })

  describe('after an in-place write was interrupted (backup, new content and marker in state_dir)', () => {
    const OLD = Buffer.from(`127.0.0.1 localhost\n# mine\n${HOSTS_BLOCK_BEGIN}\n10.107.0.2\tapi.prod\n${HOSTS_BLOCK_END}\n10.0.0.9 after.example\n`)
    const NEW = Buffer.from(`127.0.0.1 localhost\n# mine\n${HOSTS_BLOCK_BEGIN}\n10.107.0.2\tapi.prod\n10.107.0.3\tdb.prod\n${HOSTS_BLOCK_END}\n10.0.0.9 after.example\n`)
    const interruptedWrite = (file: Buffer) => leaveInterruptedWrite({ hosts, stateDir }, OLD, NEW, file)

    it('keeps an admin\'s edit made after the write had completed', async () => {
      const edited = Buffer.concat([NEW, Buffer.from('10.0.0.10 admin.example\n')])
      await interruptedWrite(edited)
      const logger = recordingLogger()
      const names = new HostsFileNameResolver({ path: hosts, stateDir, logger })
      await names.open()
      assert.deepEqual(await readFile(hosts), edited, 'the admin\'s edit is kept')
      assert.equal(existsSync(join(stateDir, HOSTS_INFLIGHT_FILE)), false)
      assert.deepEqual(await readFile(join(stateDir, HOSTS_BACKUP_FILE)), OLD, 'the backup is kept for the admin')
      assert.ok(logger.lines.some((l) => l.level === 'warn' && /changed since/.test(l.msg)), JSON.stringify(logger.lines))
    })

    it('keeps a write that completed before the crash', async () => {
      await interruptedWrite(NEW)
      const names = new HostsFileNameResolver({ path: hosts, stateDir })
      await names.open()
      assert.deepEqual(await readFile(hosts), NEW)
      assert.equal(existsSync(join(stateDir, HOSTS_INFLIGHT_FILE)), false)
    })

    it('restores the backup when the file is torn: each byte the old or the new one', async () => {
      // cut after the new content's first bytes, the rest still the old content's: the block is broken
      const torn = Buffer.concat([NEW.subarray(0, 100), OLD.subarray(100)])
      assert.notDeepEqual(torn, OLD)
      assert.notDeepEqual(torn, NEW)
      await interruptedWrite(torn)
      const names = new HostsFileNameResolver({ path: hosts, stateDir })
      await names.open()
      assert.deepEqual(await readFile(hosts), OLD)
      assert.equal(existsSync(join(stateDir, HOSTS_INFLIGHT_FILE)), false)
    })
  })

  it('removes its own temp files left by a killed process, and nothing else', async () => {
    await writeFile(hosts, ORIGINAL)
    await mkdir(stateDir)
    const dead = spawnSync(process.execPath, ['-e', '']).pid! // exited: its pid is not alive
    const alive = process.pid
    const ours = [join(dir, `.hosts.${dead}.0a1b2c3d.tmp`), join(stateDir, `.${HOSTS_BACKUP_FILE}.${dead}.deadbeef.tmp`)]
    const kept = [
      join(dir, `.hosts.${alive}.0a1b2c3d.tmp`), // its writer is alive
      join(dir, `.hosts.${dead}.0a1b2c3.tmp`), // not our pattern: 7 hex digits
      join(dir, `.hosts.${dead}.0a1b2c3d.tmp.keep`),
      join(dir, `.other.${dead}.0a1b2c3d.tmp`), // not the hosts file's temp file
      join(dir, `hosts.${dead}.0a1b2c3d.tmp`),
    ]
    for (const f of [...ours, ...kept]) await writeFile(f, 'x')
    // and one left the real way: a writer killed (SIGKILL) between writing its temp file and the rename
    const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js'
    const atomic = new URL(`../util/atomic-file${ext}`, import.meta.url).href
    const killed = spawnSync(process.execPath, [...process.execArgv.filter((a) => !a.startsWith('--test')), '--input-type=module', '-e', `const { stageFile } = await import(${JSON.stringify(atomic)}); await stageFile(${JSON.stringify(hosts)}, 'half'); process.kill(process.pid, 'SIGKILL')`])
    assert.equal(killed.signal, 'SIGKILL', killed.stderr?.toString())
    const leftByKill = (await readdir(dir)).filter((f) => f.startsWith(`.hosts.${killed.pid}.`))
    assert.equal(leftByKill.length, 1, 'the killed writer left its temp file')
    ours.push(join(dir, leftByKill[0]!))
    const keptDir = join(dir, `.hosts.${dead}.00000000.tmp`) // a directory: never ours
    await mkdir(keptDir)
    const keptLink = join(dir, `.hosts.${dead}.11111111.tmp`) // a symlink: never ours
    await symlink(hosts, keptLink)
    const names = new HostsFileNameResolver({ path: hosts, stateDir })
    await names.open()
    for (const f of ours) assert.equal(existsSync(f), false, `${f} is removed`)
    for (const f of [...kept, keptDir]) assert.equal(existsSync(f), true, `${f} is kept`)
    assert.ok((await lstat(keptLink)).isSymbolicLink())
    assert.equal(await readFile(hosts, 'utf8'), ORIGINAL)
  })
})

// Full disks and concurrent writers on a real bind mount, in private mount namespaces.
describe('HostsFileNameResolver on a full disk and a bind mount (tmpfs, private mount namespace)', () => {
  const skip = !privileged ? 'needs root on Linux' : !unshareAvailable ? 'unshare --mount is not available' : false
  for (const scenario of ['in-place-full-disk', 'rename-full-disk', 'in-place-concurrent-append']) {
    it(scenario, { skip }, () => {
      const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js'
      const child = fileURLToPath(new URL(`./test-fixtures/hosts-scenario-child${ext}`, import.meta.url))
      const execArgv = process.execArgv.filter((a) => !a.startsWith('--test'))
      const r = spawnSync('unshare', ['--mount', '--propagation', 'private', process.execPath, ...execArgv, child, scenario], {
        encoding: 'utf8',
        env: { ...process.env, NGROKD_TEST_PARENT_MNTNS: readlinkSync('/proc/self/ns/mnt') },
      })
      assert.equal(r.status, 0, r.stderr)
      assert.equal(r.stdout.trim(), `ok ${scenario}`)
    })
  }
})
