import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, chown, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { localUser, localUserSkip } from '../util/local-user.test-helper.js'
import { checkApiKey, readApiKeyFile, saveApiKeyFile } from './api-key-file.js'

const KEY = '2uJAnotarealkey_3fQk8vRmX0cT7nWbL5yZpA1dE'

describe('the API key file', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ngrokd-apikey-'))
  })
  after(() => rm(dir, { recursive: true, force: true }))

  it('creates state_dir 0700 and the key file 0600, whole', async () => {
    const stateDir = join(dir, 'var', 'lib', 'ngrokd')
    const path = await saveApiKeyFile(stateDir, `  ${KEY}\n`)
    assert.equal(path, join(stateDir, 'api-key'))
    assert.equal((await stat(stateDir)).mode & 0o777, 0o700)
    assert.equal((await stat(path)).mode & 0o777, 0o600)
    assert.equal(await readFile(path, 'utf8'), `${KEY}\n`)
    assert.equal(await readApiKeyFile(stateDir), KEY)
    assert.equal(await readApiKeyFile(join(dir, 'none')), undefined)
  })

  it('a key file written by hand that others may read is made 0600 as the daemon reads it (doctor only reads)', async () => {
    const stateDir = join(dir, 'by-hand')
    await mkdir(stateDir, { mode: 0o700 })
    await writeFile(join(stateDir, 'api-key'), `${KEY}\n`, { mode: 0o644 })
    await chmod(join(stateDir, 'api-key'), 0o644)
    assert.equal(await readApiKeyFile(stateDir), KEY)
    assert.equal((await stat(join(stateDir, 'api-key'))).mode & 0o777, 0o644)
    const told: Array<[string, number]> = []
    assert.equal(await readApiKeyFile(stateDir, { tighten: true, onTightened: (path, mode) => told.push([path, mode]) }), KEY)
    assert.equal((await stat(join(stateDir, 'api-key'))).mode & 0o777, 0o600)
    assert.deepEqual(told, [[join(stateDir, 'api-key'), 0o644]], 'said, with the mode it had')
    await readApiKeyFile(stateDir, { tighten: true, onTightened: (path, mode) => told.push([path, mode]) })
    assert.equal(told.length, 1, 'a file already 0600 is no news')
  })

  it('a folder where the key file goes is said with its fix, by the save as by the read', async () => {
    const stateDir = join(dir, 'folder-in-place')
    await mkdir(join(stateDir, 'api-key'), { recursive: true })
    for (const attempt of [() => saveApiKeyFile(stateDir, 'ak_valid_key_1234567890'), () => readApiKeyFile(stateDir)]) {
      await assert.rejects(attempt(), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_STATE') && /api-key is a directory$/.test(e.message) && /^remove it \(rm -r .*api-key\)/.test(e.hint ?? ''))
    }
  })

  it('refuses what is not an API key, saying why without repeating it, and saves nothing', async () => {
    const cases: Array<[unknown, RegExp]> = [
      ['', /is empty/],
      ['my key is ak_1234567890', /contains whitespace/],
      [`${KEY}\n${KEY}x`, /contains whitespace/],
      ['ab_12', /is 5 characters long, too short/],
      ['x'.repeat(600), /is 600 characters long, too long/],
      ['ak_12345678;rm$(id)', /characters other than letters, digits, _ and -/],
      [42, /is not text/],
    ]
    for (const [key, why] of cases) {
      const stateDir = join(dir, `bad-${cases.findIndex((c) => c[0] === key)}`)
      await assert.rejects(saveApiKeyFile(stateDir, key), (e: unknown) => {
        assert.ok(isNgrokdError(e, 'NGROKD_ERR_API_KEY_MALFORMED'), String(e))
        assert.match(e.message, why)
        if (typeof key === 'string' && key.length > 4) assert.ok(!e.message.includes(key), 'the message does not repeat the key')
        return true
      })
      assert.equal(existsSync(stateDir), false, 'nothing was created')
    }
    assert.equal(checkApiKey(` ${KEY} `), KEY)
  })

  it("a malformed key's hint gives the command that reaches the daemon meant, else none with sudo or flags of its own", () => {
    const hintOf = (setKeyCommand?: string): string | undefined => {
      try {
        checkApiKey('abc', 'the key given', setKeyCommand)
      } catch (e) {
        return isNgrokdError(e, 'NGROKD_ERR_API_KEY_MALFORMED') ? e.hint : String(e)
      }
      return undefined
    }
    assert.match(hintOf('ngrokd set-api-key --config /home/ann/ngrokd.yml') ?? '', /run: echo "\$KEY" \| ngrokd set-api-key --config \/home\/ann\/ngrokd\.yml$/)
    assert.match(hintOf() ?? '', /give it with ngrokd set-api-key$/)
    assert.doesNotMatch(hintOf() ?? '', /sudo/)
  })

  it('as root: refuses a key file or state_dir another user could have written', { skip: localUserSkip() }, async () => {
    const eve = localUser()!
    const stateDir = join(dir, 'planted-state')
    await mkdir(stateDir, { mode: 0o700 })
    await writeFile(join(stateDir, 'api-key'), 'ak_eves_own_key_1234\n', { mode: 0o600 })
    await chown(join(stateDir, 'api-key'), eve.uid, eve.gid)
    await assert.rejects(readApiKeyFile(stateDir), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED') && e.message.includes(`is owned by ${eve.name}`))
    const eveState = join(dir, 'eve-state')
    await mkdir(eveState, { mode: 0o755 })
    await chown(eveState, eve.uid, eve.gid)
    await assert.rejects(saveApiKeyFile(eveState, KEY), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED'))
    assert.equal(existsSync(join(eveState, 'api-key')), false, 'the key was not written where eve can take it')
    await chmod(eveState, 0o700)
  })

  it("a user whom root's state_dir (0700) shuts out is told so with its fix, as for one it cannot make", { skip: localUserSkip() }, async () => {
    const user = localUser()!
    const open = await mkdtemp(join(tmpdir(), 'ngrokd-apikey-'))
    try {
      await chmod(open, 0o755)
      const stateDir = join(open, 'state')
      await mkdir(stateDir, { mode: 0o700 })
      const probe = `import(${JSON.stringify(new URL('./api-key-file.js', import.meta.url).href)}).then((m) => m.saveApiKeyFile(${JSON.stringify(stateDir)}, ${JSON.stringify(KEY)})).then(() => process.stdout.write('saved'), (e) => process.stdout.write(JSON.stringify({ code: e.code, message: e.message, hint: e.hint })))`
      const child = spawn('setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', process.execPath, '-e', probe], { stdio: ['ignore', 'pipe', 'inherit'] })
      let out = ''
      child.stdout.on('data', (d: Buffer) => (out += d.toString()))
      await once(child, 'exit')
      assert.deepEqual(JSON.parse(out), {
        code: 'NGROKD_ERR_PERMISSION',
        message: `state_dir ${stateDir} cannot be created or written: EACCES`,
        hint: 'run ngrokd as root (sudo), or set state_dir to a directory you own',
      })
    } finally {
      await rm(open, { recursive: true, force: true })
    }
  })
})
