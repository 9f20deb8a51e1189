// `ngrokd service install --dry-run` from the package users install: the systemd unit it would write
// runs this node and this ngrokd with the config given, and systemd-analyze verify accepts it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { requires } from '@ngrokd/core/testing'
import { E2eDaemon, NGROKD_PACKAGE_BIN } from '../helpers/e2e-daemon.js'
import { ngrokdCli } from '../helpers/ngrokd-cli.js'
import { REPO_ROOT } from '../helpers/workspaces.js'


test('service install --dry-run prints a unit for this install that systemd-analyze verify accepts, and the commands', { skip: requires.all(requires.linux(), requires.command('systemd-analyze')) }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ngrokd-service-'))
  try {
    const config = join(dir, 'ngrokd.json')
    writeFileSync(config, JSON.stringify({ state_dir: join(dir, 'state'), forwarder: { drain_timeout: '20s' } }))
    // a variable the config came from is the service's too; the API key is never written into the unit
    const env = { ...process.env, NGROKD_LOG_LEVEL: 'debug', NGROK_API_KEY: 'ak_never_in_the_unit_123456' }
    const r = await ngrokdCli(['service', 'install', '--dry-run', '--config', config], { env })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^Environment=NGROKD_LOG_LEVEL=debug$/m)
    assert.match(r.stdout, /^# NGROK_API_KEY is not written into the service's file/m)
    assert.doesNotMatch(r.stdout, /ak_never_in_the_unit/)
    assert.match(r.stdout, /^# the install would be refused: .* is under \/tmp, which the service does not see/m)
    const unit = r.stdout.slice(r.stdout.indexOf('[Unit]'), r.stdout.indexOf('\n$ '))
    assert.match(unit, new RegExp(`^ExecStart=${process.execPath} ${realpathSync(NGROKD_PACKAGE_BIN)} run --config ${config}$`, 'm'))
    assert.match(unit, /^TimeoutStopSec=35s$/m, 'drain_timeout 20 s plus room to clean up')
    assert.match(unit, new RegExp(`^ReadWritePaths=-${join(dir, 'state')} -/etc/hosts -/run/ngrokd$`, 'm'), 'the socket\'s own folder, never all of /run')
    assert.match(r.stdout, /^\$ systemctl enable ngrokd\.service\n\$ systemctl restart ngrokd\.service$/m, 'a second install restarts the unit on its new command line')
    const file = join(dir, 'ngrokd.service')
    writeFileSync(file, unit)
    const verify = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' })
    const ours = `${verify.stdout}${verify.stderr}`.split('\n').filter((l) => l.includes('ngrokd.service'))
    assert.deepEqual(ours, [], `${verify.stdout}${verify.stderr}`)

    // a socket directly in /run would make all of /run writable to the service (systemd's and udev's units and rules)
    writeFileSync(config, JSON.stringify({ state_dir: join(dir, 'state'), control: { socket: '/run/ngrokd.sock' } }))
    const inRun = await ngrokdCli(['service', 'install', '--dry-run', '--config', config])
    assert.equal(inRun.code, 1, inRun.stdout)
    assert.match(inRun.stderr, /control\.socket \/run\/ngrokd\.sock is directly in \/run: the service would have to be able to write all of \/run/)
    assert.match(inRun.stderr, /control\.socket: \/run\/ngrokd\/ngrokd\.sock/)

    const bad = await ngrokdCli(['service', 'frob', '--config', config])
    assert.equal(bad.code, 2, 'a word the command does not take is a usage error')
    assert.match(bad.stderr, /^ngrokd service: expected install, uninstall or status, got "frob" \(NGROKD_ERR_USAGE\)/m)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('with no config file the unit names none (the service reads what ngrokd run would), and status passes on the service manager\'s answer', { skip: requires.linux() }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ngrokd-service-'))
  try {
    // an instance whose file (/etc/ngrokd/zz9.yml) nobody wrote: nothing to load
    const r = await ngrokdCli(['service', 'install', '--dry-run', '--instance', 'zz9'])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^# no config file: the service runs on the defaults and the saved API key, and reads \/etc\/ngrokd\/zz9\.yml once it exists$/m)
    assert.match(r.stdout, new RegExp(`^ExecStart=${process.execPath} ${realpathSync(NGROKD_PACKAGE_BIN)} run --instance zz9$`, 'm'))
    assert.match(r.stdout, /^ExecStopPost=\S+ \S+ cleanup --instance zz9$/m)

    // systemctl status answers 3 for a stopped service: shown as it is, exit code passed on, no error of ours
    writeFileSync(join(dir, 'systemctl'), '#!/bin/sh\necho "○ ngrokd-zz9.service - inactive (dead)"\nexit 3\n', { mode: 0o755 })
    const status = await ngrokdCli(['service', 'status', '--instance', 'zz9'], { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } })
    assert.equal(status.code, 3, status.stderr)
    assert.match(status.stdout, /inactive \(dead\)/)
    assert.equal(status.stderr, '')
    if (!existsSync('/run/systemd/system')) {
      // systemctl where systemd does not run: no answer to pass on, said as ours
      writeFileSync(join(dir, 'systemctl'), '#!/bin/sh\necho "System has not been booted with systemd as init system (PID 1). Can\'t operate." >&2\necho "Failed to connect to bus: Host is down" >&2\nexit 1\n', { mode: 0o755 })
      const without = await ngrokdCli(['service', 'status', '--instance', 'zz9'], { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } })
      assert.equal(without.code, 1, without.stderr)
      assert.match(without.stderr, /systemd does not run this machine \(no \/run\/systemd\/system\): there is no ngrokd service to ask about \(System has not been booted with systemd.*\(NGROKD_ERR_SERVICE\)/)
      assert.equal(without.stdout, '')
    }

    // uninstall with no unit file: said so, nothing claimed removed, no failure (as root, which the test runs as)
    if (process.getuid?.() === 0 && !existsSync('/etc/systemd/system/ngrokd-zz9.service')) {
      writeFileSync(join(dir, 'systemctl'), '#!/bin/sh\necho "Failed to disable unit, unit ngrokd-zz9.service does not exist." >&2\nexit 5\n', { mode: 0o755 })
      const none = await ngrokdCli(['service', 'uninstall', '--instance', 'zz9'], { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } })
      assert.equal(none.code, 0, none.stderr)
      assert.match(none.stdout, /^no ngrokd service is installed here: \/etc\/systemd\/system\/ngrokd-zz9\.service does not exist$/m)
      assert.doesNotMatch(none.stdout, /removed/)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test("the README's service commands run as written on a machine where no config file was created", { skip: requires.all(requires.linux(), existsSync('/etc/ngrokd/config.yml') && '/etc/ngrokd/config.yml exists here') }, async () => {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8')
  const block = /^As a service\b[\s\S]*?```sh\n([\s\S]*?)```/m.exec(readme)?.[1]
  assert.ok(block, 'the README has an "As a service" block')
  const dryRuns = block.split('\n').map((l) => l.replace(/#.*$/, '').trim()).filter((l) => /^sudo ngrokd service install --dry-run\b/.test(l))
  assert.ok(dryRuns.length > 0, block)
  for (const line of dryRuns) {
    const r = await ngrokdCli(line.split(/\s+/).slice(2))
    assert.equal(r.code, 0, `${line}: ${r.stderr}`)
  }
})

test("service install --dry-run says the install would be refused while a file of this ngrokd's installation is another user's", { skip: process.getuid?.() !== 0 && 'needs root to give a file to another user' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ngrokd-service-'))
  try {
    // an installed ngrokd package that runs this workspace's CLI, one file of it another user's
    const installation = join(dir, 'lib', 'node_modules', 'ngrokd')
    mkdirSync(join(installation, 'bin'), { recursive: true })
    writeFileSync(join(installation, 'package.json'), JSON.stringify({ name: 'ngrokd', type: 'module' }))
    const bin = join(installation, 'bin', 'ngrokd.js')
    writeFileSync(bin, `import { runCli } from ${JSON.stringify(import.meta.resolve('@ngrokd/core/cli'))}\nrunCli()\n`)
    const planted = join(installation, 'README.md')
    writeFileSync(planted, '')
    const r = () => spawnSync(process.execPath, [bin, 'service', 'install', '--dry-run', '--instance', 'zz9'], { env: E2eDaemon.childEnv(), encoding: 'utf8' })
    assert.doesNotMatch(r().stdout, /the install would be refused: refusing/)
    chownSync(planted, 1001, 1001)
    const refused = r()
    assert.equal(refused.status, 0, refused.stderr)
    assert.match(refused.stdout, new RegExp(`^# the install would be refused: refusing ngrokd installation the service would run file ${planted}: it is owned by (\\S+ \\()?uid 1001\\b.*\\n#   hint: install ngrokd as root \\(sudo npm install -g ngrokd`, 'm'))
    assert.match(refused.stdout, /^\[Unit\]$/m, 'the unit is printed still')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
