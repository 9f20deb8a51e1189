import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chownSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { localUser, localUserSkip } from '../util/local-user.test-helper.js'
import { daemonCommandLine } from './daemon-command.js'

test("a hint's command line reaches this config's daemon, under sudo when its state (or the folder it would be made in) is root's", { skip: localUserSkip() }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ngrokd-daemon-command-'))
  try {
    const user = localUser()!
    const home = join(dir, 'home')
    mkdirSync(home)
    chownSync(home, user.uid, user.gid)
    assert.equal(daemonCommandLine('set-api-key', { stateDir: join(dir, 'not', 'yet') }, undefined), 'sudo ngrokd set-api-key')
    assert.equal(daemonCommandLine('run', { stateDir: join(dir, 'state'), instance: 'work' }, '/etc/ngrokd/work.yml'), 'sudo ngrokd run --instance work')
    assert.equal(daemonCommandLine('set-api-key', { stateDir: join(home, 'state') }, join(home, 'ngrokd.yaml')), `ngrokd set-api-key --config ${join(home, 'ngrokd.yaml')}`)
    assert.equal(daemonCommandLine('run', { stateDir: join(dir, 'state') }, undefined, 'win32'), 'ngrokd run', 'Windows has no sudo')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
