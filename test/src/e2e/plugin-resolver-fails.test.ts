// A plugin's name resolver that throws or hangs in publish() after it opened is contained as one whose open() fails:
// the plugin is degraded, the names go to the hosts file from then on, polls go on, and a stop removes everything.
// Before, a hung publish() stopped every poll and held the stop past its bound (exit 1, interface and socket left);
// a throwing one put every service in error, with no name published anywhere.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CloudSimulator } from '@ngrokd/plugin-simulator'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { snapshotHostsFile } from '../helpers/hosts-guard.js'
import { readHosts } from '../helpers/hosts-file.js'
import { waitUntil } from '../helpers/wait-until.js'
import { linkExists } from '../helpers/ip-link.js'

/** A plugin offering resolver `name` whose publish() answers once, then does `then` (JS source of a function body). */
function resolverPlugin(dir: string, name: string, then: string): string {
  const file = join(dir, `${name}.mjs`)
  writeFileSync(
    file,
    `import { writeFileSync } from 'node:fs'
import { definePlugin } from ${JSON.stringify(import.meta.resolve('@ngrokd/core/plugin'))}
let calls = 0
export default definePlugin({ name: '${name}', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) {
  ctx.provideNameResolver('${name}', () => ({ resolver: '${name}',
    open: async () => {},
    publish: async () => { if (++calls === 1) return { changed: true }; writeFileSync(${JSON.stringify(join(dir, `${name}.failing`))}, ''); ${then} },
    list: async () => [], close: async () => {}, diagnose: async () => [] }))
} })
`,
  )
  return file
}

describe('a plugin name resolver that fails after it opened', { skip: netnsSkip }, () => {
  let sim: CloudSimulator
  let dir: string
  const hosts = snapshotHostsFile()

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ngrokd-e2e-resolver-fails-'))
    sim = await CloudSimulator.start()
    sim.addEndpoint({ url: 'http://first.e2e' })
  })

  after(async () => {
    await sim?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  test('publish() that throws: the plugin is degraded, the names go to the hosts file, services serve', async () => {
    hosts.take()
    const net = netDriverCases('rfth')[1]!
    const daemon = E2eDaemon.start({ name: 'rfth', sim, net, extraConfig: { plugins: [resolverPlugin(dir, 'throwing', `throw new Error('the zone is gone')`)], names: { resolver: 'throwing' } } })
    const added = sim.addEndpoint({ url: 'http://second.e2e' })
    try {
      const status = await daemon.waitFor((s) => s.services?.serving === 2 && readHosts().addressesOf.has('second.e2e'), 'both services to serve with their names in the hosts file')
      assert.equal(status.services.error, 0)
      assert.deepEqual(status.plugins.map((p: Record<string, any>) => [p.name, p.state]), [['throwing', 'degraded']])
      assert.match(status.plugins[0].error.message, /name resolver throwing: the zone is gone/)
      assert.equal(readHosts().addressesOf.has('first.e2e'), true)
      const said = daemon.logRecords().filter((l) => /publishing names in \/etc\/hosts instead/.test(l.msg))
      assert.equal(said.length, 1, 'the fallback is said once')
      assert.deepEqual(await daemon.stop('SIGTERM'), { code: 0, signal: null })
      assert.equal(readHosts().addressesOf.has('first.e2e'), false, 'the names are removed at the stop')
    } finally {
      sim.removeEndpoint(added.id)
      await daemon.dispose()
      hosts.assertRestored()
    }
  })

  test('publish() that hangs when SIGTERM comes: the stop does not wait for it past its own bound, and removes the interface, names and socket', async () => {
    hosts.take()
    const net = netDriverCases('rfhg')[1]!
    const daemon = E2eDaemon.start({ name: 'rfhg', sim, net, extraConfig: { plugins: [resolverPlugin(dir, 'hanging', 'return new Promise(() => {})')], names: { resolver: 'hanging' } } })
    const added = sim.addEndpoint({ url: 'http://third.e2e' })
    try {
      await waitUntil(() => existsSync(join(dir, 'hanging.failing')), { what: 'a publish() to hang' })
      const exit = await daemon.stop('SIGTERM')
      assert.deepEqual(exit, { code: 0, signal: null }, daemon.logTail(20))
      if (net.kernelLink) assert.equal(linkExists(net.interfaceName!), false, 'the interface is removed')
      assert.equal(existsSync(daemon.socketPath), false, 'the control socket is removed')
      assert.ok(daemon.logRecords().some((l) => l.plugin === 'hanging' && /publish\(\) of name resolver hanging of plugin hanging did not finish/.test(l.msg)), 'the hang is said, naming the plugin')
      assert.ok(daemon.logRecords().some((l) => l.level === 30 && /listeners, names and addresses removed/.test(l.msg)))
    } finally {
      sim.removeEndpoint(added.id)
      await daemon.dispose()
      hosts.assertRestored()
    }
  })
})
