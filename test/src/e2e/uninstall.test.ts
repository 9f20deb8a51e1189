// `ngrokd uninstall [--deregister]`: everything ngrokd keeps on the machine goes (what cleanup
// removes, then the state directory); with --deregister the registration is deleted at ngrok first.
// Without it, the command says which registration stays at ngrok. Refused while a daemon runs.
import { after, before, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CloudSimulator } from '@ngrokd/plugin-simulator'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { linkExists } from '../helpers/ip-link.js'
import { managedRecords, readHosts } from '../helpers/hosts-file.js'
import { snapshotHostsFile } from '../helpers/hosts-guard.js'
import { ngrokdCli } from '../helpers/ngrokd-cli.js'

describe('ngrokd uninstall', { skip: netnsSkip }, () => {
  const net = netDriverCases('unins')[1]!
  const hosts = snapshotHostsFile()
  let sim: CloudSimulator
  let daemon: E2eDaemon | undefined

  before(async () => {
    hosts.take()
    sim = await CloudSimulator.start()
    sim.addEndpoint({ url: 'http://gone.e2e' })
  })
  beforeEach(async () => {
    daemon = E2eDaemon.start({ name: 'uninstall', sim, net })
    await daemon.waitReady((s) => s.services?.serving === 1)
  })
  after(async () => {
    await daemon?.dispose()
    await sim?.stop()
    hosts.assertRestored()
  })

  test('refused while the daemon runs; after a crash: no --deregister removes what is local and names the registration left at ngrok', async () => {
    const running = await ngrokdCli(['uninstall', '--config', daemon!.configFile])
    assert.equal(running.code, 2, running.stdout + running.stderr)
    assert.match(running.stderr, /stop it first/)
    const operatorId = (await daemon!.status()).operatorId as string
    await daemon!.stop('SIGKILL')
    const r = await ngrokdCli(['uninstall', '--config', daemon!.configFile])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, new RegExp(`state directory ${daemon!.stateDir}`))
    assert.match(r.stdout, /the ngrokd block of \/etc\/hosts/)
    assert.match(r.stdout, new RegExp(`the registration ${operatorId} stays at ngrok`))
    assert.equal(existsSync(daemon!.stateDir), false)
    assert.equal(linkExists(net.interfaceName!), false)
    assert.equal(managedRecords(readHosts()).size, 0)
    assert.deepEqual(sim.listOperators().map((o) => o.id), [operatorId], 'the registration is still at ngrok')
    sim.removeOperator(operatorId)
    await daemon!.dispose()
    daemon = undefined
  })

  test('--deregister deletes the registration at ngrok, then everything local', async () => {
    const operatorId = (await daemon!.status()).operatorId as string
    await daemon!.stop('SIGTERM')
    assert.ok(sim.listOperators().some((o) => o.id === operatorId))
    const r = await ngrokdCli(['uninstall', '--deregister', '--config', daemon!.configFile])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, new RegExp(`deleted the registration ${operatorId} at ngrok`))
    assert.equal(sim.listOperators().length, 0)
    assert.equal(existsSync(daemon!.stateDir), false)
    await daemon!.dispose()
    daemon = undefined
  })

  test('a damaged registration file does not stop it: --deregister finds the registration by this machine\'s id', async () => {
    const operatorId = (await daemon!.status()).operatorId as string
    await daemon!.stop('SIGKILL')
    writeFileSync(join(daemon!.stateDir, 'operator.json'), '{"version":1,"operatorId":')
    const r = await ngrokdCli(['uninstall', '--deregister', '--config', daemon!.configFile])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, new RegExp(`deleted the registration ${operatorId} at ngrok`))
    assert.equal(sim.listOperators().length, 0)
    assert.equal(existsSync(daemon!.stateDir), false)
    await daemon!.dispose()
    daemon = undefined
  })

  test('a damaged registration file without --deregister: it says a registration may stay, and how to find it', async () => {
    const operatorId = (await daemon!.status()).operatorId as string
    await daemon!.stop('SIGKILL')
    const machineId = readFileSync(join(daemon!.stateDir, 'machine-id'), 'utf8').trim()
    writeFileSync(join(daemon!.stateDir, 'operator.json'), 'garbage')
    const r = await ngrokdCli(['uninstall', '--config', daemon!.configFile])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, new RegExp(`a registration of this machine may stay at ngrok .*its metadata holds ngrokd_machine_id: ${machineId}`))
    assert.equal(existsSync(daemon!.stateDir), false)
    sim.removeOperator(operatorId)
    await daemon!.dispose()
    daemon = undefined
  })
})

const UNIT_DIR = '/etc/systemd/system'

