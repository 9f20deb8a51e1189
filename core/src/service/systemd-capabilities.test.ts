// What the systemd unit grants is enough for what the daemon does with it: the control socket given to
// control.group under exactly the unit's capability bounding set (setpriv), as root.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { requires } from '../testing/requires.js'
import { localUser, localUserSkip } from '../util/local-user.test-helper.js'
import { systemdService } from './systemd.js'

const run = promisify(execFile)
const CONTROL_SERVER = new URL('../control/control-server.js', import.meta.url).href

/** `CapabilityBoundingSet=CAP_NET_ADMIN CAP_CHOWN` → setpriv's `-all,+net_admin,+chown`. */
function boundingSetOf(unit: string): string {
  const line = unit.split('\n').find((l) => l.startsWith('CapabilityBoundingSet='))!
  const caps = line.slice('CapabilityBoundingSet='.length).split(' ')
  return ['-all', ...caps.map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`)].join(',')
}

/** Starts a ControlServer with `group` in a child limited to `boundingSet`; what it says, and the socket's gid and mode. */
async function startUnder(boundingSet: string, socketPath: string, group: string): Promise<{ ok: boolean; out: string }> {
  const script = `import { ControlServer } from ${JSON.stringify(CONTROL_SERVER)}
    import { statSync } from 'node:fs'
    const server = new ControlServer({ socketPath: ${JSON.stringify(socketPath)}, group: ${JSON.stringify(group)}, logger: { debug() {}, info() {}, warn() {}, error() {} }, routes: {} })
    try {
      await server.start()
      const st = statSync(${JSON.stringify(socketPath)})
      console.log(JSON.stringify({ gid: st.gid, mode: (st.mode & 0o777).toString(8) }))
      await server.close()
    } catch (e) {
      console.log(JSON.stringify({ code: e.code, message: e.message, hint: e.hint }))
      process.exitCode = 3
    }`
  return run('setpriv', ['--bounding-set', boundingSet, process.execPath, '--input-type=module', '-e', script]).then(
    (r) => ({ ok: true, out: r.stdout }),
    (e: { stdout: string }) => ({ ok: false, out: e.stdout }),
  )
}

const skip = localUserSkip() || requires.command('setpriv')

test('with control.group, the unit grants CAP_CHOWN and the socket goes to the group; a unit without it fails loudly and leaves no socket', { skip }, async () => {
  const group = localUser()!
  const dir = await mkdtemp(join(tmpdir(), 'ngrokd-unit-caps-'))
  try {
    const options = { nodePath: process.execPath, cliPath: '/usr/lib/node_modules/ngrokd/bin/ngrokd.js', configPath: '/etc/ngrokd/config.yml', writablePaths: ['/var/lib/ngrokd'], stopTimeoutSeconds: 45 }
    const withGroup = boundingSetOf(systemdService({ ...options, controlGroup: true }).unit)
    assert.equal(withGroup, '-all,+net_admin,+net_bind_service,+chown')
    const socketPath = join(dir, 'ngrokd.sock')
    const granted = await startUnder(withGroup, socketPath, String(group.gid))
    assert.ok(granted.ok, granted.out)
    assert.deepEqual(JSON.parse(granted.out), { gid: group.gid, mode: '660' })

    const without = boundingSetOf(systemdService(options).unit)
    const refused = await startUnder(without, socketPath, String(group.gid))
    assert.equal(refused.ok, false)
    const error = JSON.parse(refused.out) as { code: string; message: string; hint: string }
    assert.equal(error.code, 'NGROKD_ERR_CONTROL')
    assert.match(error.message, new RegExp(`cannot give the control socket ${socketPath} to control.group "${group.gid}": EPERM`))
    assert.match(error.hint, /CAP_CHOWN.*ngrokd service install/)
    assert.equal(existsSync(socketPath), false, 'no socket file is left behind')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
