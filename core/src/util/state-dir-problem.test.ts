import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { writeStateFile } from './state-dir-guard.js'
import { stateDirProblem } from './state-dir-problem.js'

describe('stateDirProblem: a refused write (EACCES, EPERM)', () => {
  const refused = (code: string) => Object.assign(new Error(`${code}: operation not permitted`), { code })

  it('not as root: run as root, or a state_dir of your own', () => {
    for (const code of ['EACCES', 'EPERM']) {
      assert.deepEqual(stateDirProblem('/var/lib/ngrokd', refused(code), { asRoot: false }), {
        code: 'NGROKD_ERR_PERMISSION',
        why: code,
        hint: 'run ngrokd as root (sudo), or set state_dir to a directory you own',
      })
    }
  })

  it('as root: not sudo, but the attributes of the folder or its files, or a security module (the hosts file\'s wording)', () => {
    assert.equal(
      stateDirProblem('/var/lib/ngrokd', refused('EPERM'), { asRoot: true })?.hint,
      '/var/lib/ngrokd or a file in it refuses even root: it is immutable or append-only (lsattr -d /var/lib/ngrokd; lsattr /var/lib/ngrokd; chattr -i -a /var/lib/ngrokd), or a security module (SELinux, AppArmor) denies it',
    )
  })

  it('an immutable state dir (chattr +i) refuses root, and the fix says so', { skip: process.getuid?.() !== 0 && 'needs root (chattr)' }, async (t) => {
    const stateDir = await mkdtemp(join(tmpdir(), 'ngrokd-state-immutable-'))
    try {
      if (spawnSync('chattr', ['+i', stateDir]).status !== 0) return t.skip('chattr +i is not supported here')
      const cause = await writeStateFile(join(stateDir, 'allocations.json'), '{}').then(() => assert.fail('root wrote into an immutable folder'), (e: unknown) => e)
      const problem = stateDirProblem(stateDir, cause)
      assert.equal(problem?.code, 'NGROKD_ERR_PERMISSION', String(cause))
      assert.match(problem.hint, new RegExp(`^${stateDir} or a file in it refuses even root: it is immutable or append-only \\(lsattr -d ${stateDir}; `))
    } finally {
      spawnSync('chattr', ['-i', stateDir])
      await rm(stateDir, { recursive: true, force: true })
    }
  })
})
