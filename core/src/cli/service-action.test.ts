import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { resolveConfig } from '../config/resolve-config.js'
import { FakeScm } from '../service/windows-scm.test-helper.js'
import { planWindowsService } from '../service/windows-service.js'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { assertServiceProgramsTrusted, installedServiceFor, servicedNodePath, installRefusal } from './service-action.js'

test("the service runs node by the link on PATH that leads to this one (an upgrade keeps it valid), else by this one's path", () => {
  const dir = mkdtempSync(join(tmpdir(), 'ngrokd-node-path-'))
  try {
    const cellar = join(dir, 'Cellar/node/24.1.0/bin')
    mkdirSync(cellar, { recursive: true })
    const real = join(cellar, 'node')
    writeFileSync(real, '')
    const bin = join(dir, 'bin')
    mkdirSync(bin)
    symlinkSync(real, join(bin, 'node'))
    // a folder that is a link (merged /usr: /bin → /usr/bin) names the same file, not a link to it
    symlinkSync(cellar, join(dir, 'linked-folder'))
    const other = join(dir, 'other')
    mkdirSync(other)
    writeFileSync(join(other, 'node'), '')
    assert.equal(servicedNodePath(real, [other, join(dir, 'linked-folder'), 'relative', bin].join(':')), join(bin, 'node'))
    assert.equal(servicedNodePath(real, [cellar, bin].join(':')), real, 'this node itself comes first on PATH')
    assert.equal(servicedNodePath(real, [other, join(dir, 'linked-folder')].join(':')), real)
    assert.equal(servicedNodePath(real, ''), real)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('uninstall is refused while the Windows service of its instance is registered: the Service Control Manager is asked', async () => {
  const scm = new FakeScm()
  const config = resolveConfig({}, { env: {} }).config
  const work = resolveConfig({ instance: 'work' }, { env: {} }).config
  assert.equal(await installedServiceFor(config, undefined, 'win32', scm), undefined)
  const plan = planWindowsService({ nodePath: 'C:\\node\\node.exe', cliPath: 'C:\\npm\\ngrokd\\bin\\ngrokd.js', instance: 'work' })
  scm.createService(0n, plan)
  scm.closeServiceHandle([...scm.open][0]!)
  assert.deepEqual(await installedServiceFor(work, undefined, 'win32', scm), { service: 'ngrokd-work' })
  assert.equal(await installedServiceFor(config, undefined, 'win32', scm), undefined, 'another instance')
  assert.deepEqual(scm.calls.filter((c) => c.startsWith('OpenServiceW')), ['OpenServiceW(ngrokd, 0x4)', 'OpenServiceW(ngrokd-work, 0x4)', 'OpenServiceW(ngrokd, 0x4)'])
  assert.equal(scm.open.size, 0)
})

/**
 * A Windows machine's node under Program Files and ngrokd in ann's own npm folder, judged by stand-in SDDL: `body`
 * gets their paths and the rule that reads it.
 */
async function withUsersNpmNgrokd(body: (node: string, cli: string, rule: { platform: 'win32'; readSddl: (p: string) => string }) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ngrokd-service-programs-'))
  try {
    const node = join(dir, 'Program Files', 'nodejs', 'node.exe')
    const cli = join(dir, 'Users', 'ann', 'AppData', 'Roaming', 'npm', 'node_modules', 'ngrokd', 'bin', 'ngrokd.js')
    for (const f of [node, cli]) {
      mkdirSync(join(f, '..'), { recursive: true })
      writeFileSync(f, '')
    }
    const user = 'S-1-5-21-1-2-3-1001'
    const sddl = new Map([[join(dir, 'Users', 'ann'), `O:${user}D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;${user})`]])
    await body(node, cli, { platform: 'win32', readSddl: (p: string) => sddl.get(p) ?? 'O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)' })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

test("Windows: the service would run node and ngrokd as LocalSystem, so ngrokd in a user's own npm folder is refused", () =>
  withUsersNpmNgrokd(async (node, cli, rule) => {
    await assertServiceProgramsTrusted(node, node, rule)
    await assert.rejects(assertServiceProgramsTrusted(node, cli, rule), (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED'), String(e))
      assert.match(e.message, /^refusing ngrokd program the service would run .*ngrokd\.js: its folder .*ann is owned by S-1-5-21-1-2-3-1001/)
      return true
    })
  }))

test('Windows: service install --dry-run says the install would be refused, as on Linux and macOS', () =>
  withUsersNpmNgrokd(async (node, cli, rule) => {
    assert.equal(await installRefusal(node, node, rule), undefined)
    assert.match((await installRefusal(node, cli, rule)) ?? '', /^# the install would be refused: refusing ngrokd program the service would run .*: its folder .*ann is owned by S-1-5-21-1-2-3-1001.*\n# {3}hint: from an elevated prompt, install ngrokd under a folder only Administrators can write/)
  }))

test("macOS and Linux: a node another user owns (Homebrew's, nvm's) is refused for the service with where a root-owned one comes from", { skip: process.getuid?.() !== 0 && 'needs root to give a file to another user' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ngrokd-service-node-'))
  try {
    const node = join(dir, 'Cellar', 'node', '24.1.0', 'bin', 'node')
    mkdirSync(join(node, '..'), { recursive: true })
    writeFileSync(node, '')
    chownSync(node, 501, 20)
    for (const platform of ['darwin', 'linux'] as const) {
      await assert.rejects(assertServiceProgramsTrusted(node, node, { platform }), (e: unknown) => {
        assert.ok(isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED'), String(e))
        assert.match(e.message, /^refusing node binary the service would run .*node: .*owned by uid 501/)
        assert.match(e.hint ?? '', platform === 'darwin' ? /nodejs\.org installer's \/usr\/local\/bin\/node .*do not chown/ : /distribution's \/usr\/bin\/node/)
        return true
      })
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test("macOS and Linux: every file of the ngrokd the service would run is judged, through a workspace's links however they loop, with how to make the installation root's", { skip: process.getuid?.() !== 0 && 'needs root to give a file to another user' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ngrokd-service-installation-'))
  try {
    const node = join(dir, 'bin', 'node')
    const file = (path: string, text = '') => {
      mkdirSync(join(path, '..'), { recursive: true })
      writeFileSync(path, text)
    }
    file(node)
    // a workspace: ngrokd's @ngrokd/core is a link to the package's folder, which depends on ngrokd again
    const workspace = join(dir, 'workspace')
    const cli = join(workspace, 'ngrokd', 'bin', 'ngrokd.js')
    file(cli)
    file(join(workspace, 'ngrokd', 'package.json'), JSON.stringify({ name: 'ngrokd', dependencies: { '@ngrokd/core': '^1.0.0' } }))
    file(join(workspace, 'core', 'package.json'), JSON.stringify({ name: '@ngrokd/core', dependencies: { ngrokd: '^1.0.0' } }))
    const coreFile = join(workspace, 'core', 'dist', 'cli', 'index.js')
    file(coreFile)
    mkdirSync(join(workspace, 'node_modules', '@ngrokd'), { recursive: true })
    symlinkSync('../../core', join(workspace, 'node_modules', '@ngrokd', 'core'))
    symlinkSync('../ngrokd', join(workspace, 'node_modules', 'ngrokd'))
    // a global install: the packages it loads are in its own node_modules
    const installed = join(dir, 'lib', 'node_modules', 'ngrokd')
    const installedCli = join(installed, 'bin', 'ngrokd.js')
    file(installedCli)
    file(join(installed, 'package.json'), JSON.stringify({ name: 'ngrokd', dependencies: { '@ngrokd/core': '^1.0.0' } }))
    file(join(installed, 'node_modules', '@ngrokd', 'core', 'package.json'), JSON.stringify({ name: '@ngrokd/core' }))
    const driver = join(installed, 'node_modules', '@ngrokd', 'driver-linux-netlink', 'dist', 'index.js')
    file(driver)
    // a prefix where npm hoisted the packages ngrokd loads beside it: the folder that holds them all is named
    const hoisted = join(dir, 'hoisted', 'lib', 'node_modules')
    const hoistedCli = join(hoisted, 'ngrokd', 'bin', 'ngrokd.js')
    file(hoistedCli)
    file(join(hoisted, 'ngrokd', 'package.json'), JSON.stringify({ name: 'ngrokd', dependencies: { '@ngrokd/core': '^1.0.0' } }))
    file(join(hoisted, '@ngrokd', 'core', 'package.json'), JSON.stringify({ name: '@ngrokd/core' }))
    const hoistedCore = join(hoisted, '@ngrokd', 'core', 'dist', 'index.js')
    file(hoistedCore)

    for (const platform of ['darwin', 'linux'] as const) {
      await assertServiceProgramsTrusted(node, cli, { platform })
      await assertServiceProgramsTrusted(node, installedCli, { platform })
    }
    chownSync(coreFile, 1001, 1001)
    chownSync(driver, 1001, 1001)
    chownSync(hoistedCore, 1001, 1001)
    // what to give root whole: the package the refused file is in (a workspace's link leads out of the installation),
    // the installation that holds it, or the node_modules folder that holds both
    for (const [entry, planted, installation] of [[cli, coreFile, join(workspace, 'core')], [installedCli, driver, installed], [hoistedCli, hoistedCore, hoisted]] as const) {
      await assert.rejects(assertServiceProgramsTrusted(node, entry), (e: unknown) => {
        assert.ok(isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED'), String(e))
        assert.match(e.message, new RegExp(`^refusing .*ngrokd installation the service would run.* ${planted}: it is owned by (\\S+ \\()?uid 1001`))
        assert.match(e.hint ?? '', /^install ngrokd as root \(sudo npm install -g ngrokd/)
        assert.ok(e.hint?.includes(`chown -R root ${installation} && chmod -R go-w ${installation}`), e.hint)
        assert.doesNotMatch(e.hint ?? '', /\/etc\/ngrokd/)
        return true
      })
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
