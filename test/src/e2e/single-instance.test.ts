// One daemon per state dir, per interface and per hosts block: a second `ngrokd run` that differs only
// in its control socket, that has its own state dir but the same interface, or its own state dir,
// interface and subnet but the same hosts block, is refused with exit code 2 naming the first one —
// and the first keeps its interface, names and services. A state dir removed under a running daemon comes back at its
// next poll, with its lock and the state the daemon holds.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { chmodSync, copyFileSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { NGROKD_BIN } from '@ngrokd/core'
import { CloudSimulator } from '@ngrokd/plugin-simulator'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { linkExists } from '../helpers/ip-link.js'
import { managedRecords, readHosts } from '../helpers/hosts-file.js'
import { snapshotHostsFile } from '../helpers/hosts-guard.js'

/** Runs `ngrokd run` on `config` to its exit (a refused start exits at once; the cap only bounds a hang). */
function runSecond(configFile: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [NGROKD_BIN, 'run', '--config', configFile], { env: E2eDaemon.childEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (d) => (output += d))
    child.stderr.on('data', (d) => (output += d))
    const cap = setTimeout(() => child.kill('SIGKILL'), 120_000)
    child.on('error', reject)
    child.on('exit', (code) => {
      clearTimeout(cap)
      resolve({ code, output })
    })
  })
}

describe('a second daemon on the same state dir, interface or hosts block', { skip: netnsSkip }, () => {
  const net = netDriverCases('once')[1]!
  const hosts = snapshotHostsFile()
  let sim: CloudSimulator
  let first: E2eDaemon

  before(async () => {
    hosts.take()
    sim = await CloudSimulator.start()
    sim.addEndpoint({ url: 'http://only.e2e' })
    first = E2eDaemon.start({ name: 'once', sim, net })
    await first.waitReady((s) => s.services?.serving === 1)
  })

  after(async () => {
    await first?.dispose()
    await sim?.stop()
    hosts.assertRestored()
  })

  const assertFirstUntouched = async () => {
    const status = await first.status()
    assert.equal(status.phase, 'running')
    assert.equal(status.services.serving, 1)
    assert.equal(linkExists(net.interfaceName!), true, 'the first daemon keeps its interface')
    assert.equal(managedRecords(readHosts()).size, 1, 'and its hosts block')
  }

  test('only control.socket changed: refused, exit 2, naming the first daemon', async () => {
    const second = join(first.dir, 'second.json')
    writeFileSync(second, JSON.stringify({ ...first.config, control: { socket: join(first.dir, 'second.sock') } }))
    const { code, output } = await runSecond(second)
    assert.equal(code, 2, output)
    assert.match(output, new RegExp(`another ngrokd \\(pid ${first.process.pid},`))
    assert.match(output, /NGROKD_ERR_ALREADY_RUNNING/)
    await assertFirstUntouched()
  })

  test('its own state dir but the same interface: refused as well', async () => {
    const second = join(first.dir, 'third.json')
    writeFileSync(second, JSON.stringify({ ...first.config, state_dir: join(first.dir, 'state-3'), control: { socket: join(first.dir, 'third.sock') } }))
    const { code, output } = await runSecond(second)
    assert.equal(code, 2, output)
    assert.match(output, new RegExp(`another ngrokd \\(pid ${first.process.pid},.*interface ${net.interfaceName}`))
    await assertFirstUntouched()
  })

  test('its own state dir, interface and subnet but the same hosts block: refused, naming the hosts file and --instance', async () => {
    const second = join(first.dir, 'fourth.json')
    const config = { ...first.config, state_dir: join(first.dir, 'state-4'), control: { socket: join(first.dir, 'fourth.sock') } }
    writeFileSync(second, JSON.stringify({ ...config, net: { ...first.config.net, interface_name: 'ngkonce9', subnet: '10.99.0.0/16' } }))
    const { code, output } = await runSecond(second)
    assert.equal(code, 2, output)
    assert.match(output, new RegExp(`another ngrokd \\(pid ${first.process.pid},.*the ngrokd block of /etc/hosts`))
    assert.match(output, /--instance NAME/)
    assert.equal(linkExists('ngkonce9'), false, 'the refused one made no interface')
    await assertFirstUntouched()
  })
})

