// SIGTERM with connections still open: the daemon drains for forwarder.drain_timeout, closes what is
// left, removes its names and exits 0 — it never hangs on a connection that will not finish.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { CloudSimulator } from '@ngrokd/plugin-simulator'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { managedRecords, readHosts } from '../helpers/hosts-file.js'
import { snapshotHostsFile } from '../helpers/hosts-guard.js'

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
