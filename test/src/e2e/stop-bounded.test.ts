// A stop never waits for the ngrok API: with the API hanging on every call (and api.timeout far
// longer than any stop), SIGTERM still drains, cleans up and exits. Before, the poll in flight
// could not be cancelled and a stop took as long as the API hung.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { CloudSimulator } from '@ngrokd/plugin-simulator'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { snapshotHostsFile } from '../helpers/hosts-guard.js'
import { readHosts } from '../helpers/hosts-file.js'
import { waitUntil } from '../helpers/wait-until.js'
import { linkExists } from '../helpers/ip-link.js'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Far longer than E2eDaemon.stop()'s 30 s safety net: a stop that waited for the API would fail the test. */
const HANG_MS = 600_000

describe('stop with the API hanging', { skip: netnsSkip }, () => {
  let sim: CloudSimulator
  let daemon: E2eDaemon
  const hosts = snapshotHostsFile()

  before(async () => {
    hosts.take()
    sim = await CloudSimulator.start()
    sim.addEndpoint({ url: 'http://hang.e2e' })
    daemon = E2eDaemon.start({ name: 'hang', sim, net: netDriverCases('hang')[0]!, extraConfig: { api: { timeout: '15m' } } })
    await daemon.waitReady((s) => s.services?.serving === 1)
  })

  after(async () => {
    sim?.resetFaults()
    await daemon?.dispose()
    await sim?.stop()
    hosts.assertRestored()
  })

  test('SIGTERM during a hung poll exits cleanly, names and addresses removed', async () => {
    sim.injectApiFault({ kind: 'latency', ms: HANG_MS, pathPrefix: '/kubernetes_operators' })
    void daemon.process.poll().catch(() => {}) // a poll now, which hangs on the API
    await waitUntil(() => sim.stats().api.inFlight > 0, { what: 'the poll to hang in the API' })
    const exit = await daemon.stop('SIGTERM')
    assert.deepEqual(exit, { code: 0, signal: null })
    assert.equal(readHosts().addressesOf.has('hang.e2e'), false, 'the name was removed')
    assert.ok(daemon.logRecords().some((l) => /listeners, names and addresses removed/.test(l.msg)))
  })
})

