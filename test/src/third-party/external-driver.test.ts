// Third-party drivers, the way a stranger writes and installs one: the driver of
// docs/writing-a-driver.md (read from the guide's sample blocks) is packed, installed from tarballs
// with the packed @ngrokd/core into a project outside the repository, selected in a config file by
// package name and by path, run by the built daemon against the simulator, and checked with the
// conformance kit from the project's own @ngrokd/core/testing. Then the errors a user meets.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { lookup } from 'node:dns/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { DaemonProcess } from '@ngrokd/core'
import { CloudSimulator, type EchoReply } from '@ngrokd/plugin-simulator'
import { netnsSkip } from '../helpers/netns.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { managedRecords, readHosts } from '../helpers/hosts-file.js'
import { httpRequest } from '../helpers/clients.js'
import { snapshotHostsFile } from '../helpers/hosts-guard.js'
import { DocSamples } from './doc-samples.js'
import { SAMPLE_PACKAGE, SampleProject } from './sample-project.js'
import { outsiderEnv } from './outsider-env.js'

const run = promisify(execFile)

const INDEX = `${SAMPLE_PACKAGE}/index.js`
const CONFORMANCE = `${SAMPLE_PACKAGE}/test/conformance.test.js`
const ADOPT_CHECK = 'open() of an existing interface adopts it with its addresses'
const CLOSE_ADOPT_CHECK = 'close() may be called more than once; close({ removeInterface: false }) leaves the interface for the next open() to adopt'
const CLEANUP_ADOPT_CHECK = 'open({ adoptOnly: true }) adopts what a stopped instance left, and its close({ removeInterface: true }) deletes it (what ngrokd cleanup does)'
const SYSTEM_VIEW_CHECK = 'the system shows the addresses listAddresses() lists, read without the driver (inspect)'
/** The guide's config selects the driver by package name with this line. */
const DRIVER_LINE = `driver: ${SAMPLE_PACKAGE}`
/** Safety nets, not performance bounds. */
const EXIT_SAFETY_MS = 30_000
const CHILD_TIMEOUT_MS = 120_000