describe('ngrokd uninstall with nothing installed', { skip: netnsSkip }, () => {
  test('a state directory that was never there is not reported removed, and none is left behind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ngrokd-e2e-uninstall-none-'))
    try {
      const stateDir = join(dir, 'state')
      const config = join(dir, 'config.json')
      writeFileSync(config, JSON.stringify({ state_dir: stateDir, control: { socket: join(dir, 'ctl.sock') }, net: { driver: 'loopback-alias', subnet: '127.108.0.0/16', interface_name: 'ngkunone0' }, names: { hosts_file: join(dir, 'hosts') } }))
      writeFileSync(join(dir, 'hosts'), '127.0.0.1 localhost\n')
      const r = await ngrokdCli(['uninstall', '--config', config])
      assert.equal(r.code, 0, r.stderr)
      assert.doesNotMatch(r.stdout, /state directory/)
      assert.equal(existsSync(stateDir), false)
      // cleanup (the unit's ExecStopPost) makes no state directory either, nor the folders above it
      const nested = join(dir, 'nested.json')
      writeFileSync(nested, readFileSync(config, 'utf8').replace(JSON.stringify(stateDir), JSON.stringify(join(dir, 'a', 'b', 'state'))))
      for (const file of [config, nested]) {
        const cleanup = await ngrokdCli(['cleanup', '--config', file])
        assert.equal(cleanup.code, 0, cleanup.stderr)
      }
      assert.equal(existsSync(stateDir), false, 'cleanup left a state directory behind')
      assert.equal(existsSync(join(dir, 'a')), false, 'cleanup left the folders above the state directory behind')
      // --deregister a second time (no state, no key): nothing names a registration here, and it says so, exit 0
      const again = await ngrokdCli(['uninstall', '--deregister', '--config', config])
      assert.equal(again.code, 0, again.stderr)
      assert.match(again.stdout, /no state directory .* and no API key: nothing on this machine names a registration at ngrok/)
      assert.match(again.stdout, /nothing of ngrokd was left on this machine/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('a state directory that is a mount point is emptied and kept, and said so', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ngrokd-e2e-uninstall-mount-'))
    const stateDir = join(dir, 'state')
    mkdirSync(stateDir, { mode: 0o700 })
    // the suite runs in a mount namespace of its own: the tmpfs is this process's alone
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'mode=0700', 'ngrokd-e2e-state', stateDir])
    try {
      writeFileSync(join(stateDir, 'api-key'), 'ak_kept_nowhere_123456\n', { mode: 0o600 })
      mkdirSync(join(stateDir, 'sub'))
      writeFileSync(join(stateDir, 'sub', 'x'), 'x')
      const config = join(dir, 'config.json')
      writeFileSync(config, JSON.stringify({ state_dir: stateDir, control: { socket: join(dir, 'ctl.sock') }, net: { driver: 'loopback-alias', subnet: '127.108.0.0/16', interface_name: 'ngkunone0' }, names: { hosts_file: join(dir, 'hosts') } }))
      writeFileSync(join(dir, 'hosts'), '127.0.0.1 localhost\n')
      const r = await ngrokdCli(['uninstall', '--config', config])
      assert.equal(r.code, 0, r.stdout + r.stderr)
      assert.match(r.stdout, new RegExp(`everything in state directory ${stateDir} \\(a mount point: the folder itself stays\\)`))
      assert.deepEqual(readdirSync(stateDir), [])
    } finally {
      execFileSync('umount', [stateDir])
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('an installed service unit of this config is named, with `service uninstall` as the fix, and nothing is removed; one of another config is not', { skip: existsSync(UNIT_DIR) ? false : `no ${UNIT_DIR} on this machine` }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ngrokd-e2e-uninstall-unit-'))
    // the suite runs in a mount namespace of its own: this tmpfs hides the machine's units from this process only
    execFileSync('mount', ['-t', 'tmpfs', 'ngrokd-e2e-units', UNIT_DIR])
    try {
      const stateDir = join(dir, 'state')
      mkdirSync(stateDir, { mode: 0o700 })
      writeFileSync(join(stateDir, 'machine-id'), 'kept\n')
      const config = join(dir, 'config.json')
      writeFileSync(config, JSON.stringify({ state_dir: stateDir, control: { socket: join(dir, 'ctl.sock') }, net: { driver: 'loopback-alias', subnet: '127.108.0.0/16', interface_name: 'ngkunone0' }, names: { hosts_file: join(dir, 'hosts') } }))
      writeFileSync(join(UNIT_DIR, 'ngrokd.service'), `[Service]\nExecStart=${process.execPath} /opt/ngrokd/bin/ngrokd.js run --config ${config}\n`)
      const r = await ngrokdCli(['uninstall', '--config', config])
      assert.equal(r.code, 2, r.stdout + r.stderr)
      assert.match(r.stderr, new RegExp(`the service ${UNIT_DIR}/ngrokd\\.service is installed and would start ngrokd again at the next boot; nothing was removed`))
      assert.match(r.stderr, new RegExp(`sudo ngrokd service uninstall --config ${config}`))
      assert.equal(readFileSync(join(stateDir, 'machine-id'), 'utf8'), 'kept\n')
      // the unit names the same file by a link to it
      symlinkSync(config, join(dir, 'config-link.json'))
      writeFileSync(join(UNIT_DIR, 'ngrokd.service'), `[Service]\nExecStart=${process.execPath} /opt/ngrokd/bin/ngrokd.js run --config ${join(dir, 'config-link.json')}\n`)
      const linked = await ngrokdCli(['uninstall', '--config', config])
      assert.equal(linked.code, 2, linked.stdout + linked.stderr)
      // the default file's unit leaves this config's uninstall alone
      writeFileSync(join(UNIT_DIR, 'ngrokd.service'), `[Service]\nExecStart=${process.execPath} /opt/ngrokd/bin/ngrokd.js run\n`)
      const done = await ngrokdCli(['uninstall', '--config', config])
      assert.equal(done.code, 0, done.stdout + done.stderr)
      assert.equal(existsSync(stateDir), false)
    } finally {
      execFileSync('umount', [UNIT_DIR])
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
