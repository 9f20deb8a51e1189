// SIGTERM with connections still open: the daemon drains for forwarder.drain_timeout, closes what is
// left, removes its names and exits 0 — it never hangs on a connection that will not finish.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CloudSimulator } from '@ngrokd/plugin-simulator'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon, NGROKD_PACKAGE_BIN } from '../helpers/e2e-daemon.js'
import { waitUntil } from '../helpers/wait-until.js'
import { callDaemon } from '@ngrokd/core'
import { managedRecords, readHosts } from '../helpers/hosts-file.js'
import { snapshotHostsFile } from '../helpers/hosts-guard.js'
import { ngrokdCli } from '../helpers/ngrokd-cli.js'

function openConnection(host: string, port: number, first: string): Promise<{ socket: Socket; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port })
    const closed = new Promise<void>((r) => socket.once('close', () => r()))
    socket.once('error', () => {})
    socket.once('connect', () => {
      socket.write(first)
      socket.once('data', () => resolve({ socket, closed }))
    })
    socket.once('close', () => reject(new Error(`${host}:${port} closed before answering`)))
  })
}

describe('shutdown with open connections', { skip: netnsSkip }, () => {
  let sim: CloudSimulator
  let daemon: E2eDaemon
  const hosts = snapshotHostsFile()

  before(async () => {
    hosts.take()
    sim = await CloudSimulator.start()
    sim.addEndpoint({ url: 'http://busy.e2e' })
    sim.addEndpoint({ url: 'tcp://stream.e2e:7000' })
    daemon = E2eDaemon.start({ name: 'shutdown', sim, net: netDriverCases('shut')[1]!, extraConfig: { forwarder: { drain_timeout: '1s' } } })
    await daemon.waitReady((s) => s.services?.serving === 2)
  })

  after(async () => {
    await daemon?.dispose()
    await sim?.stop()
    hosts.assertRestored()
  })

  test('SIGTERM drains, closes the rest, cleans up and exits 0', async () => {
    const open = await Promise.all([
      ...Array.from({ length: 20 }, () => openConnection('busy.e2e', 80, 'GET / HTTP/1.1\r\nHost: busy.e2e\r\n\r\n')),
      openConnection('stream.e2e', 7000, 'still talking'),
    ])
    const status = await daemon.status()
    assert.equal(status.openConnections, 21)
    assert.equal(managedRecords(readHosts()).size, 2)

    const exit = await daemon.stop('SIGTERM')
    assert.deepEqual(exit, { code: 0, signal: null })
    await Promise.all(open.map((c) => c.closed)) // every client connection was closed by the drain
    assert.equal(managedRecords(readHosts()).size, 0)
    assert.match(daemon.log(), /stopped; listeners, names and addresses removed/)
  })

  test('a second SIGTERM closes what is still draining at once, and the stop still cleans up', async () => {
    await daemon.dispose() // the first daemon holds the hosts block when this test runs alone
    const patient = E2eDaemon.start({ name: 'shutdown-again', sim, net: netDriverCases('shut2')[1]!, extraConfig: { forwarder: { drain_timeout: '30m' } } })
    try {
      await patient.waitReady((s) => s.services?.serving === 2)
      const open = await Promise.all(Array.from({ length: 5 }, () => openConnection('stream.e2e', 7000, 'still talking')))
      const exit = patient.stop('SIGTERM')
      // at once, as Ctrl-C twice or a signal to the whole process group: before or after the drain has begun
      while (!/SIGTERM: draining and cleaning up/.test(patient.log())) await new Promise((r) => setImmediate(r))
      patient.process.child.kill('SIGTERM')
      assert.deepEqual(await exit, { code: 0, signal: null }, patient.logTail(20))
      await Promise.all(open.map((c) => c.closed))
      assert.equal(managedRecords(readHosts()).size, 0, 'names removed all the same')
      assert.match(patient.log(), /SIGTERM again: closing open connections now/)
      assert.match(patient.log(), /stopped; listeners, names and addresses removed/)
    } finally {
      await patient.dispose()
    }
  })
})

