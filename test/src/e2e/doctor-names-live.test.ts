// With a daemon running, doctor shows what its name-resolver driver says of the resolver it has open, as it does for
// the interface driver; without one, the module's own checks (doctor.test.ts).
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CloudSimulator } from '@ngrokd/plugin-simulator'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { ngrokdCli } from '../helpers/ngrokd-cli.js'

describe("doctor and a running daemon's name-resolver driver", { skip: netnsSkip }, () => {
  let sim: CloudSimulator
  let dir: string

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ngrokd-e2e-doctor-names-'))
    sim = await CloudSimulator.start()
    sim.addEndpoint({ url: 'http://live.e2e' })
  })

  after(async () => {
    await sim?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  test("the open resolver's checks replace the module's of the same id", async () => {
    const driver = join(dir, 'json-names.mjs')
    const names = join(dir, 'names.json')
    writeFileSync(
      driver,
      `import { writeFileSync } from 'node:fs'
import { defineDriver } from ${JSON.stringify(import.meta.resolve('@ngrokd/core/driver'))}
export default defineDriver({ name: 'jsonnames', provides: ['name-resolver'], platforms: [process.platform], ngrokd: '^1.0.0',
  async create(_ctx, options) {
    let records = []
    return { nameResolver: { resolver: 'jsonnames',
      open: async () => {},
      publish: async ({ records: next }) => { records = [...next]; writeFileSync(options.file, JSON.stringify(records)); return { changed: true } },
      list: async () => records, close: async () => {},
      diagnose: async () => [{ id: 'jsonnames.file', status: 'ok', summary: 'the open resolver holds ' + records.length + ' name(s)' }] } }
  },
  async diagnose() { return [{ id: 'jsonnames.file', status: 'warn', summary: 'the module alone cannot tell' }] } })
`,
    )
    const net = netDriverCases('dnlv')[1]!
    const daemon = E2eDaemon.start({ name: 'dnlv', sim, net, extraConfig: { names: { resolver: driver, driver_options: { file: names } } } })
    try {
      await daemon.waitFor((s) => s.services?.serving === 1, 'the endpoint served')
      assert.deepEqual(JSON.parse(readFileSync(names, 'utf8')).map((r: { hostname: string }) => r.hostname), ['live.e2e'])
      const r = await ngrokdCli(['doctor', '--json', '--offline', '--config', daemon.configFile])
      const checks = (JSON.parse(r.stdout) as { checks: Array<{ id: string; status: string; summary: string }> }).checks.filter((c) => c.id === 'jsonnames.file')
      assert.deepEqual(checks, [{ id: 'jsonnames.file', status: 'ok', summary: 'the open resolver holds 1 name(s)' }])
      assert.deepEqual(await daemon.stop('SIGTERM'), { code: 0, signal: null })
    } finally {
      await daemon.dispose()
    }
  })
})
