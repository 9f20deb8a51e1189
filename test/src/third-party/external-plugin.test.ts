// Third-party plugins, the way a stranger writes and installs one: the plugin of docs/writing-a-plugin.md (read
// from the guide's sample blocks) is packed, installed from tarballs with the packed @ngrokd/core into a project
// outside the repository, checked with the conformance kit from the project's own @ngrokd/core/testing, and run by
// the built daemon against the simulator, selected by package name and by path (a lone file that no package holds).
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { controlRequest } from '@ngrokd/core'
import { CloudSimulator } from '@ngrokd/plugin-simulator'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { snapshotHostsFile } from '../helpers/hosts-guard.js'
import { ngrokdCli } from '../helpers/ngrokd-cli.js'
import { waitUntil } from '../helpers/wait-until.js'
import { DocSamples, PLUGIN_GUIDE } from './doc-samples.js'
import { SampleProject } from './sample-project.js'
import { outsiderEnv } from './outsider-env.js'

const PACKAGE = 'ngrokd-plugin-journal'
/** Safety net, not a performance bound. */
const CHILD_TIMEOUT_MS = 120_000

describe('third-party plugins, installed and run the way a stranger would', { skip: netnsSkip }, () => {
  const samples = DocSamples.read(PLUGIN_GUIDE)
  const hosts = snapshotHostsFile()
  let project: SampleProject
  let sim: CloudSimulator

  before(async () => {
    hosts.take()
    project = await SampleProject.create(samples, PACKAGE)
    sim = await CloudSimulator.start()
    sim.addEndpoint({ url: 'http://journal.tp' })
  })

  after(async () => {
    await sim?.stop()
    project?.dispose()
    hosts.assertRestored()
  })

  test("the guide's test: the conformance kit passes, run with node --test from the project's own @ngrokd/core/testing", async () => {
    const file = join(project.dir, 'node_modules', PACKAGE, 'journal.test.js')
    copyFileSync(join(project.authorDir, 'journal.test.js'), file)
    const { stdout } = await promisify(execFile)(process.execPath, ['--test', '--test-reporter=tap', file], { cwd: project.dir, env: outsiderEnv(), timeout: CHILD_TIMEOUT_MS })
    assert.match(stdout, /^# fail 0$/m)
    assert.match(stdout, /^# skipped 0$/m)
    assert.ok(Number(/^# pass (\d+)$/m.exec(stdout)?.[1]) >= 6, stdout)
  })

  for (const how of ['package name', 'path'] as const) {
    test(`selected by ${how}: it writes its journal, answers its route, and status and doctor show it`, async () => {
      // by path: the guide's index.js alone, in a folder no package holds (nothing beside it installs @ngrokd/core)
      const loose = join(project.root, 'loose')
      mkdirSync(loose, { recursive: true })
      copyFileSync(join(project.authorDir, 'index.js'), join(loose, 'journal.mjs'))
      const name = how === 'package name' ? PACKAGE : './journal.mjs'
      const daemon = E2eDaemon.start({
        name: how === 'path' ? 'plugin-path' : 'plugin-pkg',
        sim,
        net: netDriverCases('tpplug')[0]!,
        configDir: how === 'path' ? loose : project.dir,
        extraConfig: { plugins: [{ name, options: { file: 'served.txt' } }] },
      })
      try {
        const status = await daemon.waitReady((s) => s.services?.serving === 1)
        assert.deepEqual(
          (status.plugins as Array<{ name: string; state: string }>).map((p) => [p.name, p.state]),
          [['journal', 'running']],
          daemon.log(),
        )
        const journal = join(daemon.stateDir, 'plugins', 'journal', 'served.txt')
        await waitUntil(() => existsSync(journal) && readFileSync(journal, 'utf8') === 'journal.tp\n', { what: 'the journal file' })
        const last = await controlRequest<{ hostnames: string[] }>(daemon.socketPath, 'GET', '/v1/plugins/journal/last')
        assert.deepEqual(last.hostnames, ['journal.tp'])
        const doctor = await ngrokdCli(['doctor', '--json', '--offline', '--config', daemon.configFile])
        const checks = (JSON.parse(doctor.stdout) as { checks: Array<{ id: string; status: string }> }).checks
        assert.deepEqual(
          checks.filter((c) => c.id === 'plugin.journal' || c.id === 'journal.written').map((c) => [c.id, c.status]),
          [
            ['plugin.journal', 'ok'],
            ['journal.written', 'ok'],
          ],
          doctor.stdout,
        )
        assert.deepEqual(await daemon.stop('SIGTERM'), { code: 0, signal: null }, daemon.log())
      } finally {
        await daemon.dispose()
      }
    })
  }
})