describe('a stop that cannot remove the names', { skip: netnsSkip }, () => {
  const hosts = snapshotHostsFile()

  test('says what it left and how to remove it, and exits 1: never "removed" for names still published', async () => {
    hosts.take()
    const sim = await CloudSimulator.start()
    sim.addEndpoint({ url: 'http://stuck.e2e' })
    const daemon = E2eDaemon.start({ name: 'stuckstop', sim, net: netDriverCases('stst')[1]! })
    // this namespace's /etc/hosts is a bind mount of a private copy: made read-only under the daemon, as a read-only
    // or full file system would leave it
    const remount = (mode: 'ro' | 'rw') => execFileSync('mount', ['-o', `remount,bind,${mode}`, '/etc/hosts'])
    try {
      await daemon.waitReady((s) => s.services?.serving === 1)
      remount('ro')
      assert.deepEqual(await daemon.stop('SIGTERM'), { code: 1, signal: null })
      const records = managedRecords(readHosts())
      assert.equal(records.size, 1, 'the name is still there')
      // and its address with it: on no interface, the name would lead wherever the routes send 10.107.x off the machine
      const [address] = [...records.values()]
      assert.match(execFileSync('ip', ['-4', '-o', 'addr', 'show']).toString(), new RegExp(`inet ${address!.replace(/\./g, '\\.')}/32 `), 'the address is still on the interface')
      const last = daemon.logRecords().at(-1)!
      assert.equal(last.level, 50, 'said at error')
      assert.match(last.msg, /^ngrokd stopped, leaving 1 published name \(stuck\.e2e\) with its address behind \(the error above says why\): fix that, then run `ngrokd cleanup`$/)
      assert.doesNotMatch(daemon.log(), /listeners, names and addresses removed/)
      assert.match(daemon.log(), /cannot unpublish the names of removed endpoints \(1\), trying once more: /)
    } finally {
      remount('rw')
      await ngrokdCli(['cleanup', '--config', daemon.configFile])
      assert.doesNotMatch(execFileSync('ip', ['-4', '-o', 'addr', 'show']).toString(), /inet 10\.107\./, 'cleanup removed the address too')
      await daemon.dispose()
      await sim.stop()
      hosts.assertRestored()
    }
  })
})

describe('a hosts file whose own mount went with a replaced file (a systemd unit\'s ReadWritePaths, then sed -i outside)', { skip: netnsSkip }, () => {
  test('names the cause and the restart that fixes it; under systemd (INVOCATION_ID) exits 1 for Restart=on-failure', async () => {
    // the unit's view, made here: a read-only folder (ProtectSystem=strict) with the hosts file bind-mounted writable over it
    const dir = mkdtempSync(join(tmpdir(), 'ngrokd-e2e-bound-'))
    const system = join(dir, 'etc')
    const writable = join(dir, 'hosts.rw')
    mkdirSync(system)
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'mode=0755', 'ngrokd-e2e-etc', system])
    const hostsFile = join(system, 'hosts')
    writeFileSync(hostsFile, '127.0.0.1\tlocalhost\n')
    writeFileSync(writable, '127.0.0.1\tlocalhost\n')
    execFileSync('mount', ['--bind', writable, hostsFile])
    execFileSync('mount', ['-o', 'remount,ro', system])
    const sim = await CloudSimulator.start()
    sim.addEndpoint({ url: 'http://first.bound' })
    const daemon = E2eDaemon.prepare({ name: 'boundhosts', sim, net: netDriverCases('bndh')[1]!, extraConfig: { names: { hosts_file: hostsFile } } })
    // as systemd runs a service: INVOCATION_ID set, and the parent is PID 1 (here a shell's, in a PID namespace of its own)
    const log = openSync(daemon.logFile, 'a')
    const service = spawn('unshare', ['--pid', '--fork', 'sh', '-c', '"$0" "$@"; exit $?', process.execPath, NGROKD_PACKAGE_BIN, 'run', '--config', daemon.configFile], {
      env: { ...E2eDaemon.childEnv(), INVOCATION_ID: '0123456789abcdef0123456789abcdef' },
      stdio: ['ignore', log, log],
    })
    closeSync(log)
    const exited = new Promise<number | null>((resolve) => service.once('exit', (code) => resolve(code)))
    try {
      await waitUntil(async () => (await callDaemon(daemon.socketPath, 'GET /v1/status').catch(() => undefined))?.services.serving === 1, { what: 'the service serving', timeoutMs: 60_000 })
      assert.match(readFileSync(writable, 'utf8'), /\tfirst\.bound\b/, 'published through the mount')
      // a rename over the file outside the unit's namespace drops the mount in it, as the kernel does: seen here as an unmount
      execFileSync('umount', ['-l', hostsFile])
      sim.addEndpoint({ url: 'http://second.bound' })
      assert.equal(await exited, 1)
      const said = daemon.logRecords().find((r) => r.level === 50 && /exiting, for systemd to start ngrokd again \(Restart=on-failure\)$/.test(r.msg))
      assert.ok(said, daemon.logTail(20))
      assert.match(said.msg, new RegExp(`was replaced by another program \\(a rename over it: sed -i, an editor, a configuration tool\\), which took away the mount that let ngrokd write it .*; restart ngrokd \\(systemctl restart ngrokd\\)`))
    } finally {
      service.kill('SIGKILL')
      await ngrokdCli(['cleanup', '--config', daemon.configFile]).catch(() => {})
      await daemon.dispose()
      await sim.stop()
      execFileSync('umount', ['-l', system])
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
