// Issue "lean and fast": `ngrokd run` loads only what the start needs. Each module left out was measured
// (BENCHMARKS.md): Ajv compiling the config schema (~70 ms), prom-client and its OpenTelemetry API (~85
// modules, ~50 ms), node-forge's ASN.1 for a CSR, the worker pool on a machine that forwards in-thread,
// pino-pretty when the log is JSON, tldts's Public Suffix List (doctor's alone), cosmiconfig and its JSON
// parser when the file is named (--config), and Node's own undici, which an ES import of node:http loads on
// Node 24 (~30 ms). This test keeps them out: it logs every module the daemon loads. It also checks that the
// daemon's code comes from the bundles the build makes (scripts/bundle-dist.mjs): Node 20's loader pays per file.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CloudSimulator } from '@ngrokd/plugin-simulator'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { snapshotHostsFile } from '../helpers/hosts-guard.js'

const net = netDriverCases('lean')[1]! // linux-netlink, the default driver on Linux

/**
 * The npm packages among the modules a process loaded (`node_modules/<name>/…` in each line). Ajv's
 * runtime helpers (`ajv/dist/runtime/`), which the precompiled config validator requires, are not Ajv.
 */
function packagesIn(logFile: string): Set<string> {
  const names = new Set<string>()
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)/.exec(line)
    if (m && !(m[1] === 'ajv' && /^dist\/runtime\/|^package\.json$/.test(m[2]!))) names.add(m[1]!)
  }
  return names
}

/** The packages the build bundles into core's dist: a start loads none of their files. */
const INLINED_IN_CORE = ['tsyringe', 'tslib', 'reflect-metadata', 'semver']
/** The bundled packages of the start: a file of theirs is an entry their package.json names, or a shared chunk. */
const BUNDLED = ['@ngrokd/core', '@ngrokd/driver-linux-netlink', '@ngrokd/plugin-simulator']

/** Of the files of the bundled packages the log holds: those in `dist/chunks/`, and those neither there nor an entry. */
function bundledFiles(logFile: string): { chunks: number; outside: string[] } {
  const require = createRequire(import.meta.url)
  const allowed = BUNDLED.map((name) => {
    const pkgFile = require.resolve(`${name}/package.json`)
    const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as Record<string, unknown>
    const targets = (v: unknown): string[] => (typeof v === 'string' ? [v] : v && typeof v === 'object' ? Object.values(v).flatMap(targets) : [])
    const root = dirname(pkgFile)
    return { root, entries: new Set([pkg.exports, pkg.bin, pkg.imports].flatMap(targets).map((t) => join(root, t))) }
  })
  const outside: string[] = []
  let chunks = 0
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    const file = line.startsWith('file:') ? fileURLToPath(line) : line
    const pkg = allowed.find((p) => file.startsWith(join(p.root, 'dist') + '/'))
    if (!pkg) continue
    if (file.startsWith(join(pkg.root, 'dist', 'chunks') + '/')) chunks++
    else if (!pkg.entries.has(file)) outside.push(file)
  }
  return { chunks, outside }
}

describe('what `ngrokd run` loads', { skip: netnsSkip }, () => {
  let sim: CloudSimulator
  let daemon: E2eDaemon
  const hosts = snapshotHostsFile()
  const dir = mkdtempSync(join(tmpdir(), 'ngrokd-lean-'))
  const moduleLog = join(dir, 'modules.log')
  const hook = new URL('../helpers/module-log.js', import.meta.url).href

  before(async () => {
    hosts.take()
    sim = await CloudSimulator.start()
    sim.addEndpoint({ url: 'http://web.lean' })
    writeFileSync(moduleLog, '')
    daemon = E2eDaemon.start({
      name: 'lean',
      sim,
      net,
      extraConfig: { forwarder: { workers: 0 } },
      env: { NODE_OPTIONS: `--import=${hook}`, MODULE_LOG_FILE: moduleLog },
    })
    await daemon.waitReady((s) => s.services?.serving === 1)
  })

  after(async () => {
    await daemon?.dispose()
    await sim?.stop()
    hosts.assertRestored()
    rmSync(dir, { recursive: true, force: true })
  })

  test('a first start: no Ajv, prom-client, worker pool, pretty printer, suffix list or config search; node-forge only to make the key', async () => {
    assert.equal((await daemon.stop('SIGTERM')).code, 0)
    const loaded = packagesIn(moduleLog)
    assert.ok(loaded.has('pino') && loaded.has('koffi'), `the log holds the daemon's packages: ${[...loaded].join(' ')}`)
    assert.ok(loaded.has('node-forge'), 'registering made a key and CSR')
    for (const name of ['ajv', 'prom-client', '@opentelemetry/api', 'tinypool', 'pino-pretty', 'tldts', 'cosmiconfig', 'parse-json']) {
      assert.ok(!loaded.has(name), `${name} was loaded: ${[...loaded].sort().join(' ')}`)
    }
  })

  test('a restart on the saved registration does not load node-forge either', async () => {
    writeFileSync(moduleLog, '')
    daemon.restart()
    await daemon.waitReady((s) => s.services?.serving === 1)
    assert.equal((await daemon.stop('SIGTERM')).code, 0)
    const loaded = packagesIn(moduleLog)
    assert.ok(loaded.has('pino'), 'the log holds the restart\'s modules')
    for (const name of INLINED_IN_CORE) assert.ok(!loaded.has(name), `${name} was loaded from node_modules, not from core's bundle`)
    const { chunks, outside } = bundledFiles(moduleLog)
    assert.ok(chunks > 0, 'the log holds chunks of the bundles')
    assert.deepEqual(outside, [], 'modules of ngrokd loaded one by one, not from its bundles')
    assert.ok(!loaded.has('node-forge'), 'no CSR code without a key to make')
    // an ES import of node:http reads its lazy WebSocket export, which loads undici (Node 22+): 30 ms of a start
    const builtins = readFileSync(moduleLog, 'utf8').split('\n').filter((l) => l.startsWith('builtin:'))
    assert.ok(builtins.some((l) => l.includes('NativeModule http')), 'the log holds the internal modules')
    assert.deepEqual(builtins.filter((l) => l.includes('undici')), [], 'undici, for fetch or WebSocket, was loaded')
  })
})
