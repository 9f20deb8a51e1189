import { describe, it, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { appendFileSync } from 'node:fs'
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { InPlaceWriteFailure, rewriteInPlace } from './in-place-rewrite.js'
import { loadLeases, waitForWritersLock, type Leases } from './leases.js'

const leases = await loadLeases()

describe('rewriteInPlace', () => {
  let dir: string
  let file: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ngrokd-in-place-'))
    file = join(dir, 'hosts')
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  for (const withLeases of [true, false]) {
    const options = withLeases ? { leases } : {}
    const label = withLeases ? 'with leases where the system has them' : 'without leases'
    it(`grows and shrinks the same inode, and says what it wrote over what (${label})`, async () => {
      await writeFile(file, 'a\nb\n')
      const inode = (await stat(file)).ino
      const prepared: string[] = []
      const prepare = (old: Buffer, next: Buffer) => void prepared.push(`${old.toString()}→${next.toString()}`)
      assert.deepEqual(await rewriteInPlace(file, { desired: (c) => Buffer.concat([c, Buffer.from('c\nd\n')]), prepare, ...options }), {
        old: Buffer.from('a\nb\n'),
        next: Buffer.from('a\nb\nc\nd\n'),
      })
      assert.equal(await readFile(file, 'utf8'), 'a\nb\nc\nd\n')
      await rewriteInPlace(file, { desired: () => Buffer.from('z\n'), prepare, ...options })
      assert.equal(await readFile(file, 'utf8'), 'z\n')
      assert.equal((await stat(file)).ino, inode)
      assert.deepEqual(prepared, ['a\nb\n→a\nb\nc\nd\n', 'a\nb\nc\nd\n→z\n'])
      assert.equal(await rewriteInPlace(file, { desired: (c) => c, prepare, ...options }), undefined, 'nothing to change')
      assert.equal(prepared.length, 2)
    })
  }

  it('plans again under the lease when the file changed while the backup was being saved', { skip: leases ? false : 'no file leases on this system' }, async () => {
    await writeFile(file, 'a\n')
    const prepared: string[] = []
    const written = await rewriteInPlace(file, {
      desired: (c) => Buffer.concat([c, Buffer.from('ours\n')]),
      prepare: (old, next) => {
        prepared.push(next.toString())
        if (prepared.length === 1) appendFileSync(file, 'theirs\n') // another program, before the lease
      },
      leases,
    })
    assert.equal(written?.next.toString(), 'a\ntheirs\nours\n')
    assert.deepEqual(prepared, ['a\nours\n', 'a\ntheirs\nours\n'], 'the backup is saved again for what is really overwritten')
    assert.equal(await readFile(file, 'utf8'), 'a\ntheirs\nours\n')
  })

  it('without a lease leaves a file that changed meanwhile alone', async () => {
    await writeFile(file, 'a\n')
    const written = await rewriteInPlace(file, {
      desired: (c) => Buffer.concat([c, Buffer.from('ours\n')]),
      prepare: () => appendFileSync(file, 'theirs\n'),
    })
    assert.equal(written, undefined)
    assert.equal(await readFile(file, 'utf8'), 'a\ntheirs\n')
  })

  it('touches nothing when prepare() fails, and reports a failure to open as it is', async () => {
    await writeFile(file, 'a\n')
    await assert.rejects(
      rewriteInPlace(file, {
        desired: () => Buffer.from('b\n'),
        prepare: () => {
          throw new Error('no backup')
        },
      }),
      (e: unknown) => !(e instanceof InPlaceWriteFailure) && (e as Error).message === 'no backup',
    )
    assert.equal(await readFile(file, 'utf8'), 'a\n')
    await assert.rejects(rewriteInPlace(join(dir, 'missing'), { desired: (c) => c, prepare: () => {} }), (e: unknown) => (e as NodeJS.ErrnoException).code === 'ENOENT')
  })
})

describe('Linux file leases (ffi/lease.ts)', { skip: leases ? false : 'no file leases on this system' }, () => {
  const l = leases as Leases
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ngrokd-lease-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('sees whether another descriptor has the file open for writing', async () => {
    const { openSync, closeSync } = await import('node:fs')
    const file = join(dir, 'f')
    await writeFile(file, 'x')
    const reader = openSync(file, 'r')
    assert.equal(l.hasOtherWriters(reader), false)
    const writer = openSync(file, 'a')
    assert.equal(l.hasOtherWriters(reader), true)
    closeSync(writer)
    assert.equal(l.hasOtherWriters(reader), false)
    closeSync(reader)
  })

  it('grants a write lease only to the one descriptor of the file', async () => {
    const { openSync, closeSync } = await import('node:fs')
    const file = join(dir, 'f')
    await writeFile(file, 'x')
    const fd = openSync(file, 'r+')
    const other = openSync(file, 'r')
    assert.equal(l.takeWriteLease(fd), false)
    closeSync(other)
    assert.equal(l.takeWriteLease(fd), true)
    l.releaseLease(fd)
    closeSync(fd)
  })

  it('holds a rewrite while another ngrokd process rewrites the file, so that neither loses the other\'s lines', async () => {
    const { openSync, closeSync } = await import('node:fs')
    const file = join(dir, 'hosts')
    const lockDir = join(dir, 'run')
    await writeFile(file, '127.0.0.1 localhost\n')
    // the other daemon: it holds the writers' lock (another open file description, which flock sees as another holder)
    await rewriteInPlace(file, { desired: (b) => b, prepare: () => {}, leases: l, lockDir })
    assert.deepEqual(await readdir(lockDir), [], 'a rewrite removes its lock file when it is done')
    const otherFd = openSync(file, 'r')
    const held = await waitForWritersLock(otherFd, l, file, lockDir)
    assert.ok(held)
    const [lockFile] = await readdir(lockDir)
    assert.match(lockFile!, /^hosts-writers-\d+-\d+\.lock$/, 'named by the file\'s device and inode')
    assert.equal((await stat(join(lockDir, lockFile!))).mode & 0o777, 0o600, 'only its owner may open the lock file')
    let leaseAttempts = 0
    const counted: Leases = { ...l, takeWriteLease: (fd) => (leaseAttempts++, l.takeWriteLease(fd)) }
    const rewrite = rewriteInPlace(file, { desired: (b) => Buffer.concat([b, Buffer.from('10.107.0.2 mine.prod\n')]), prepare: () => {}, leases: counted, lockDir })
    for (let i = 0; i < 10; i++) await new Promise((r) => setTimeout(r, 2))
    assert.equal(leaseAttempts, 0, 'it waits for the lock before it reads the file, let alone asks for a lease')
    appendFileSync(file, '10.108.0.2 theirs.prod\n') // the other's write, under its lock
    held!()
    closeSync(otherFd)
    assert.ok(await rewrite, 'the rewrite wrote')
    assert.equal(await readFile(file, 'utf8'), '127.0.0.1 localhost\n10.108.0.2 theirs.prod\n10.107.0.2 mine.prod\n')
  })

  it('takes turns with an ngrokd in another mount namespace (a systemd service has its own) that reaches the file by another path', { skip: process.getuid?.() === 0 ? false : 'needs root (unshare --mount)' }, async () => {
    const { spawn } = await import('node:child_process')
    const { symlinkSync } = await import('node:fs')
    const file = join(dir, 'hosts')
    const lockDir = join(dir, 'run')
    await writeFile(file, '127.0.0.1 localhost\n')
    symlinkSync(file, join(dir, 'other-path'))
    // the other daemon, in a mount namespace of its own: takes the lock through the other path, says so, and on its
    // stdin's end appends its line under the lock and lets go
    const other = spawn('unshare', ['--mount', '--propagation', 'private', process.execPath, '--input-type=module', '-e', `
      const { openSync, appendFileSync } = await import('node:fs')
      const { loadLeases, waitForWritersLock } = await import(${JSON.stringify(new URL('./leases.js', import.meta.url).href)})
      const path = ${JSON.stringify(join(dir, 'other-path'))}
      const release = await waitForWritersLock(openSync(path, 'r'), await loadLeases(), path, ${JSON.stringify(lockDir)})
      process.stdout.write(release ? 'held\\n' : 'none\\n')
      process.stdin.resume().on('end', () => { appendFileSync(path, '10.108.0.2 theirs.prod\\n'); release?.(); process.exit(0) })
    `], { stdio: ['pipe', 'pipe', 'inherit'] })
    const exited = new Promise((resolve) => other.once('exit', resolve))
    const said = await new Promise<string>((resolve) => other.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim())))
    assert.equal(said, 'held')
    let leaseAttempts = 0
    const counted: Leases = { ...l, takeWriteLease: (fd) => (leaseAttempts++, l.takeWriteLease(fd)) }
    const rewrite = rewriteInPlace(file, { desired: (b) => Buffer.concat([b, Buffer.from('10.107.0.2 mine.prod\n')]), prepare: () => {}, leases: counted, lockDir })
    for (let i = 0; i < 10; i++) await new Promise((r) => setTimeout(r, 2))
    assert.equal(leaseAttempts, 0, 'it waits for the other namespace\'s daemon before it reads the file')
    other.stdin!.end()
    assert.equal(await exited, 0)
    assert.ok(await rewrite, 'the rewrite wrote')
    assert.equal(await readFile(file, 'utf8'), '127.0.0.1 localhost\n10.108.0.2 theirs.prod\n10.107.0.2 mine.prod\n')
  })

  it('locks the hosts file itself where the lock file cannot be made (a run dir that is a file), and still writes', async () => {
    const file = join(dir, 'hosts')
    await writeFile(file, '127.0.0.1 localhost\n')
    await writeFile(join(dir, 'run'), 'x') // echo x > /run/ngrokd
    const rewrite = await rewriteInPlace(file, { desired: (b) => Buffer.concat([b, Buffer.from('10.107.0.2 mine.prod\n')]), prepare: () => {}, leases: l, lockDir: join(dir, 'run') })
    assert.ok(rewrite)
    assert.equal(await readFile(file, 'utf8'), '127.0.0.1 localhost\n10.107.0.2 mine.prod\n')
  })

  it('is not held up by a lock anyone who may read the hosts file can take on it', async () => {
    const { openSync, closeSync } = await import('node:fs')
    const file = join(dir, 'hosts')
    await writeFile(file, '127.0.0.1 localhost\n')
    // another user's `flock /etc/hosts sleep 600`: flock needs only read access
    const reader = openSync(file, 'r')
    assert.equal(l.lockWriters(reader), true)
    try {
      const rewrite = await rewriteInPlace(file, { desired: (b) => Buffer.concat([b, Buffer.from('10.107.0.2 mine.prod\n')]), prepare: () => {}, leases: l, lockDir: join(dir, 'run') })
      assert.ok(rewrite, 'the rewrite wrote while the reader still held its lock')
      assert.equal(await readFile(file, 'utf8'), '127.0.0.1 localhost\n10.107.0.2 mine.prod\n')
    } finally {
      l.unlockWriters(reader)
      closeSync(reader)
    }
  })

  it('uses the numbers of the C headers', { skip: process.platform !== 'linux' ? 'Linux only' : false }, async (t) => {
    const { spawnSync } = await import('node:child_process')
    const cc = ['cc', 'gcc', 'clang'].find((c) => !spawnSync(c, ['--version']).error)
    if (!cc) return t.skip('no C compiler to read the headers with')
    const { LEASE_CONSTANTS } = await import('./ffi/lease.js')
    const source = join(dir, 'probe.c')
    await writeFile(
      source,
      `#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/file.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
int main(void) { printf("{\\"F_SETSIG\\":%d,\\"F_SETLEASE\\":%d,\\"F_RDLCK\\":%d,\\"F_WRLCK\\":%d,\\"F_UNLCK\\":%d,\\"EAGAIN\\":%d,\\"SIGURG\\":%d,\\"LOCK_EX\\":%d,\\"LOCK_NB\\":%d,\\"LOCK_UN\\":%d}", F_SETSIG, F_SETLEASE, F_RDLCK, F_WRLCK, F_UNLCK, EAGAIN, SIGURG, LOCK_EX, LOCK_NB, LOCK_UN); return 0; }
`,
    )
    const built = spawnSync(cc, ['-o', join(dir, 'probe'), source], { encoding: 'utf8' })
    assert.equal(built.status, 0, built.stderr)
    const probed = JSON.parse(spawnSync(join(dir, 'probe'), { encoding: 'utf8' }).stdout) as Record<string, number>
    assert.deepEqual(LEASE_CONSTANTS, probed)
  })
})
