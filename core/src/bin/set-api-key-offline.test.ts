// Offline `ngrokd set-api-key` and `ngrokd doctor` with the real CLI: the state directory is made
// 0700, the key file 0600, and what is not an API key is neither saved nor called fine.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NGROKD_BIN } from '../daemon/daemon-process.js'

interface Run {
  code: number
  stdout: string
  stderr: string
}

function cli(args: string[], input?: string, wrap: string[] = []): Promise<Run> {
  return new Promise((resolve) => {
    const [cmd, ...rest] = [...wrap, process.execPath, NGROKD_BIN, ...args]
    const child = execFile(cmd!, rest, { env: { PATH: process.env.PATH } }, (error, stdout, stderr) =>
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    )
    child.stdin!.end(input ?? '')
  })
}

describe('ngrokd set-api-key with no daemon running', () => {
  let dir: string
  let config: string
  let stateDir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ngrokd-setkey-'))
    stateDir = join(dir, 'state')
    config = join(dir, 'ngrokd.json')
    // the API at a loopback port nothing listens on: set-api-key asks it and finds it out of reach, and no call leaves the machine
    await writeFile(config, JSON.stringify({ api: { url: 'http://127.0.0.1:9' }, state_dir: stateDir, control: { socket: join(dir, 'ctl.sock') } }))
  })
  after(() => rm(dir, { recursive: true, force: true }))

  it('refuses a string that is not an API key and creates nothing', async () => {
    const r = await cli(['set-api-key', '--config', config], 'not a key!\n')
    assert.equal(r.code, 1)
    assert.match(r.stderr, /the key given contains whitespace.*\(NGROKD_ERR_API_KEY_MALFORMED\)/)
    assert.equal(existsSync(stateDir), false)
  })

  // the prompt needs a terminal: util-linux's `script` gives the CLI one, and what is typed is written once the prompt shows
  const noScript = spawnSync('script', ['--version']).error ? 'needs util-linux script (a terminal for the prompt)' : false
  for (const [typed, how, exitCode] of [['\x03', 'Ctrl-C', 130], ['\x04', 'end of input', 1]] as const) {
    it(`a prompt cancelled with ${how} exits ${exitCode}, says nothing was saved and saves nothing`, { skip: noScript }, async () => {
      const child = spawn('script', ['-qfec', `${process.execPath} ${NGROKD_BIN} set-api-key --config ${config}`, '/dev/null'], { env: { PATH: process.env.PATH } })
      let shown = ''
      child.stdout.on('data', (d: Buffer) => {
        shown += d.toString()
        if (shown.includes('ngrok API key: ') && !child.stdin.writableEnded) child.stdin.end(typed)
      })
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
      assert.equal(code, exitCode, shown)
      assert.match(shown, new RegExp(`cancelled \\(${how}\\): no API key given, nothing saved`))
      assert.equal(existsSync(join(stateDir, 'api-key')), false)
    })
  }

  it('saves a key 0600 in a state_dir it creates 0700', async () => {
    const r = await cli(['set-api-key', '--config', config], 'ak_valid_key_1234567890\n')
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /ngrokd is not running; API key saved to .*api-key for its next start, but not verified: the ngrok API could not be asked/)
    assert.equal((await stat(stateDir)).mode & 0o777, 0o700)
    assert.equal((await stat(join(stateDir, 'api-key'))).mode & 0o777, 0o600)
    assert.equal(await readFile(join(stateDir, 'api-key'), 'utf8'), 'ak_valid_key_1234567890\n')
  })

  it('doctor calls a malformed saved key a failure, with its code', { skip: process.getuid?.() === 0 ? false : 'doctor runs in a private network namespace: needs root' }, async () => {
    await writeFile(join(stateDir, 'api-key'), 'pasted the wrong thing\n', { mode: 0o600 })
    const r = await cli(['doctor', '--offline', '--json', '--config', config], undefined, ['unshare', '-n', '-m'])
    const check = (JSON.parse(r.stdout) as { checks: Array<{ id: string; status: string; code?: string }> }).checks.find((c) => c.id === 'api.key')
    assert.deepEqual({ status: check?.status, code: check?.code }, { status: 'fail', code: 'NGROKD_ERR_API_KEY_MALFORMED' })
    assert.equal(r.code, 1)
  })

  it('doctor judges state_dir as run would: missing parents are made, a file is no directory', { skip: process.getuid?.() === 0 ? false : 'doctor runs in a private network namespace: needs root' }, async () => {
    const stateDirCheck = async (stateDirValue: string) => {
      const file = join(dir, 'state-dir-case.json')
      await writeFile(file, JSON.stringify({ state_dir: stateDirValue, control: { socket: join(dir, 'ctl.sock') } }))
      const r = await cli(['doctor', '--offline', '--json', '--config', file], undefined, ['unshare', '-n', '-m'])
      return (JSON.parse(r.stdout) as { checks: Array<{ id: string; status: string; summary: string }> }).checks.find((c) => c.id === 'state.dir')
    }
    assert.deepEqual(await stateDirCheck(join(dir, 'not', 'yet', 'there')), { id: 'state.dir', status: 'ok', summary: `${join(dir, 'not', 'yet', 'there')} will be created` })
    await writeFile(join(dir, 'a-file'), '')
    assert.equal((await stateDirCheck(join(dir, 'a-file')))?.status, 'fail')
    assert.match((await stateDirCheck(join(dir, 'a-file', 'below')))?.summary ?? '', /cannot be made: .*a-file is not a directory/)
  })
})