describe('stop during the start', { skip: netnsSkip }, () => {
  const hosts = snapshotHostsFile()

  test('SIGTERM while plugins hold the start (a resolver that never opens, onStart hooks that never end) exits 0 within the stop\'s own bound and removes the interface', async () => {
    hosts.take()
    const dir = mkdtempSync(join(tmpdir(), 'ngrokd-e2e-stop-starting-'))
    const marker = join(dir, 'opening')
    // a resolver whose open() never settles: the start waits on it when SIGTERM comes
    writeFileSync(
      join(dir, 'stuck-names.mjs'),
      `import { writeFileSync } from 'node:fs'
import { definePlugin } from ${JSON.stringify(import.meta.resolve('@ngrokd/core/plugin'))}
export default definePlugin({ name: 'stuck-names', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) {
  ctx.provideNameResolver('stuck-names', () => ({
    open: () => { writeFileSync(${JSON.stringify(marker)}, ''); return new Promise(() => {}) },
    publish: async () => {}, list: async () => [], close: async () => {}, diagnose: async () => [] }))
  ctx.hooks.onStart(() => new Promise(() => {}))
} })
`,
    )
    // and one more whose onStart never ends: waited for, the two plugins' 10 s each would outlast the stop's own bound
    writeFileSync(
      join(dir, 'stuck-start.mjs'),
      `import { definePlugin } from ${JSON.stringify(import.meta.resolve('@ngrokd/core/plugin'))}
export default definePlugin({ name: 'stuck-start', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) { ctx.hooks.onStart(() => new Promise(() => {})) } })
`,
    )
    const sim = await CloudSimulator.start()
    sim.addEndpoint({ url: 'http://starting.e2e' })
    const net = netDriverCases('stst')[1]!
    const daemon = E2eDaemon.start({ name: 'stst', sim, net, extraConfig: { plugins: [join(dir, 'stuck-names.mjs'), join(dir, 'stuck-start.mjs')], names: { resolver: 'stuck-names' } } })
    try {
      await waitUntil(() => existsSync(marker), { what: 'the resolver\'s open() to be called' })
      assert.ok(linkExists(net.interfaceName!), 'the interface is made before the names open')
      const exit = await daemon.stop('SIGTERM')
      assert.deepEqual(exit, { code: 0, signal: null }, daemon.log())
      assert.equal(linkExists(net.interfaceName!), false, 'the interface the start made is removed')
      assert.doesNotMatch(daemon.log(), /could not start/, 'a stop asked for is no failure to start')
      assert.ok(daemon.logRecords().some((l) => l.level === 30 && /listeners, names and addresses removed/.test(l.msg)), 'and the stop is said')
    } finally {
      await daemon.dispose()
      await sim.stop()
      rmSync(dir, { recursive: true, force: true })
      hosts.assertRestored()
    }
  })

  test('SIGTERM while a start that failed on its own undoes itself: the undoing is waited for, and the exit code is the failure\'s', async () => {
    hosts.take()
    const dir = mkdtempSync(join(tmpdir(), 'ngrokd-e2e-stop-failing-'))
    const stopping = join(dir, 'stopping')
    const go = join(dir, 'go')
    // a driver whose open() fails: the start fails by itself and undoes what it made, plugins' onStop included
    writeFileSync(
      join(dir, 'failing-driver.mjs'),
      `import { defineDriver } from ${JSON.stringify(import.meta.resolve('@ngrokd/core/driver'))}
export default defineDriver({ name: 'failing', provides: ['interface'], platforms: ['linux'], ngrokd: '*',
  async create() { return { interface: { driver: 'failing', async open() { throw new Error('cannot open by design') },
    async addAddress() {}, async removeAddress() {}, async applyAddresses() {}, async listAddresses() { return [] }, async close() {}, async diagnose() { return [] } } } },
})
`,
    )
    // whose onStop is under way when SIGTERM comes, and ends only after it
    writeFileSync(
      join(dir, 'slow-stop.mjs'),
      `import { existsSync, writeFileSync } from 'node:fs'
import { definePlugin } from ${JSON.stringify(import.meta.resolve('@ngrokd/core/plugin'))}
export default definePlugin({ name: 'slow-stop', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) {
  ctx.hooks.onStop(async () => { writeFileSync(${JSON.stringify(stopping)}, ''); while (!existsSync(${JSON.stringify(go)})) await new Promise((r) => setTimeout(r, 5)) })
} })
`,
    )
    const sim = await CloudSimulator.start()
    const daemon = E2eDaemon.start({ name: 'stfl', sim, net: netDriverCases('stfl')[1]!, extraConfig: { plugins: [join(dir, 'slow-stop.mjs')], net: { driver: join(dir, 'failing-driver.mjs') } } })
    try {
      await waitUntil(() => existsSync(stopping), { what: 'the failed start\'s undoing to reach the plugin\'s onStop' })
      const exited = daemon.stop('SIGTERM')
      await waitUntil(() => /SIGTERM: draining and cleaning up/.test(daemon.log()), { what: 'the SIGTERM to be taken' })
      writeFileSync(go, '')
      assert.deepEqual(await exited, { code: 1, signal: null }, daemon.log())
      assert.match(daemon.log(), /ngrokd could not start: .*cannot open by design/)
      assert.equal(existsSync(join(daemon.stateDir, 'ngrokd.lock')), false, 'the undoing ran to its end: the lock is released')
    } finally {
      await daemon.dispose()
      await sim.stop()
      rmSync(dir, { recursive: true, force: true })
      hosts.assertRestored()
    }
  })
})