describe('third-party drivers, installed and run the way a stranger would', { skip: netnsSkip }, () => {
  const samples = DocSamples.read()
  const hosts = snapshotHostsFile()
  let project: SampleProject
  let sim: CloudSimulator
  let endpointId = ''

  before(async () => {
    hosts.take()
    project = await SampleProject.create(samples)
    sim = await CloudSimulator.start()
    endpointId = sim.addEndpoint({ url: 'http://sample.tp' }).id
  })

  after(async () => {
    await sim?.stop()
    project?.dispose()
    hosts.assertRestored()
  })

  test('the guide\'s driver uses only core\'s public entry points and packs only its code', () => {
    // static `from '…'`, bare `import '…'` and dynamic `import('…')`
    const imports = (source: string) => [...source.matchAll(/\b(?:from|import)\s*\(?\s*'([^']+)'/g)].map((m) => m[1]!)
    for (const specifier of imports(samples.get(INDEX))) {
      assert.ok(specifier.startsWith('node:') || specifier === '@ngrokd/core/driver', `index.js imports ${specifier}`)
    }
    assert.deepEqual(imports(samples.get(CONFORMANCE)).sort(), ['@ngrokd/core/testing', 'ngrokd-driver-sample', 'node:test'])
    assert.deepEqual(project.driverTarballFiles, ['index.js', 'package.json'])
    const manifest = JSON.parse(samples.get(`${SAMPLE_PACKAGE}/package.json`)) as Record<string, any>
    assert.deepEqual(manifest.keywords, ['ngrokd', 'ngrokd-driver'])
    assert.deepEqual(manifest.peerDependencies, { '@ngrokd/core': '^1.0.0' })
    assert.equal(manifest.exports['.'].default, './index.js')
    // installed copies, not links into the repository
    const installed = (name: string) => join(project.dir, 'node_modules', name, 'package.json')
    assert.ok(existsSync(installed(SAMPLE_PACKAGE)), 'the driver is installed in the project')
    assert.ok(existsSync(join(project.dir, 'node_modules/@ngrokd/core/dist/driver/public.js')), 'the packed core is installed in the project')
  })

  test('the conformance kit passes, run with node --test from the project\'s own @ngrokd/core/testing', async () => {
    const file = project.write('test/conformance.test.js', samples.get(CONFORMANCE))
    const r = await nodeTest(project.dir, file)
    assert.equal(r.code, 0, `node --test failed:\n${r.output}`)
    assert.equal(r.counts.fail, 0)
    assert.equal(r.counts.cancelled, 0)
    assert.equal(r.counts.skipped, 1, 'only the check the sample opts out of, with its reason, is skipped')
    assert.match(r.output, new RegExp(`^\\s*ok \\d+ - ${escape(SYSTEM_VIEW_CHECK)} # SKIP`, 'm'))
    assert.ok(r.counts.pass >= 16, `every check of the interface suite ran (pass ${r.counts.pass})`)
    assert.match(r.output, /sample: interface driver conformance/)
    assert.match(r.output, new RegExp(`^\\s*ok \\d+ - ${escape(ADOPT_CHECK)}$`, 'm'))
  })

  test('the same kit fails a variant that never reports an adopted interface', async () => {
    project.write('drivers/never-adopts.js', samples.variant(INDEX, ['adopted: held !== undefined', 'adopted: false']))
    const file = project.write('test/never-adopts.test.js', samples.variant(CONFORMANCE, [`from '${SAMPLE_PACKAGE}'`, `from '../drivers/never-adopts.js'`]))
    const r = await nodeTest(project.dir, file)
    assert.notEqual(r.code, 0, 'node --test must fail')
    assert.equal(r.counts.fail, 3, `exactly the three adoption checks fail:\n${r.output}`)
    for (const check of [ADOPT_CHECK, CLOSE_ADOPT_CHECK, CLEANUP_ADOPT_CHECK]) assert.match(r.output, new RegExp(`^\\s*not ok \\d+ - ${escape(check)}$`, 'm'))
  })

  test('net.driver: ngrokd-driver-sample: names resolve, a request by hostname is answered, status names the driver', async () => {
    const d = startDaemon(project, sim, 'package', samples.get('ngrokd.yaml'))
    try {
      const status = await d.waitServing()
      // the guide's config gives a non-loopback net.subnet: the driver serves from its loopbackSubnet option
      assert.equal(status.subnet, '127.109.0.0/16')

      const address = managedRecords(readHosts()).get('sample.tp')
      assert.ok(address?.startsWith('127.109.'), `sample.tp is published with an address from 127.109.0.0/16 (${address})`)
      assert.equal((await lookup('sample.tp', { family: 4 })).address, address)
      const res = await httpRequest('http://sample.tp/through/the/sample?driver=1')
      assert.equal(res.status, 200)
      const echo = res.json<EchoReply>()
      assert.equal(echo.host, 'sample.tp')
      assert.equal(echo.endpoint_id, endpointId)
      assert.equal(echo.path, '/through/the/sample?driver=1')
      // the address went through the third-party driver: it is in the driver's own state file
      assert.deepEqual(JSON.parse(readFileSync(d.driverStateFile, 'utf8')).addresses, [address])

      // the CLI of the installed package, as the user runs it
      const json = JSON.parse(await d.cli('status', '--json')) as Record<string, any>
      assert.equal(json.driver, SAMPLE_PACKAGE)
      assert.equal(json.interface.kind, 'sample (127.0.0.0/8, state file)')
      assert.equal(json.services.serving, 1)
      const text = await d.cli('status')
      for (const line of samples.get('status').split('\n').filter(Boolean)) {
        assert.ok(text.includes(line), `ngrokd status shows the guide's line ${JSON.stringify(line)}:\n${text}`)
      }

      const exit = await d.stop()
      assert.deepEqual(exit, { code: 0, signal: null }, `clean stop:\n${d.log()}`)
      assert.equal(existsSync(d.driverStateFile), false, 'close({ removeInterface: true }) deleted the driver state file')
    } finally {
      await d.dispose()
    }
  })

  test('net.driver: ./drivers/sample.js resolves relative to the config file', async () => {
    project.write('drivers/sample.js', samples.get(INDEX))
    const d = startDaemon(project, sim, 'path', samples.variant('ngrokd.yaml', [DRIVER_LINE, 'driver: ./drivers/sample.js']))
    try {
      const status = await d.waitServing()
      assert.equal(status.driver, './drivers/sample.js')
      assert.equal(status.interface.kind, 'sample (127.0.0.0/8, state file)')
      const res = await httpRequest('http://sample.tp/by-path')
      assert.equal(res.status, 200)
      assert.equal(res.json<EchoReply>().endpoint_id, endpointId)
      const address = managedRecords(readHosts()).get('sample.tp')
      assert.deepEqual(JSON.parse(readFileSync(d.driverStateFile, 'utf8')).addresses, [address])
      assert.deepEqual(await d.stop(), { code: 0, signal: null }, `clean stop:\n${d.log()}`)
    } finally {
      await d.dispose()
    }
  })

  test('a package that is not installed: NGROKD_ERR_DRIVER_NOT_FOUND with the npm install hint', async () => {
    const fatal = await startFailure(project, sim, 'absent', samples.variant('ngrokd.yaml', [DRIVER_LINE, 'driver: ngrokd-driver-absent']))
    assert.match(fatal, /\(NGROKD_ERR_DRIVER_NOT_FOUND\)/)
    assert.match(fatal, /hint: install it: npm install ngrokd-driver-absent/)
  })

  test('a driver made for ngrokd ^2.0.0: NGROKD_ERR_DRIVER_INCOMPATIBLE', async () => {
    project.write('drivers/needs-core-2.js', samples.variant(INDEX, ["ngrokd: '^1.0.0'", "ngrokd: '^2.0.0'"]))
    const fatal = await startFailure(project, sim, 'core2', samples.variant('ngrokd.yaml', [DRIVER_LINE, 'driver: ./drivers/needs-core-2.js']))
    assert.match(fatal, /\(NGROKD_ERR_DRIVER_INCOMPATIBLE\)/)
    assert.match(fatal, /needs @ngrokd\/core \^2\.0\.0/)
  })

  test("a driver for platforms: ['win32']: NGROKD_ERR_DRIVER_UNSUPPORTED_PLATFORM", async () => {
    project.write('drivers/windows-only.js', samples.variant(INDEX, ["platforms: ['linux']", "platforms: ['win32']"]))
    const fatal = await startFailure(project, sim, 'win32', samples.variant('ngrokd.yaml', [DRIVER_LINE, 'driver: ./drivers/windows-only.js']))
    assert.match(fatal, /\(NGROKD_ERR_DRIVER_UNSUPPORTED_PLATFORM\)/)
    assert.match(fatal, /runs on win32, not linux/)
  })
})

/** A daemon of the project: its config file sits in the project folder, so `net.driver` resolves from there. */
interface ProjectDaemon {
  process: DaemonProcess
  configFile: string
  /** The sample driver's state file for the default `net.interface_name`. */
  driverStateFile: string
  waitServing(): Promise<Record<string, any>>
  /** `ngrokd <args> --config <file>` with the CLI installed in the project; resolves stdout. */
  cli(...args: string[]): Promise<string>
  log(): string
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  dispose(): Promise<void>
}

/**
 * Writes `ngrokd-<tag>.yaml` in the project (the guide's `net:` block, then the test's own keys)
 * and starts the repository's built daemon with it, as with a global ngrokd and a project-local driver: in the
 * daemon the driver's imports of @ngrokd/core resolve to the daemon's own copy (the project's serves its kit run).
 */
function startDaemon(project: SampleProject, sim: CloudSimulator, tag: string, netYaml: string): ProjectDaemon {
  const stateDir = join(project.dir, `state-${tag}`)
  const socketPath = join(project.dir, `${tag}.sock`)
  const logFile = join(project.dir, `${tag}.log`)
  const caFile = project.write(`ingress-ca-${tag}.pem`, sim.caCertPem)
  // YAML accepts JSON values, so every other key is written with JSON.stringify
  const keys: Record<string, unknown> = {
    api: { url: sim.apiUrl, key: sim.apiKey },
    ingress: { ca_file: caFile },
    bound_endpoints: { poll_interval: '1s' },
    names: { hosts_file: '/etc/hosts' },
    state_dir: stateDir,
    control: { socket: socketPath },
    log: { level: 'info' },
  }
  const configFile = project.write(`ngrokd-${tag}.yaml`, `${netYaml}${Object.entries(keys).map(([k, v]) => `${k}: ${JSON.stringify(v)}\n`).join('')}`)
  const daemon = new DaemonProcess({ configFile, socketPath, logFile, env: E2eDaemon.childEnv() })
  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '')
  const stop = async () => {
    const exit = daemon.stop('SIGTERM')
    const hung = await Promise.race([exit.then(() => false), delay(EXIT_SAFETY_MS).then(() => true)])
    if (hung) daemon.child.kill('SIGKILL')
    return exit
  }
  return {
    process: daemon,
    configFile,
    driverStateFile: join(stateDir, 'sample-ngrokd0.json'),
    log,
    stop,
    async waitServing() {
      try {
        return await daemon.waitFor((s) => s.phase === 'running' && s.lastPoll?.ok === true && s.services?.serving === 1, { what: `${tag}: daemon serving`, timeoutMs: 60_000 })
      } catch (e) {
        throw new Error(`${(e as Error).message}\n--- daemon log ---\n${log()}`)
      }
    },
    async cli(...args) {
      const bin = join(project.dir, 'node_modules/@ngrokd/core/dist/bin/ngrokd.js') // the CLI of the packed core (the ngrokd package wraps it)
      const { stdout } = await run(process.execPath, [bin, ...args, '--config', configFile], { cwd: project.dir, env: outsiderEnv(), timeout: CHILD_TIMEOUT_MS })
      return stdout
    },
    async dispose() {
      if (daemon.child.exitCode === null && daemon.child.signalCode === null) await stop()
    },
  }
}

