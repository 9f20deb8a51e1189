import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync } from 'node:fs'
import { chown, lchown, mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { prepareStateDir, stateDirError, WINDOWS_STATE_DIR_SDDL } from './state-dir.js'
import { ControlServer } from '../control/control-server.js'
import { silentLogger } from '../contracts/logger.js'
import { localUser, localUserSkip } from '../util/local-user.test-helper.js'

test('prepareStateDir makes a missing state_dir 0700, and says with a code and a fix when it cannot', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ngrokd-state-dir-'))
  try {
    const made = join(dir, 'a', 'b')
    await prepareStateDir(made)
    assert.equal((await stat(made)).mode & 0o777, 0o700)
    const file = join(dir, 'hosts')
    await writeFile(file, '')
    for (const path of [file, join(file, 'below')]) {
      await assert.rejects(prepareStateDir(path), (e: unknown) => {
        assert.ok(isNgrokdError(e, 'NGROKD_ERR_STATE'), String(e))
        assert.match(e.message, new RegExp(`^state_dir ${path} is not a directory \\((EEXIST|ENOTDIR)`))
        assert.equal(e.hint, 'set state_dir to a directory (ngrokd creates a missing one)')
        return true
      })
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('a refusal for lack of privilege names state_dir and how to get it; a full or read-only disk says so, with its fix; other errors pass through', () => {
  const denied = stateDirError('/var/lib/ngrokd', Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' }))
  assert.ok(isNgrokdError(denied, 'NGROKD_ERR_PERMISSION'))
  assert.equal(denied.message, 'state_dir /var/lib/ngrokd cannot be created or written: EACCES')
  // as root, the fix is the folder's attributes (util/state-dir-problem.test.ts)
  if (process.getuid?.() === 0) assert.match(denied.hint!, /^\/var\/lib\/ngrokd or a file in it refuses even root/)
  else assert.equal(denied.hint, 'run ngrokd as root (sudo), or set state_dir to a directory you own')
  const full = stateDirError('/var/lib/ngrokd', Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }))
  assert.ok(isNgrokdError(full, 'NGROKD_ERR_STATE'))
  assert.equal(full.message, 'state_dir /var/lib/ngrokd cannot be written: no space left on its device (ENOSPC)')
  assert.match(full.hint!, /free space .*df -h \/var\/lib\/ngrokd/)
  // a read-only file system is not a privilege root lacks
  const readOnly = stateDirError('/var/lib/ngrokd', Object.assign(new Error('EROFS: read-only file system, mkdir'), { code: 'EROFS' }))
  assert.ok(isNgrokdError(readOnly, 'NGROKD_ERR_STATE'))
  assert.equal(readOnly.message, 'state_dir /var/lib/ngrokd cannot be written: its file system is read-only (EROFS)')
  assert.match(readOnly.hint!, /^remount the file system of \/var\/lib\/ngrokd read-write, or set state_dir to a directory on a writable one$/)
  const other = Object.assign(new Error('EIO'), { code: 'EIO' })
  assert.equal(stateDirError('/var/lib/ngrokd', other), other)
})

test('on Windows, elevated, every folder the state dir needs is created top down with the protected DACL; unelevated, plainly', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ngrokd-state-dir-'))
  try {
    const made: Array<[string, string]> = []
    const security = () => ({
      createDirectory(path: string, sddl: string) {
        made.push([path, sddl])
        mkdirSync(path)
        return true
      },
    })
    const state = join(dir, 'ProgramData', 'ngrokd', 'state')
    await prepareStateDir(state, { platform: 'win32', elevated: true, security })
    assert.equal(WINDOWS_STATE_DIR_SDDL, 'O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)')
    assert.deepEqual(made, [join(dir, 'ProgramData'), join(dir, 'ProgramData', 'ngrokd'), state].map((p) => [p, WINDOWS_STATE_DIR_SDDL]))
    made.length = 0
    await prepareStateDir(state, { platform: 'win32', elevated: true, security })
    assert.deepEqual(made, [], 'a folder already there is left to the trust check')
    await prepareStateDir(join(dir, 'user'), { platform: 'win32', elevated: false, security })
    assert.deepEqual(made, [], 'unelevated: mkdir, what the user may do anyway')
    assert.ok((await stat(join(dir, 'user'))).isDirectory())
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test("as root, nothing is made through another user's link: the state dir and the control socket's folder are refused before any mkdir", { skip: localUserSkip() }, async () => {
  const user = localUser()!
  const top = await mkdtemp(join(tmpdir(), 'ngrokd-mklink-'))
  try {
    const target = join(top, 'target') // root's folder, which the other user points a link at
    mkdirSync(target)
    const theirs = join(top, 'theirs')
    mkdirSync(theirs)
    await chown(theirs, user.uid, user.gid)
    await symlink(target, join(theirs, 'lnk'))
    await lchown(join(theirs, 'lnk'), user.uid, user.gid)
    await assert.rejects(prepareStateDir(join(theirs, 'lnk', 'state', 'st'), { elevated: true }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED'))
    const control = new ControlServer({ socketPath: join(theirs, 'lnk', 'run', 'ngrokd.sock'), logger: silentLogger, routes: {} })
    await assert.rejects(control.start(), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED'))
    await control.close()
    assert.deepEqual(await readdir(target), [], 'nothing was made where the link leads')
    // a link that appears where a folder is to be made (raced into a sticky /tmp after the check; here one that leads
    // nowhere, which counts as missing when the check looks) is refused, never followed
    await symlink(join(top, 'nowhere'), join(top, 'dangling'))
    await assert.rejects(prepareStateDir(join(top, 'dangling', 'st'), { elevated: true }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED') && /appeared while it was being made, and is a link/.test((e as Error).message))
    assert.equal(existsSync(join(top, 'nowhere')), false, 'nothing was made where it leads')
    // made right under a sticky, root-owned /tmp: fine, as before (nobody else may replace root's folder there)
    const direct = join(tmpdir(), `ngrokd-mkdirect-${process.pid}`)
    try {
      assert.equal(await prepareStateDir(join(direct, 'st'), { elevated: true }), join(direct, 'st'))
    } finally {
      await rm(direct, { recursive: true, force: true })
    }
  } finally {
    await rm(top, { recursive: true, force: true })
  }
})

test('a state_dir under a folder that takes no new folders (/proc: its mkdir fails ENOENT) is said with its fix, not as a bare errno', () => {
  const e = stateDirError('/proc/ngrokd-state', Object.assign(new Error("ENOENT: no such file or directory, mkdir '/proc/ngrokd-state'"), { code: 'ENOENT', syscall: 'mkdir' }))
  assert.ok(isNgrokdError(e, 'NGROKD_ERR_STATE'))
  assert.match(e.message, /^state_dir \/proc\/ngrokd-state cannot be created \(ENOENT: a folder above it takes no new folders/)
  assert.match(e.hint ?? '', /default is \/var\/lib\/ngrokd/)
  const other = Object.assign(new Error('ENOENT: no such file or directory, open'), { code: 'ENOENT', syscall: 'open' })
  assert.equal(stateDirError('/var/lib/ngrokd', other), other, 'a file gone under it is no folder that cannot be made')
})
