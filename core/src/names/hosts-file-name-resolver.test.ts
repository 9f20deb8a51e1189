import { describe, it, before, after, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { chmod, chown, mkdir, mkdtemp, readFile, rm, stat, symlink, lstat, writeFile, readlink } from 'node:fs/promises'
import { existsSync, readFileSync, readlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Logger } from '../contracts/logger.js'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { HostsFileNameResolver, HOSTS_BACKUP_FILE, HOSTS_INFLIGHT_FILE } from './hosts-file-name-resolver.js'
import { HOSTS_BLOCK_BEGIN, HOSTS_BLOCK_END, parseHostsBlock } from './hosts-block.js'
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
      replaceFile: async () => Promise.reject(Object.assign(new Error('EBUSY: resource busy'), { code: 'EBUSY' })),
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
      const replaceFile = async () => {
        attempts++
        throw renameError(code)
      }
      const inode = (await stat(hosts)).ino
      const names = new HostsFileNameResolver({ path: hosts, stateDir, logger, replaceFile })
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

  it('reports other write failures as NGROKD_ERR_HOSTS_FILE and leaves the file alone', async () => {
    const names = new HostsFileNameResolver({ path: hosts, stateDir, replaceFile: async () => Promise.reject(renameError('EIO')) })
    await names.open()
    await assert.rejects(names.publish({ records: [API] }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_HOSTS_FILE') && /EIO/.test(e.message))
    assert.equal(await readFile(hosts, 'utf8'), ORIGINAL)
  })

  it('rewrites in place when the directory refuses the temp file (EACCES) but the file itself is writable', async () => {
    // e.g. an unprivileged user namespace with a file of its own bind-mounted over /etc/hosts
    const inode = (await stat(hosts)).ino
    const names = new HostsFileNameResolver({ path: hosts, stateDir, replaceFile: async () => Promise.reject(renameError('EACCES')) })
    await names.open()
    assert.deepEqual(await names.publish({ records: [API, DB] }), { changed: true })
    assert.equal(await readFile(hosts, 'utf8'), `${ORIGINAL}\n${BLOCK}`)
    assert.equal((await stat(hosts)).ino, inode)
    assert.equal(await readFile(join(stateDir, HOSTS_BACKUP_FILE), 'utf8'), ORIGINAL)
  })

  it('open() restores the file from the backup after an in-place write was cut off', async () => {
    // What a crash halfway through the in-place write leaves behind: backup, marker, a torn file.
    await mkdir(stateDir, { recursive: true })
    await writeFile(join(stateDir, HOSTS_BACKUP_FILE), ORIGINAL)
    await writeFile(join(stateDir, HOSTS_INFLIGHT_FILE), JSON.stringify({ path: hosts, startedAt: new Date().toISOString() }))
    await writeFile(hosts, `${ORIGINAL}\n${HOSTS_BLOCK_BEGIN}\n10.107.0.2\tap`)
    const inode = (await stat(hosts)).ino
    const logger = recordingLogger()
    const names = new HostsFileNameResolver({ path: hosts, stateDir, logger })
    await names.open()
    assert.equal(await readFile(hosts, 'utf8'), ORIGINAL)
    assert.equal((await stat(hosts)).ino, inode) // restored in place: works on a bind mount too
    assert.equal(existsSync(join(stateDir, HOSTS_INFLIGHT_FILE)), false)
    assert.ok(logger.lines.some((l) => l.level === 'warn' && /restored .* after an interrupted write/.test(l.msg)))
  })

  it('publish() before open() or after close() rejects; open() recovers before the first write', async () => {
    await mkdir(stateDir, { recursive: true })
    await writeFile(join(stateDir, HOSTS_BACKUP_FILE), ORIGINAL)
    await writeFile(join(stateDir, HOSTS_INFLIGHT_FILE), JSON.stringify({ path: hosts }))
    await writeFile(hosts, '127.0.0.1 loc') // torn: the user's lines are gone
    const names = new HostsFileNameResolver({ path: hosts, stateDir })
    await assert.rejects(names.publish({ records: [API] }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_DRIVER_MISUSE'))
    assert.equal(await readFile(hosts, 'utf8'), '127.0.0.1 loc')
    await names.open()
    await names.publish({ records: [API] })
    assert.equal(await readFile(hosts, 'utf8'), `${ORIGINAL}\n${HOSTS_BLOCK_BEGIN}\n10.107.0.2\tapi.prod\n${HOSTS_BLOCK_END}`)
    await names.close()
    await assert.rejects(names.publish({ records: [] }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_DRIVER_MISUSE'))
  })

  it('drops a marker without a backup, logs it and leaves the file alone', async () => {
    await mkdir(stateDir, { recursive: true })
    await writeFile(join(stateDir, HOSTS_INFLIGHT_FILE), JSON.stringify({ path: hosts }))
    const logger = recordingLogger()
    const names = new HostsFileNameResolver({ path: hosts, stateDir, logger })
    await names.open()
    assert.equal(await readFile(hosts, 'utf8'), ORIGINAL)
    assert.equal(existsSync(join(stateDir, HOSTS_INFLIGHT_FILE)), false)
    assert.ok(logger.lines.some((l) => l.level === 'error' && /cannot be read/.test(l.msg)))
  })

  it('warns once per hostname about user lines naming our hostnames', async () => {
    await writeFile(hosts, '127.0.0.1 localhost\n10.0.0.1 api.prod\n')
    const logger = recordingLogger()
    const names = new HostsFileNameResolver({ path: hosts, stateDir, logger })
    await names.open()
    await names.publish({ records: [API, DB] })
    await names.publish({ records: [API, DB] })
    await names.publish({ records: [API] })
    const warnings = () => logger.lines.filter((l) => l.level === 'warn' && /also names/.test(l.msg)).map((l) => l.msg)
    assert.equal(warnings().length, 1)
    assert.match(warnings()[0]!, /api\.prod/)
    // The user's line is kept.
    assert.match(await readFile(hosts, 'utf8'), /^127\.0\.0\.1 localhost\n10\.0\.0\.1 api\.prod\n/)
    // Gone and back: warned again.
    await names.publish({ records: [DB] })
    await names.publish({ records: [API] })
    assert.equal(warnings().length, 2)
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
