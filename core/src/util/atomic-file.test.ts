import { describe, it, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isProcessAlive, removeStaleTempFiles, removeStaleTempFilesIn, stageFile, writeFileAtomic, writeFileAtomicSync } from './atomic-file.js'

describe('atomic files', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ngrokd-atomic-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('replaces a file with the mode given, leaving no temp file (async and sync)', async () => {
    const file = join(dir, 'state.json')
    await writeFile(file, 'old')
    const inode = (await stat(file)).ino
    await writeFileAtomic(file, 'new', { mode: 0o600 })
    assert.equal(await readFile(file, 'utf8'), 'new')
    assert.equal((await stat(file)).mode & 0o777, 0o600)
    assert.notEqual((await stat(file)).ino, inode)
    writeFileAtomicSync(join(dir, 'sub', 'other'), Buffer.from('sync'), { mode: 0o640 })
    assert.equal(await readFile(join(dir, 'sub', 'other'), 'utf8'), 'sync')
    assert.equal((await stat(join(dir, 'sub', 'other'))).mode & 0o777, 0o640)
    assert.deepEqual((await readdir(dir)).sort(), ['state.json', 'sub'])
  })

  it('makes a missing folder 0700 whatever the umask (a state dir removed under the daemon comes back closed), or the mode asked for', { skip: process.platform === 'win32' && 'POSIX modes' }, async () => {
    const umask = process.umask(0o022)
    try {
      await writeFileAtomic(join(dir, 'state', 'allocations.json'), '{}', { mode: 0o600 })
      writeFileAtomicSync(join(dir, 'sync', 'sub', 'hosts.ngrokd-backup'), Buffer.from('x'), { mode: 0o600 })
      await writeFileAtomic(join(dir, 'resolver', 'prod'), 'nameserver 127.0.0.1\n', { mode: 0o644, dirMode: 0o755 })
    } finally {
      process.umask(umask)
    }
    for (const made of ['state', 'sync', join('sync', 'sub')]) assert.equal((await stat(join(dir, made))).mode & 0o777, 0o700, made)
    assert.equal((await stat(join(dir, 'resolver'))).mode & 0o777, 0o755)
  })

  it('stages a complete temp file named for its writer, and discards it', async () => {
    const file = join(dir, 'hosts')
    const staged = await stageFile(file, 'content', { mode: 0o644 })
    assert.match(staged.temp, new RegExp(`/\\.hosts\\.${process.pid}\\.[0-9a-f]{8}\\.tmp$`))
    assert.equal(await readFile(staged.temp, 'utf8'), 'content')
    assert.equal(existsSync(file), false)
    await staged.discard()
    assert.deepEqual(await readdir(dir), [])
  })

  it('removes only temp files of writes to the file whose process is gone', async () => {
    const file = join(dir, 'hosts')
    await writeFile(file, 'keep')
    const dead = spawnSync(process.execPath, ['-e', '']).pid!
    assert.equal(isProcessAlive(dead), false)
    assert.equal(isProcessAlive(process.pid), true)
    const stale = [join(dir, `.hosts.${dead}.0a1b2c3d.tmp`), join(dir, `.hosts.${dead}.ffffffff.tmp`)]
    const kept = [
      join(dir, `.hosts.${process.pid}.0a1b2c3d.tmp`), // a live writer
      join(dir, `.hosts.1.0a1b2c3d.tmp`), // pid 1 is always alive
      join(dir, `.hosts.${dead}.0A1B2C3D.tmp`), // not our spelling
      join(dir, `.hosts.${dead}.0a1b2c3d.tmp~`),
      join(dir, `.hosts.bak.${dead}.0a1b2c3d.tmp`), // another file's temp file
      join(dir, `hosts.${dead}.0a1b2c3d.tmp`),
    ]
    for (const f of [...stale, ...kept]) await writeFile(f, 'x')
    await mkdir(join(dir, `.hosts.${dead}.00000000.tmp`))
    await symlink(file, join(dir, `.hosts.${dead}.11111111.tmp`))
    assert.deepEqual((await removeStaleTempFiles(file)).sort(), stale.sort())
    for (const f of kept) assert.equal(existsSync(f), true, f)
    assert.ok((await lstat(join(dir, `.hosts.${dead}.00000000.tmp`))).isDirectory())
    assert.ok((await lstat(join(dir, `.hosts.${dead}.11111111.tmp`))).isSymbolicLink())
    assert.equal(await readFile(file, 'utf8'), 'keep')
    assert.deepEqual(await removeStaleTempFiles(join(dir, 'missing-dir', 'x')), [])
  })

  it('sweeps a state directory: the dead writers’ temp files of every file, nothing else', async () => {
    const dead = spawnSync(process.execPath, ['-e', '']).pid!
    const stale = [join(dir, `.allocations.json.${dead}.7bfdbe96.tmp`), join(dir, `.endpoints.json.${dead}.deadbeef.tmp`)]
    const kept = [join(dir, `.allocations.json.${process.pid}.7bfdbe96.tmp`), join(dir, 'allocations.json'), join(dir, `endpoints.json.${dead}.deadbeef.tmp`)]
    for (const f of [...stale, ...kept]) await writeFile(f, 'x')
    assert.deepEqual((await removeStaleTempFilesIn(dir)).sort(), stale.sort())
    for (const f of kept) assert.equal(existsSync(f), true, f)
  })
})
