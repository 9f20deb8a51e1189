import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { NGROKD_BIN } from '../daemon/daemon-process.js'
import { requires } from '../testing/requires.js'
import { systemdService } from './systemd.js'

const options = {
  nodePath: process.execPath,
  cliPath: NGROKD_BIN,
  configPath: '/etc/ngrokd/config.yml',
  writablePaths: ['/var/lib/ngrokd', '/etc/hosts', '/run/ngrokd'],
  stopTimeoutSeconds: 45,
}

/** The unit's `Key=value` lines of one section. */
function section(unit: string, name: string): Map<string, string> {
  const lines = unit.split('\n')
  const start = lines.indexOf(`[${name}]`)
  const out = new Map<string, string>()
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith('[')) break
    const eq = line.indexOf('=')
    if (eq > 0) out.set(line.slice(0, eq), line.slice(eq + 1))
  }
  return out
}

test('the unit runs ngrokd with absolute paths, reloads with `ngrokd reload`, cleans up after stop, restarts on failure, with least privilege', () => {
  const s = systemdService(options)
  assert.equal(s.unitPath, '/etc/systemd/system/ngrokd.service')
  const svc = section(s.unit, 'Service')
  assert.equal(svc.get('ExecStart'), `${process.execPath} ${NGROKD_BIN} run --config /etc/ngrokd/config.yml`)
  assert.equal(svc.get('ExecStopPost'), `${process.execPath} ${NGROKD_BIN} cleanup --config /etc/ngrokd/config.yml`)
  assert.equal(svc.get('ExecReload'), `${process.execPath} ${NGROKD_BIN} reload --config /etc/ngrokd/config.yml`, 'waits for the answer: a refused config fails the reload')
  assert.equal(svc.get('Restart'), 'on-failure')
  assert.equal(svc.get('TimeoutStopSec'), '45s')
  assert.equal(svc.get('CapabilityBoundingSet'), 'CAP_NET_ADMIN CAP_NET_BIND_SERVICE')
  assert.equal(svc.get('AmbientCapabilities'), 'CAP_NET_ADMIN CAP_NET_BIND_SERVICE')
  assert.equal(svc.get('NoNewPrivileges'), 'yes')
  assert.equal(svc.get('ProtectSystem'), 'strict')
  assert.equal(svc.get('ReadWritePaths'), '-/var/lib/ngrokd -/etc/hosts -/run/ngrokd')
  for (const key of ['ProtectKernelLogs', 'ProtectClock', 'ProtectHostname', 'RestrictRealtime']) assert.equal(svc.get(key), 'yes', key)
  assert.equal(svc.get('SystemCallArchitectures'), 'native')
  assert.equal(svc.get('RuntimeDirectory'), 'ngrokd')
  assert.equal(section(s.unit, 'Install').get('WantedBy'), 'multi-user.target')
  assert.equal(svc.get('SyslogIdentifier'), 'ngrokd')
  assert.equal(svc.get('Environment'), undefined)
  assert.deepEqual(s.install, [['systemctl', 'daemon-reload'], ['systemctl', 'enable', 'ngrokd.service'], ['systemctl', 'restart', 'ngrokd.service']], 'a second install restarts the unit on its new command line')
  assert.deepEqual(s.uninstall, [['systemctl', 'disable', '--now', 'ngrokd.service']])
})

test("the NGROKD_* variables the install ran with are the service's too; one that needs quoting is refused, naming it", () => {
  const s = systemdService({ ...options, environment: { NGROKD_STATE_DIR: '/srv/ngrokd', NGROKD_NET_SUBNET: '10.9.0.0/16' } })
  const env = s.unit.split('\n').filter((l) => l.startsWith('Environment='))
  assert.deepEqual(env, ['Environment=NGROKD_STATE_DIR=/srv/ngrokd', 'Environment=NGROKD_NET_SUBNET=10.9.0.0/16'])
  for (const value of ['/srv/my state', '%h/ngrokd', '"quoted"', 'a\\b']) {
    assert.throws(() => systemdService({ ...options, environment: { NGROKD_STATE_DIR: value } }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID') && /NGROKD_STATE_DIR=.* cannot be written into the unit/.test(e.message), value)
  }
})

test('paths that are relative or would need quoting in a unit are refused', () => {
  for (const bad of [{ configPath: 'config.yml' }, { cliPath: '/opt/my apps/ngrokd.js' }, { writablePaths: ['/var/lib/$x'] }]) {
    assert.throws(() => systemdService({ ...options, ...bad }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'))
  }
})

test('systemd-analyze verify accepts the unit', { skip: requires.command('systemd-analyze') }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ngrokd-unit-'))
  try {
    const file = join(dir, 'ngrokd.service')
    await writeFile(file, systemdService({ ...options, environment: { NGROKD_STATE_DIR: '/srv/ngrokd' } }).unit)
    const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' })
    // verify also reports problems of units on this machine that ours pulls in: keep the lines about ours
    const ours = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.includes('ngrokd.service'))
    assert.deepEqual(ours, [], `systemd-analyze verify:\n${r.stdout}${r.stderr}`)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
