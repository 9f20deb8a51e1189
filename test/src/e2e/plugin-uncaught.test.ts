// An exception thrown out of a callback a plugin scheduled (a timer set in a hook, a callback a route started) reaches
// no try of the daemon's: it was the process's uncaught exception, which stopped the daemon. It is known to be that
// plugin's now: the plugin is degraded with the error, and the daemon serves on.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CloudSimulator } from '@ngrokd/plugin-simulator'
import { controlRequest } from '@ngrokd/core'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { snapshotHostsFile } from '../helpers/hosts-guard.js'

describe("a plugin's callback that throws", { skip: netnsSkip }, () => {
  let sim: CloudSimulator
  let dir: string
  const hosts = snapshotHostsFile()

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ngrokd-e2e-plugin-uncaught-'))
    sim = await CloudSimulator.start()
    sim.addEndpoint({ url: 'http://uncaught.e2e' })
  })

  after(async () => {
    await sim?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  test('degrades that plugin, with the error, and the daemon serves on; a stop is clean', async () => {
    hosts.take()
    const plugin = join(dir, 'throws-later.mjs')
    writeFileSync(
      plugin,
      `import { definePlugin } from ${JSON.stringify(import.meta.resolve('@ngrokd/core/plugin'))}
export default definePlugin({ name: 'throws-later', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) {
  ctx.hooks.onStart(() => { setTimeout(() => { throw new Error('thrown from a timer of its own') }, 1) })
  ctx.addRoute('POST', '/later', () => { setImmediate(() => { throw new Error('thrown after its route answered') }); return { ok: true } })
} })
`,
    )
    // one whose register() is still running (it waits) when the timer it set throws
    const slow = join(dir, 'throws-while-registering.mjs')
    writeFileSync(
      slow,
      `import { definePlugin } from ${JSON.stringify(import.meta.resolve('@ngrokd/core/plugin'))}
export default definePlugin({ name: 'throws-while-registering', version: '1.0.0', ngrokd: '^1.0.0', async register() {
  setTimeout(() => { throw new Error('thrown while its register() ran') }, 1)
  await new Promise((r) => setTimeout(r, 200))
} })
`,
    )
    // one whose register() failed: a timer it left behind throwing later leaves it failed
    const failed = join(dir, 'failed-then-throws.mjs')
    writeFileSync(
      failed,
      `import { definePlugin } from ${JSON.stringify(import.meta.resolve('@ngrokd/core/plugin'))}
export default definePlugin({ name: 'failed-then-throws', version: '1.0.0', ngrokd: '^1.0.0', register() {
  setTimeout(() => { throw new Error('thrown by what a failed register() left') }, 100)
  throw new Error('register() refused')
} })
`,
    )
    const net = netDriverCases('uncg')[1]!
    const daemon = E2eDaemon.start({ name: 'uncg', sim, net, extraConfig: { plugins: [slow, failed, plugin] } })
    try {
      const byName = (s: Record<string, any>, name: string) => (s.plugins ?? []).find((p: { name: string }) => p.name === name)
      const status = await daemon.waitFor((s) => s.services?.serving === 1 && byName(s, 'throws-later')?.state === 'degraded', 'the plugin degraded by its timer')
      assert.equal(status.phase, 'running')
      assert.match(byName(status, 'throws-later').error.message, /^a callback of its own threw and nothing caught it: thrown from a timer of its own$/)
      assert.equal(byName(status, 'throws-while-registering').state, 'degraded')
      assert.match(byName(status, 'throws-while-registering').error.message, /thrown while its register\(\) ran$/)
      await daemon.waitFor((s) => daemon.logRecords().some((l) => /thrown by what a failed register\(\) left/.test(l.msg)) && s.phase === 'running', 'the failed plugin\'s timer said')
      assert.equal(byName(await daemon.waitFor(() => true, 'status'), 'failed-then-throws').state, 'failed', 'a failed plugin stays failed')
      assert.deepEqual(await controlRequest(daemon.socketPath, 'POST', '/v1/plugins/throws-later/later', {}), { ok: true })
      await daemon.waitFor((s) => /thrown after its route answered/.test(byName(s, 'throws-later')?.error?.message ?? ''), 'the route\'s callback said')
      assert.equal((await daemon.waitFor((s) => s.phase === 'running', 'still running')).services.serving, 1)
      assert.equal(daemon.logRecords().filter((l) => /uncaught exception/.test(l.msg)).length, 0, 'never taken for the daemon\'s own')
      assert.deepEqual(await daemon.stop('SIGTERM'), { code: 0, signal: null })
    } finally {
      await daemon.dispose()
      hosts.assertRestored()
    }
  })
})
