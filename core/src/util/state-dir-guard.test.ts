import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { acceptStateDir, refuseStateDir, writeStateFile } from './state-dir-guard.js'

test('a state file is written 0600 unless its state dir is refused; a folder beside it with the same prefix is not', async () => {
  const top = mkdtempSync(join(tmpdir(), 'ngrokd-guard-'))
  const dir = join(top, 'state')
  try {
    await writeStateFile(join(dir, 'a.json'), '{}\n')
    assert.equal(statSync(join(dir, 'a.json')).mode & 0o777, 0o600)
    refuseStateDir(dir, 'a test refuses it')
    await assert.rejects(writeStateFile(join(dir, 'b.json'), '{}\n'), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED') && e.message === `state_dir ${dir} is refused (a test refuses it): ${join(dir, 'b.json')} is not written there`)
    await writeStateFile(join(`${dir}-other`, 'c.json'), '{}\n')
    assert.deepEqual(readdirSync(dir), ['a.json'])
    acceptStateDir(dir)
    await writeStateFile(join(dir, 'b.json'), '{"b":1}\n')
    assert.equal(readFileSync(join(dir, 'b.json'), 'utf8'), '{"b":1}\n')
  } finally {
    acceptStateDir(dir)
    rmSync(top, { recursive: true, force: true })
  }
})
