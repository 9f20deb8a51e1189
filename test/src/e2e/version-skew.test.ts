// A daemon of another version on the control socket (npm installed a new ngrokd while the service runs the old
// one): status, list and doctor say so, with the fix, and show what it answered instead of failing on a field
// its reply lacks.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ngrokdCli } from '../helpers/ngrokd-cli.js'

let dir: string
let config: string
let old: Server

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ngrokd-e2e-skew-'))
  const socket = join(dir, 'ctl.sock')
  config = join(dir, 'config.json')
  writeFileSync(config, JSON.stringify({ state_dir: join(dir, 'state'), control: { socket }, names: { hosts_file: join(dir, 'hosts') } }))
  writeFileSync(join(dir, 'hosts'), '127.0.0.1 localhost\n')
  // the replies of an older daemon: no apiKey, names or plugins in its status; its endpoints a bare array
  const replies: Record<string, unknown> = {
    '/v1/status': { version: '0.9.0', pid: 4242, uptimeSeconds: 60, phase: 'running', services: { serving: 1, error: 0 } },
    '/v1/endpoints': [{ url: 'http://old.e2e', address: '10.107.0.2' }],
  }
  old = createServer((req, res) => {
    const reply = replies[req.url ?? '']
    res.writeHead(reply ? 200 : 404, { 'content-type': 'application/json' })
    res.end(JSON.stringify(reply ?? { error: { code: 'NGROKD_ERR_CONTROL', message: `no route ${req.method} ${req.url}` } }))
  })
  await new Promise<void>((resolve) => old.listen(socket, resolve))
})

after(async () => {
  await new Promise((resolve) => old.close(resolve))
  rmSync(dir, { recursive: true, force: true })
})

test('status names both versions and the fix, and shows the reply as it is', async () => {
  const r = await ngrokdCli(['status', '--config', config])
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stderr, /^ngrokd status: the running daemon is ngrokd 0\.9\.0 and this command is \S+: restart the daemon to run this install/m)
  assert.match(r.stderr, /the daemon's reply is not what this version reads/)
  assert.equal(JSON.parse(r.stdout).version, '0.9.0')
})

test('list shows a reply of another shape as it is', async () => {
  const r = await ngrokdCli(['list', '--config', config])
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stderr, /^ngrokd list: the daemon's reply is not what this version reads .*`ngrokd status` shows the daemon's version/m)
  assert.deepEqual(JSON.parse(r.stdout), [{ url: 'http://old.e2e', address: '10.107.0.2' }])
})

test('doctor warns of the other version instead of failing', async () => {
  const r = await ngrokdCli(['doctor', '--json', '--offline', '--config', config])
  const checks = JSON.parse(r.stdout) as { checks: Array<{ id: string; status: string; summary: string; hint?: string }> }
  const version = checks.checks.find((c) => c.id === 'daemon.version')
  assert.ok(version, r.stdout + r.stderr)
  assert.equal(version.status, 'warn')
  assert.match(version.summary, /^the running daemon is ngrokd 0\.9\.0, this doctor \S+$/)
  assert.match(version.hint!, /restart the daemon/)
  assert.doesNotMatch(r.stderr, /TypeError|Cannot read properties/)
})