/** Starts a daemon that must refuse to start; resolves the message of its fatal log record. */
async function startFailure(project: SampleProject, sim: CloudSimulator, tag: string, netYaml: string): Promise<string> {
  const d = startDaemon(project, sim, tag, netYaml)
  const exit = await Promise.race([d.process.waitExit(), delay(EXIT_SAFETY_MS).then(() => 'still running' as const)])
  if (exit === 'still running') {
    await d.dispose()
    assert.fail(`${tag}: the daemon did not exit:\n${d.log()}`)
  }
  assert.equal(exit.code, 1, `${tag}: exit code 1:\n${d.log()}`)
  const fatal = d
    .log()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { level: number; msg: string })
    .find((r) => r.level === 60) // pino's fatal
  assert.ok(fatal, `${tag}: a fatal record in the log:\n${d.log()}`)
  return fatal.msg
}

interface NodeTestRun {
  code: number
  output: string
  counts: Record<'pass' | 'fail' | 'cancelled' | 'skipped' | 'todo', number>
}

/** `node --test` on one file, as the driver's author runs it, with the TAP reporter. */
async function nodeTest(cwd: string, file: string): Promise<NodeTestRun> {
  let code = 0
  let output: string
  try {
    output = (await run(process.execPath, ['--test', '--test-reporter=tap', file], { cwd, env: outsiderEnv(), timeout: CHILD_TIMEOUT_MS })).stdout
  } catch (e) {
    const failed = e as { code?: number | string; stdout?: string; stderr?: string }
    if (typeof failed.code !== 'number') throw e
    code = failed.code
    output = `${failed.stdout ?? ''}${failed.stderr ?? ''}`
  }
  const count = (name: string) => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(output)?.[1] ?? NaN)
  const counts = { pass: count('pass'), fail: count('fail'), cancelled: count('cancelled'), skipped: count('skipped'), todo: count('todo') }
  return { code, output, counts }
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}
