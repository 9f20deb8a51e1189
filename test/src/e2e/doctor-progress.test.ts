// `ngrokd doctor` as text prints each check as it is made: with an API that never answers, what was checked before
// is on the screen while the API check still waits.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { E2eDaemon, NGROKD_PACKAGE_BIN } from '../helpers/e2e-daemon.js'

/** Safety net only: the lines before the API check come out within milliseconds. */
const SAFETY_MS = 60_000

test('doctor shows the checks made so far while a slow one waits', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ngrokd-e2e-doctor-progress-'))
  // accepts and never answers: the API check waits for its timeout (an hour here), the test does not
  const held: Socket[] = []
  let calledApi!: () => void
  const apiCalled = new Promise<void>((resolve) => (calledApi = resolve))
  const silent = createServer((s) => {
    held.push(s)
    calledApi()
  })
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  const port = (silent.address() as { port: number }).port
  const config = join(dir, 'config.json')
  writeFileSync(config, JSON.stringify({ state_dir: join(dir, 'state'), api: { url: `http://127.0.0.1:${port}`, key: 'ak_progress_test_123456', timeout: '1h' }, control: { socket: join(dir, 'ctl.sock') }, names: { hosts_file: join(dir, 'hosts') } }))
  writeFileSync(join(dir, 'hosts'), '127.0.0.1 localhost\n')
  const child = spawn(process.execPath, [NGROKD_PACKAGE_BIN, 'doctor', '--config', config], { env: E2eDaemon.childEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
  try {
    let out = ''
    let printed!: () => void
    const apiKeyLine = new Promise<void>((resolve) => (printed = resolve))
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (/ api\.key /.test(out)) printed()
    })
    const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`doctor exited (${code}) while its API check should wait:\n${out}`))))
    // the API check has called the silent server and waits; the lines before it are out (a safety net, far above
    // the milliseconds this takes: doctor printing nothing until the end must fail, not hang)
    let safety: NodeJS.Timeout | undefined
    const noProgress = new Promise<never>((_, reject) => (safety = setTimeout(() => reject(new Error(`no api.key line while the API check waits:\n${out}`)), SAFETY_MS)))
    try {
      await Promise.race([Promise.all([apiCalled, apiKeyLine]), exited, noProgress])
    } finally {
      clearTimeout(safety)
    }
    assert.match(out, /config\.load .*\n(.*\n)*.* state\.dir /, 'the checks before the API are printed')
    assert.equal(child.exitCode, null, 'doctor still runs: the API check waits')
    assert.doesNotMatch(out, /api\.reach/)
  } finally {
    child.kill('SIGKILL')
    for (const s of held) s.destroy()
    silent.close()
    rmSync(dir, { recursive: true, force: true })
  }
})