describe('a state dir removed under a running daemon', { skip: netnsSkip }, () => {
  const net = netDriverCases('gone')[1]!
  const hosts = snapshotHostsFile()
  let sim: CloudSimulator
  let first: E2eDaemon

  before(async () => {
    hosts.take()
    sim = await CloudSimulator.start()
    sim.addEndpoint({ url: 'http://kept.e2e' })
    sim.addEndpoint({ url: 'tcp://db.e2e:5432' })
    // no poll between the removal and the one the test asks for
    first = E2eDaemon.start({ name: 'gone', sim, net, pollInterval: '10m' })
    await first.waitReady((s) => s.services?.serving === 2)
  })

  after(async () => {
    await first?.dispose()
    await sim?.stop()
    hosts.assertRestored()
  })

  test('is said at error level and made again (0700) at the next poll, with its lock and the state in memory: a second daemon there is refused, a restart keeps the operator and addresses', async () => {
    const addresses = async () => new Map((await first.services()).map((s) => [s.hostname, s.address]))
    const before = await addresses()
    const operatorId = (await first.status()).operatorId
    rmSync(first.stateDir, { recursive: true })

    // doctor sees it before the daemon does
    const doctor = await new Promise<string>((resolve) =>
      execFile(process.execPath, [NGROKD_BIN, 'doctor', '--json', '--offline', '--config', first.configFile], { env: E2eDaemon.childEnv() }, (_, stdout) => resolve(stdout)),
    )
    const lockCheck = (JSON.parse(doctor) as { checks: Array<{ id: string; status: string; summary: string }> }).checks.find((c) => c.id === 'daemon.state-lock')
    assert.equal(lockCheck?.status, 'fail', doctor)
    assert.match(lockCheck!.summary, new RegExp(`pid ${first.process.pid}\\) holds no lock in its state_dir`))

    await first.pollAfterNow()
    const said = first.logRecords().filter((r) => r.level >= 50 && /lost this daemon's lock/.test(r.msg))
    assert.equal(said.length, 1, first.logTail(20))
    assert.match(said[0]!.msg, new RegExp(`state_dir ${first.stateDir} .*must not be removed while ngrokd runs`))
    assert.equal(statSync(first.stateDir).mode & 0o777, 0o700)
    const files = readdirSync(first.stateDir)
    for (const f of ['ngrokd.lock', 'client.key', 'client.crt', 'operator.json', 'machine-id', 'allocations.json', 'endpoints.json']) assert.ok(files.includes(f), `${f} is back: ${files.join(' ')}`)
    assert.equal(statSync(join(first.stateDir, 'client.key')).mode & 0o777, 0o600)

    // its own socket, interface, subnet and hosts file: only the state dir's lock is shared
    const otherHosts = join(first.dir, 'hosts-2')
    copyFileSync('/etc/hosts', otherHosts)
    const second = join(first.dir, 'second.json')
    writeFileSync(second, JSON.stringify({ ...first.config, control: { socket: join(first.dir, 'second.sock') }, names: { hosts_file: otherHosts }, net: { ...first.config.net, interface_name: 'ngkgone9', subnet: '10.99.0.0/16' } }))
    const { code, output } = await runSecond(second)
    assert.equal(code, 2, output)
    assert.match(output, new RegExp(`another ngrokd \\(pid ${first.process.pid},.*state dir ${first.stateDir}`))

    await first.stop()
    first.restart()
    await first.waitReady((s) => s.services?.serving === 2)
    assert.equal((await first.status()).operatorId, operatorId)
    assert.deepEqual(sim.listOperators().map((o) => o.id), [operatorId], 'no second registration')
    assert.deepEqual(await addresses(), before)
  })

  test('made again by someone else (a folder others may write): nothing is written there, a new endpoint waits; once it is fit again, the state is saved and the endpoint served', async () => {
    rmSync(first.stateDir, { recursive: true })
    mkdirSync(first.stateDir)
    chmodSync(first.stateDir, 0o777) // as another user's would be: the trust rule refuses it
    sim.addEndpoint({ url: 'http://late.e2e' })
    await first.pollAfterNow()
    assert.deepEqual(readdirSync(first.stateDir), [], 'no file of root\'s lands in a folder others may change')
    assert.ok(first.logRecords().some((r) => r.level >= 50 && /cannot make state_dir .* again or take its lock.*writable by .*everyone/.test(r.msg)), first.logTail(20))
    const late = (await first.services()).find((x) => x.hostname === 'late.e2e')
    assert.equal(late?.state, 'error', JSON.stringify(late))
    assert.match(late?.error?.message ?? '', /not served until its address is saved .*state_dir .* is refused \(it was made again by another user while ngrokd ran\)/)
    const held = await first.status()
    assert.equal(held.services.serving, 2, 'the others serve on: only their names wait (no backup of the hosts file goes there)')
    assert.equal(held.names.state === 'frozen' || managedRecords(readHosts()).size === 2, true, JSON.stringify(held.names))
    chmodSync(first.stateDir, 0o700)
    await first.pollAfterNow()
    await first.waitReady((st) => st.services?.serving === 3)
    const files = readdirSync(first.stateDir)
    for (const f of ['ngrokd.lock', 'client.key', 'allocations.json', 'endpoints.json']) assert.ok(files.includes(f), `${f} is saved again: ${files.join(' ')}`)
  })
})
