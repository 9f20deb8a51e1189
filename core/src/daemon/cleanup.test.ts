// `ngrokd cleanup` when its locks cannot be written: a folder in a lock's place, a file where the run dir should
// be, a full state disk (as root, in a mount namespace of its own). The kill -9 itself runs in test/src/e2e/cleanup.test.ts.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readlinkSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { DaemonConfig } from '../config/daemon-config.js'
import { defaultConfig } from '../config/resolve-config.js'
import { isNgrokdError, NgrokdError } from '../errors/ngrokd-error.js'
import { HostsFileNameResolver } from '../names/hosts-file-name-resolver.js'
import { syncResolverFiles } from '../names/macos-resolver-files.js'
import { NRPT_RECORD_FILE, WindowsNrpt } from '../names/windows-nrpt.js'
import { FakeRegistry } from '../names/windows-nrpt.test-helper.js'
import { FakeInterface, type FakeSystem } from '../testing/fakes/fake-interface.js'
import { recordingLogger } from '../testing/recording-logger.js'
import { cleanupLeftovers } from './cleanup.js'
import { InstanceLock, STATE_LOCK_FILE } from './instance-lock.js'

const USER_LINES = '127.0.0.1 localhost\n10.0.0.5 myhost.user\n'

/** What a daemon killed with kill -9 leaves: a hosts block, two addresses on its interface, and its locks (the runDir's named in `locks`). */
async function leftovers(dir: string): Promise<{ config: DaemonConfig; system: FakeSystem; runDir: string; locks: string[] }> {
  const base = defaultConfig(dir)
  const config: DaemonConfig = {
    ...base,
    stateDir: join(dir, 'state'),
    control: { ...base.control, socket: join(dir, 'ngrokd.sock') },
    names: { ...base.names, hostsFile: join(dir, 'hosts') },
    net: { ...base.net, interfaceName: 'ngrkc0' },
  }
  await mkdir(config.stateDir, { mode: 0o700 })
  await writeFile(config.names.hostsFile, USER_LINES)
  const names = new HostsFileNameResolver({ path: config.names.hostsFile, stateDir: config.stateDir })
  await names.open()
  await names.publish({ records: [{ hostname: 'api.demo', address: '10.107.0.2' }, { hostname: 'db.demo', address: '10.107.0.3' }] })
  await names.close()
  const system: FakeSystem = { interfaces: new Map([['ngrkc0', new Set(['10.107.0.2', '10.107.0.3'])]]) }
  // the daemon's locks, as its kill -9 left them: a pid that is no ngrokd
  const runDir = join(dir, 'run')
  const lock = await InstanceLock.acquireFor(config, { runDir, subnet: config.net.subnet })
  const locks = await readdir(runDir)
  await lock.release()
  const dead = (path: string) => writeFile(path, `${JSON.stringify({ pid: 2 ** 22 + 1, socket: config.control.socket, interface: 'ngrkc0', stateDir: config.stateDir, startedAt: new Date().toISOString() })}\n`)
  for (const path of [join(config.stateDir, STATE_LOCK_FILE), ...locks.map((f) => join(runDir, f))]) await dead(path)
  return { config, system, runDir, locks }
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ngrokd-cleanup-'))
  try {
    await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

test('locks that cannot be replaced (a folder in their place) stop nothing: the rest is removed, each such lock is listed as not removed with its fix', () =>
  withDir(async (dir) => {
    const { config, system, runDir, locks } = await leftovers(dir)
    for (const f of locks) {
      await rm(join(runDir, f))
      await mkdir(join(runDir, f))
    }
    const logger = recordingLogger()
    const report = await cleanupLeftovers(config, logger, { runDir, interface: new FakeInterface({ system }) })
    assert.deepEqual(report.removed, [`the ngrokd block of ${config.names.hostsFile}`, '2 addresses on ngrkc0', 'interface ngrkc0 (fake-interface)'])
    // taken (the stale one replaced) before the folder stopped the locking, and given back
    assert.deepEqual(await readdir(config.stateDir).then((files) => files.filter((f) => f.startsWith('ngrokd.'))), [])
    assert.equal(report.failed.length, 3, report.failed.join('\n'))
    for (const f of locks) {
      const path = join(runDir, f)
      assert.ok(report.failed.some((line) => line.includes(path) && /EISDIR/.test(line) && line.includes(`rm -r ${path}`)), `${path} is said not removed, with its fix:\n${report.failed.join('\n')}`)
      assert.ok((await stat(path)).isDirectory(), 'a folder is not cleanup\'s to remove')
    }
    assert.equal(await readFile(config.names.hostsFile, 'utf8'), USER_LINES)
    assert.equal(system.interfaces.has('ngrkc0'), false)
    assert.match(logger.at('warn').map((r) => r.msg).join('\n'), /the locks cannot be taken, and no running ngrokd holds them/)
  }))

test('when the locks cannot be written, a lock a running daemon holds still refuses the cleanup, and nothing is removed', () =>
  withDir(async (dir) => {
    const { config, system, runDir, locks } = await leftovers(dir)
    const stateLock = join(config.stateDir, STATE_LOCK_FILE)
    await rm(stateLock)
    await mkdir(stateLock) // the first lock fails, as on a full state disk
    const held = locks.find((f) => f.startsWith('interface-'))!
    // a daemon of this process, started now: alive
    await writeFile(join(runDir, held), `${JSON.stringify({ pid: process.pid, socket: '/run/live.sock', interface: 'ngrkc0', stateDir: join(dir, 'other'), startedAt: new Date().toISOString() })}\n`)
    await assert.rejects(cleanupLeftovers(config, recordingLogger(), { runDir, interface: new FakeInterface({ system }) }), (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_ALREADY_RUNNING'), String(e))
      assert.match((e as Error).message, new RegExp(`another ngrokd \\(pid ${process.pid},.*its control socket is /run/live\\.sock`))
      assert.match((e as { hint?: string }).hint ?? '', /^stop that daemon first/)
      return true
    })
    assert.deepEqual((await readdir(runDir)).sort(), [...locks].sort(), 'no stale lock removed either')
    assert.match(await readFile(config.names.hostsFile, 'utf8'), /api\.demo/)
    assert.deepEqual([...system.interfaces.get('ngrkc0')!].sort(), ['10.107.0.2', '10.107.0.3'])
  }))

test("the dns plugin's routes a killed daemon left go too: macOS's /etc/resolver files of this state_dir's daemon (a user's and another instance's stay), Windows' NRPT rules by the record in state_dir", () =>
  withDir(async (dir) => {
    const { config, system, runDir } = await leftovers(dir)
    const resolverDir = join(dir, 'resolver')
    await syncResolverFiles({ dir: resolverDir, suffixes: ['prod', 'demo'], target: { nameserver: '10.107.0.1', port: 53, owner: config.stateDir } })
    await syncResolverFiles({ dir: resolverDir, suffixes: ['stage'], target: { nameserver: '10.108.0.1', port: 53, owner: join(dir, 'other-instance') } })
    await writeFile(join(resolverDir, 'corp'), 'nameserver 192.168.1.1\n')
    const mac = await cleanupLeftovers(config, recordingLogger(), { runDir, interface: new FakeInterface({ system }), platform: 'darwin', resolverDir })
    assert.ok(mac.removed.includes(`${resolverDir} files of demo, prod`), mac.removed.join('\n'))
    assert.deepEqual((await readdir(resolverDir)).sort(), ['corp', 'stage'], "another instance's file stays")

    const registry = new FakeRegistry()
    new WindowsNrpt(registry, join(config.stateDir, NRPT_RECORD_FILE)).apply({ suffixes: ['prod', 'demo'], servers: ['10.107.0.1'] })
    const win = await cleanupLeftovers(config, recordingLogger(), { runDir, interface: new FakeInterface({ system }), platform: 'win32', nrpt: async () => registry })
    assert.ok(win.removed.includes('the NRPT rules of .demo, .prod'), win.removed.join('\n'))
    assert.equal(registry.keys.size, 0)
    const again = await cleanupLeftovers(config, recordingLogger(), { runDir, interface: new FakeInterface({ system }), platform: 'win32', nrpt: async () => assert.fail('nothing recorded: the registry is not opened') })
    assert.deepEqual(again.failed, [])
    assert.ok(!again.removed.some((line) => line.includes('NRPT')))
  }))

test("on Windows control.socket only names the pipe: a file at that path (any user may make C:\\run) neither stops the cleanup nor is removed", () =>
  withDir(async (dir) => {
    const { config, system, runDir } = await leftovers(dir)
    await mkdir(dirname(config.control.socket), { recursive: true })
    await writeFile(config.control.socket, 'planted')
    const report = await cleanupLeftovers(config, recordingLogger(), { runDir, interface: new FakeInterface({ system }), platform: 'win32', nrpt: async () => new FakeRegistry() })
    assert.deepEqual(report.failed, [])
    assert.ok(report.removed.includes('2 addresses on ngrkc0'), report.removed.join('\n'))
    assert.doesNotMatch(await readFile(config.names.hostsFile, 'utf8'), /api\.demo/, 'the hosts block went')
    assert.equal(await readFile(config.control.socket, 'utf8'), 'planted', 'not a file of ngrokd there')
  }))

test("a driver that cannot open is listed as not removed, and the rest is still done and reported (the plugins' cleanup too)", () =>
  withDir(async (dir) => {
    const { config, system, runDir } = await leftovers(dir)
    const definePluginUrl = new URL('../plugin/define-plugin.js', import.meta.url).href
    await writeFile(join(dir, 'after.mjs'), `import { definePlugin } from '${definePluginUrl}'\nexport default definePlugin({ name: 'after', version: '1.0.0', ngrokd: '^1.0.0', register() {}, async cleanup() { return ['its leftover'] } })\n`)
    const iface = new FakeInterface({ system })
    iface.injectFailure('open', { error: new NgrokdError('NGROKD_ERR_ADDRESS_CONFLICT', 'net.subnet 10.107.0.0/16 overlaps route 10.0.0.0/8 via utun1') })
    const report = await cleanupLeftovers({ ...config, configDir: dir, plugins: ['./after.mjs'] }, recordingLogger(), { runDir, interface: iface })
    assert.ok(report.removed.includes('its leftover (plugin after)'), report.removed.join('\n'))
    assert.equal(report.failed.length, 1, report.failed.join('\n'))
    assert.match(report.failed[0]!, /^the interface and its addresses \(net\.driver .*\): net\.subnet 10\.107\.0\.0\/16 overlaps route 10\.0\.0\.0\/8 via utun1 \(NGROKD_ERR_ADDRESS_CONFLICT\)/)
    assert.ok(report.removed.some((line) => line.startsWith('the ngrokd block of ')), report.removed.join('\n'))
    assert.doesNotMatch(await readFile(config.names.hostsFile, 'utf8'), /api\.demo/)
  }))

test('with cleanup.remove_interface_on_stop false the cleanup keeps the interface, as a clean stop does (its addresses go); uninstall asks for it gone', () =>
  withDir(async (dir) => {
    const { config: base, system, runDir } = await leftovers(dir)
    const config: DaemonConfig = { ...base, cleanup: { ...base.cleanup, removeInterfaceOnStop: false } }
    const kept = await cleanupLeftovers(config, recordingLogger(), { runDir, interface: new FakeInterface({ system }) })
    assert.ok(kept.removed.includes('2 addresses on ngrkc0'), kept.removed.join('\n'))
    assert.ok(!kept.removed.some((line) => line.startsWith('interface ')), kept.removed.join('\n'))
    assert.deepEqual([...(system.interfaces.get('ngrkc0') ?? ['gone'])], [], 'the interface stays, without addresses')
    const gone = await cleanupLeftovers(config, recordingLogger(), { runDir, interface: new FakeInterface({ system }), removeInterface: true })
    assert.ok(gone.removed.includes('interface ngrkc0 (fake-interface)'), gone.removed.join('\n'))
    assert.equal(system.interfaces.has('ngrkc0'), false)
  }))

test("each plugin's cleanup() runs after the interface, told of a kept interface: what it removed is listed, a throw is listed as not removed", () =>
  withDir(async (dir) => {
    const { config: base, system, runDir } = await leftovers(dir)
    const definePluginUrl = new URL('../plugin/define-plugin.js', import.meta.url).href
    const write = (file: string, cleanup: string) =>
      writeFile(join(dir, file), `import { definePlugin } from '${definePluginUrl}'\nexport default definePlugin({ name: '${file.replace('.mjs', '')}', version: '1.0.0', ngrokd: '^1.0.0', optionsSchema: { type: 'object', properties: { n: { type: 'integer', default: 3 } } }, register() {}, ${cleanup} })\n`)
    await write('tidy.mjs', `async cleanup(ctx) { globalThis.__tidyCalls = [...(globalThis.__tidyCalls ?? []), { options: ctx.options, interface: ctx.interface, stateDir: ctx.stateDir }]; return ['its leftover'] }`)
    await write('broken.mjs', `async cleanup() { throw new Error('cannot reach its store') }`)
    const config: DaemonConfig = { ...base, configDir: dir, plugins: ['./tidy.mjs', './broken.mjs'], cleanup: { ...base.cleanup, removeInterfaceOnStop: false } }
    const report = await cleanupLeftovers(config, recordingLogger(), { runDir, interface: new FakeInterface({ system }) })
    assert.ok(report.removed.includes('its leftover (plugin tidy)'), report.removed.join('\n'))
    assert.ok(report.failed.some((line) => line === 'what plugin broken left: cannot reach its store'), report.failed.join('\n'))
    const calls = (globalThis as { __tidyCalls?: Array<{ options: unknown; interface?: { name: string }; stateDir: string }> }).__tidyCalls ?? []
    assert.deepEqual(calls.map((c) => [c.options, c.interface?.name, c.stateDir]), [[{ n: 3 }, 'ngrkc0', config.stateDir]], 'options with defaults; the interface, kept, named')
    // the interface removed: the plugin is not told of one
    await cleanupLeftovers({ ...config, cleanup: { ...config.cleanup, removeInterfaceOnStop: true } }, recordingLogger(), { runDir, interface: new FakeInterface({ system }) })
    assert.equal((globalThis as { __tidyCalls?: Array<{ interface?: unknown }> }).__tidyCalls!.at(-1)!.interface, undefined)
  }))

test('a run dir that is a file stops nothing either: the warning names it and its fix', () =>
  withDir(async (dir) => {
    const { config, system, runDir } = await leftovers(dir)
    await rm(runDir, { recursive: true })
    await writeFile(runDir, 'x\n')
    const logger = recordingLogger()
    const report = await cleanupLeftovers(config, logger, { runDir, interface: new FakeInterface({ system }) })
    assert.deepEqual(report.failed, [])
    assert.deepEqual(report.removed, [
      `stale lock ${join(config.stateDir, STATE_LOCK_FILE)}`,
      `the ngrokd block of ${config.names.hostsFile}`,
      '2 addresses on ngrkc0',
      'interface ngrkc0 (fake-interface)',
    ])
    const warning = logger.at('warn').map((r) => r.msg).join('\n')
    assert.match(warning, new RegExp(`the lock directory ${runDir} cannot be made: it is a file.*\\(NGROKD_ERR_STATE\\)`))
    assert.match(warning, new RegExp(`hint: remove it: rm ${runDir} `))
  }))

test("a driver whose close() never settles is reported as not done, not waited for: the rest is removed and listed", () =>
  withDir(async (dir) => {
    const { config, system, runDir } = await leftovers(dir)
    const stuck = new FakeInterface({ system })
    stuck.close = () => new Promise<void>(() => {}) // holds nothing: without the deadline the process would just end, silently
    const report = await cleanupLeftovers(config, recordingLogger(), { runDir, interface: stuck, driverDeadlineMs: 200 })
    assert.ok(report.removed.includes(`the ngrokd block of ${config.names.hostsFile}`), report.removed.join('\n'))
    assert.ok(report.removed.includes('2 addresses on ngrkc0'), report.removed.join('\n'))
    assert.equal(report.failed.length, 1, report.failed.join('\n'))
    assert.match(report.failed[0]!, /^interface ngrkc0 and its addresses \(fake-interface\): the driver did not finish within 0\.2 s \(a call that hangs\)/)
  }))

const privileged = process.platform === 'linux' && process.getuid?.() === 0
const unshareAvailable = privileged && spawnSync('unshare', ['--mount', '--propagation', 'private', 'true']).status === 0

test('on a full state disk the cleanup goes on without its lock; the hosts block, whose removal needs a backup there, is listed as not removed with its reason', { skip: !privileged ? 'needs root on Linux' : !unshareAvailable ? 'unshare --mount is not available' : false }, () => {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js'
  const child = fileURLToPath(new URL(`./test-fixtures/cleanup-full-disk-child${ext}`, import.meta.url))
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--test'))
  const r = spawnSync('unshare', ['--mount', '--propagation', 'private', process.execPath, ...execArgv, child], {
    encoding: 'utf8',
    env: { ...process.env, NGROKD_TEST_PARENT_MNTNS: readlinkSync('/proc/self/ns/mnt') },
  })
  assert.equal(r.status, 0, r.stderr)
  const { report, hosts, interfaces, warnings } = JSON.parse(r.stdout) as { report: { removed: string[]; failed: string[] }; hosts: string; interfaces: string[]; warnings: string[] }
  assert.deepEqual(report.removed, ['2 addresses on ngrkf0', 'interface ngrkf0 (fake-interface)'])
  assert.equal(report.failed.length, 1, report.failed.join('\n'))
  assert.match(report.failed[0]!, /^the ngrokd block of \S+\/hosts: .*cannot save a backup in \S+\/state before rewriting \S+\/hosts: ENOSPC.*; make \S+\/state writable and free space on its file system/)
  assert.doesNotMatch(report.failed[0]!, /\n/, 'one line, as cleanup lists it')
  assert.match(hosts, /api\.demo/, 'the block stays, as said')
  assert.deepEqual(interfaces, [])
  assert.match(warnings.join('\n'), /the locks cannot be taken, and no running ngrokd holds them.*no space left on its device \(ENOSPC\)/s)
})
