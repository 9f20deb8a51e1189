// `ngrokd demo --once` from the package users install: the cloud simulator, a real daemon and real
// requests by hostname, in a private namespace the demo makes itself; it exits 0 only when every
// demo endpoint answered.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { netnsSkip } from '../helpers/netns.js'
import { E2eDaemon, NGROKD_PACKAGE_BIN } from '../helpers/e2e-daemon.js'

test('ngrokd demo --once serves every demo endpoint by hostname and cleans up; --keep-logs keeps both logs and says where', { skip: netnsSkip, timeout: 300_000 }, async () => {
  // a shell with a real account's key and settings of its own: the demo's daemon takes none of them
  const shell = { ...E2eDaemon.childEnv(), NGROK_API_KEY: '2abcDEFghiJKLmnoPQRstuVWXyz_1234567890abcdefghijklmnop', NGROKD_STATE_DIR: '/nonexistent/ngrokd-state', NGROKD_LOG_LEVEL: 'trace' }
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [NGROKD_PACKAGE_BIN, 'demo', '--once', '--keep-logs'], { env: shell, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (d) => (output += d))
    child.stderr.on('data', (d) => (output += d))
    child.on('error', reject)
    child.on('exit', (code) => resolve({ code, output }))
  })
  assert.equal(code, 0, output)
  assert.match(output, /cloud simulator up/)
  for (const url of ['http://api.demo', 'http://web.demo:8080', 'tcp://echo.demo:5432', 'https://status.demo-app.ngrok.app']) {
    assert.match(output, new RegExp(`✔ ${url.replace(/[.:/]/g, '\\$&')}`), `${url} answered`)
  }
  assert.match(output, /demo passed/)
  const kept = /^logs kept in (\S+): ngrokd\.log \(the daemon\), simulator\.log \(the cloud simulator\)$/m.exec(output)?.[1]
  assert.ok(kept, output)
  try {
    assert.match(readFileSync(join(kept, 'ngrokd.log'), 'utf8'), /serving http:\/\/api\.demo/)
    assert.match(readFileSync(join(kept, 'simulator.log'), 'utf8'), /simulator: started/)
  } finally {
    rmSync(kept, { recursive: true, force: true })
  }
})

test('core alone has no demo and says where it comes from', async () => {
  const { NGROKD_BIN } = await import('@ngrokd/core')
  const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [NGROKD_BIN, 'demo'], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('exit', (code) => resolve({ code, stderr }))
  })
  assert.equal(code, 2)
  assert.match(stderr, /unknown command "demo" \(it comes with the `ngrokd` package/)
})

test('ngrokd demo --once | head: a reader that goes away early is no crash; the demo still finishes and cleans up', { skip: netnsSkip, timeout: 300_000 }, async () => {
  const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [NGROKD_PACKAGE_BIN, 'demo', '--once'], { env: E2eDaemon.childEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stdout.once('data', () => child.stdout.destroy()) // like `head -1`
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('exit', (code) => resolve({ code, stderr }))
  })
  assert.equal(code, 0, stderr)
  assert.doesNotMatch(stderr, /EPIPE|at .*\(.*:\d+:\d+\)/, 'no stack trace')
})

/**
 * `ngrokd demo` (serving until Ctrl-C) stopped by `signal` once `when` is in its output: to its own pid, or (`group`) to
 * its whole process group as a terminal's Ctrl-C does. Resolves with its exit code, its output and its folder.
 */
async function demoStoppedBy(signal: NodeJS.Signals, when: RegExp, group = false): Promise<{ code: number | null; output: string; dir: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [NGROKD_PACKAGE_BIN, 'demo'], { env: E2eDaemon.childEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: group })
    let output = ''
    let sent = false
    const onOutput = (d: Buffer) => {
      output += d
      if (!sent && when.test(output)) {
        sent = true
        if (group) process.kill(-child.pid!, signal)
        else child.kill(signal)
      }
    }
    child.stdout.on('data', onOutput)
    child.stderr.on('data', onOutput)
    child.on('error', reject)
    child.on('exit', (code) => resolve({ code, output, dir: dirname(/its log: (\S+)/.exec(output)?.[1] ?? '/nonexistent/x') }))
  })
}

for (const [how, signal, group] of [['SIGINT to its pid', 'SIGINT', false], ['SIGTERM to its pid', 'SIGTERM', false], ['Ctrl-C (SIGINT to its process group)', 'SIGINT', true]] as const) {
  test(`ngrokd demo serving until Ctrl-C stops on ${how}: drains, cleans up, exits 0`, { skip: netnsSkip, timeout: 300_000 }, async () => {
    const { code, output, dir } = await demoStoppedBy(signal, /Serving until Ctrl-C/, group)
    assert.equal(code, 0, output)
    assert.match(output, /stopping: draining, removing names and addresses/)
    assert.ok(!existsSync(dir), `${dir} is removed`)
  })
}

for (const [signal, exitCode] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  test(`ngrokd demo stopped by ${signal} while it starts: cleans up and exits ${exitCode} (128 + the signal's number)`, { skip: netnsSkip, timeout: 300_000 }, async () => {
    const { code, output, dir } = await demoStoppedBy(signal, /ngrokd run started/)
    assert.equal(code, exitCode, output)
    assert.match(output, new RegExp(`stopped \\(${signal}\\) before the demo was done`))
    assert.doesNotMatch(output, /last \d+ log line/, 'a stop is no failure')
    assert.ok(!existsSync(dir), `${dir} is removed`)
  })
}
