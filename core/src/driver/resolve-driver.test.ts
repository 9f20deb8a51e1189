import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { assertCompatible, resolveAutoDriver, resolveDriver } from './resolve-driver.js'
import { defineDriver } from './define-driver.js'

const definePath = new URL('./define-driver.js', import.meta.url).href

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ngrokd-resolve-'))
  try {
    await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

function driverSource({ name = 'file-driver', platforms = ['linux', 'darwin', 'win32'], ngrokd = '^1.0.0' } = {}): string {
  return `import { defineDriver } from ${JSON.stringify(definePath)}
export default defineDriver({ name: ${JSON.stringify(name)}, provides: ['interface'], platforms: ${JSON.stringify(platforms)}, ngrokd: ${JSON.stringify(ngrokd)},
  async create() { return {} } })\n`
}

test('auto picks linux-netlink / darwin-utun with privilege and loopback-alias without, and says why', () => {
  assert.equal(resolveAutoDriver('linux', true).name, 'linux-netlink')
  const fallback = resolveAutoDriver('linux', false)
  assert.equal(fallback.name, 'loopback-alias')
  assert.match(fallback.reason, /CAP_NET_ADMIN/)
  assert.equal(resolveAutoDriver('darwin', true).name, 'darwin-utun')
  const macFallback = resolveAutoDriver('darwin', false)
  assert.equal(macFallback.name, 'loopback-alias')
  assert.match(macFallback.reason, /not root.*sudo for darwin-utun/)
  // windows-wintun chooses between a Wintun adapter and the loopback pseudo-interface itself (wintun.dll or not)
  assert.equal(resolveAutoDriver('win32', true).name, 'windows-wintun')
  assert.equal(resolveAutoDriver('win32', false).name, 'windows-wintun')
  assert.match(resolveAutoDriver('freebsd', true).reason, /no built-in driver for freebsd/)
})

test('a driver given by path resolves relative to the config directory', () =>
  withDir(async (dir) => {
    await writeFile(join(dir, 'mine.mjs'), driverSource())
    const { driver, name } = await resolveDriver('./mine.mjs', { configDir: dir, kind: 'interface' })
    assert.equal(driver.name, 'file-driver')
    assert.equal(name, './mine.mjs')
  }))

test('a package name resolves from node_modules next to the config file', () =>
  withDir(async (dir) => {
    const pkg = join(dir, 'node_modules', 'ngrokd-driver-sample')
    await mkdir(pkg, { recursive: true })
    await writeFile(join(pkg, 'package.json'), JSON.stringify({ name: 'ngrokd-driver-sample', type: 'module', exports: { '.': { default: './index.js' } } }))
    await writeFile(join(pkg, 'index.js'), driverSource({ name: 'sample' }))
    const { driver } = await resolveDriver('ngrokd-driver-sample', { configDir: dir, kind: 'interface' })
    assert.equal(driver.name, 'sample')
  }))

test('a package that exports only an import condition is found too', () =>
  withDir(async (dir) => {
    const pkg = join(dir, 'node_modules', '@acme', 'ngrokd-driver-esm')
    await mkdir(pkg, { recursive: true })
    await writeFile(join(pkg, 'package.json'), JSON.stringify({ name: '@acme/ngrokd-driver-esm', type: 'module', exports: { '.': { import: './main.js' } } }))
    await writeFile(join(pkg, 'main.js'), driverSource({ name: 'esm-only' }))
    const nested = join(dir, 'etc', 'ngrokd')
    await mkdir(nested, { recursive: true })
    const { driver } = await resolveDriver('@acme/ngrokd-driver-esm', { configDir: nested, kind: 'interface' })
    assert.equal(driver.name, 'esm-only')
  }))

test('errors are coded and say how to fix them', () =>
  withDir(async (dir) => {
    await assert.rejects(resolveDriver('ngrokd-driver-missing', { configDir: dir, kind: 'interface' }), (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_DRIVER_NOT_FOUND'))
      assert.match(e.hint ?? '', /npm install ngrokd-driver-missing/)
      return true
    })
    await writeFile(join(dir, 'not-a-driver.mjs'), 'export default { name: "x" }\n')
    await assert.rejects(resolveDriver('./not-a-driver.mjs', { configDir: dir, kind: 'interface' }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_DRIVER_INVALID') && /defineDriver/.test((e as Error).message))
    // a plugin where a driver goes (names.resolver: @ngrokd/plugin-dns): the name its resolver is offered under is the fix
    await writeFile(join(dir, 'a-plugin.mjs'), `import { definePlugin } from ${JSON.stringify(new URL('../plugin/define-plugin.js', import.meta.url).href)}\nexport default definePlugin({ name: 'names-plugin', version: '1.0.0', ngrokd: '*', register() {} })\n`)
    await assert.rejects(resolveDriver('./a-plugin.mjs', { configDir: dir, kind: 'name-resolver' }), (e: unknown) => {
      return isNgrokdError(e, 'NGROKD_ERR_DRIVER_INVALID') && /is the plugin names-plugin, not a driver$/.test(e.message) && /names\.resolver to the name its resolver is offered under/.test(e.hint ?? '')
    })
    // a definition defineDriver refuses as the module loads: the fix is in its source, not a reinstall
    await writeFile(join(dir, 'bad-name.mjs'), driverSource({ name: 'Bad Name' }))
    await assert.rejects(resolveDriver('./bad-name.mjs', { configDir: dir, kind: 'interface' }), (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_DRIVER_INVALID'))
      assert.match(e.message, /name "Bad Name" must match/)
      assert.match(e.hint ?? '', /its own definition is refused as it loads: fix what the message names in its source/)
      return true
    })
    await writeFile(join(dir, 'mac-only.mjs'), driverSource({ platforms: ['darwin'] }))
    await assert.rejects(
      resolveDriver('./mac-only.mjs', { configDir: dir, kind: 'interface', platform: 'linux' }),
      (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_DRIVER_UNSUPPORTED_PLATFORM') && /runs on darwin, not linux/.test((e as Error).message),
    )
    await writeFile(join(dir, 'future.mjs'), driverSource({ ngrokd: '^2.0.0' }))
    await assert.rejects(resolveDriver('./future.mjs', { configDir: dir, kind: 'interface' }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_DRIVER_INCOMPATIBLE'))
    await assert.rejects(resolveDriver('./mine.mjs', { configDir: dir, kind: 'interface' }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_DRIVER_NOT_FOUND') && /relative to the config/.test((e as { hint?: string }).hint ?? ''))
    await writeFile(join(dir, 'resolver.mjs'), driverSource())
    await assert.rejects(resolveDriver('./resolver.mjs', { configDir: dir, kind: 'name-resolver' }), /provides interface, not name-resolver/)
  }))

test("a built-in driver for another system is refused before loading: npm does not install its package here", async () => {
  for (const [name, platform, os] of [['darwin-utun', 'linux', 'darwin'], ['windows-wintun', 'darwin', 'win32'], ['linux-netlink', 'win32', 'linux']] as const) {
    await assert.rejects(resolveDriver(name, { configDir: tmpdir(), kind: 'interface', platform }), (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_DRIVER_UNSUPPORTED_PLATFORM'), String(e))
      assert.match(e.message, new RegExp(`driver "${name}" is for ${os}, not ${platform}: npm installs its package \\(@ngrokd/driver-${name}\\) only there`))
      assert.match(e.hint ?? '', /net\.driver: auto/)
      return true
    })
  }
})

test('defineDriver validates metadata and the version check follows semver', () => {
  assert.throws(() => defineDriver({ name: 'Bad Name', provides: ['interface'], platforms: ['linux'], ngrokd: '^1.0.0', create: async () => ({}) }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_DRIVER_INVALID'))
  // a kind ngrokd would not use is refused, not silently ignored
  const provides = (kinds: unknown) => () => defineDriver({ name: 'x', provides: kinds as ['interface'], platforms: ['linux'], ngrokd: '^1.0.0', create: async () => ({}) })
  assert.throws(provides(['interface', 'forwarder']), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_DRIVER_INVALID') && /its own forwarder/.test((e as Error).message))
  assert.throws(provides(['allocator']), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_DRIVER_INVALID') && /"allocator" is not one of interface, name-resolver/.test((e as Error).message))
  assert.doesNotThrow(provides(['interface', 'name-resolver']))
  const requiring = (requirements: unknown) => () => defineDriver({ name: 'x', provides: ['interface'], platforms: ['linux'], ngrokd: '^1.0.0', requirements: requirements as [], create: async () => ({}) })
  assert.throws(requiring([{ kind: 'bogus', name: 42 }]), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_DRIVER_INVALID') && /requirements\[0\]\.kind "bogus" is not one of capability, kernel-module, library, privilege; requirements\[0\]\.name must be a non-empty string/.test((e as Error).message))
  assert.throws(requiring('CAP_NET_ADMIN'), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_DRIVER_INVALID') && /requirements must be a list/.test((e as Error).message))
  assert.doesNotThrow(requiring([{ kind: 'capability', name: 'CAP_NET_ADMIN' }]))
  assert.doesNotThrow(() => assertCompatible({ name: 'x', ngrokd: '^1.0.0' }, '1.4.2'))
  assert.doesNotThrow(() => assertCompatible({ name: 'x', ngrokd: '^1.0.0' }, '1.5.0-rc.1'))
  assert.throws(() => assertCompatible({ name: 'x', ngrokd: '^2.0.0' }, '1.4.2'), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_DRIVER_INCOMPATIBLE'))
  assert.throws(() => assertCompatible({ name: 'x', ngrokd: 'not a range!' }, '1.0.0'), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_DRIVER_INVALID'))
})

test("a module that throws as it loads, or is not valid JavaScript, is told to be fixed, not reinstalled", () =>
  withDir(async (dir) => {
    await writeFile(join(dir, 'throws.mjs'), "throw new Error('no config for me')\n")
    await writeFile(join(dir, 'broken.mjs'), 'export default {\n')
    const thrown = await resolveDriver('./throws.mjs', { configDir: dir, kind: 'interface' }).then(() => assert.fail('loaded'), (e: unknown) => e as { code?: string; message: string; hint?: string })
    assert.equal(thrown.code, 'NGROKD_ERR_DRIVER_INVALID')
    assert.match(thrown.message, /no config for me/)
    assert.match(thrown.hint ?? '', /^its code threw as it loaded: fix what the message names in .*throws\.mjs/)
    const broken = await resolveDriver('./broken.mjs', { configDir: dir, kind: 'interface' }).then(() => assert.fail('loaded'), (e: unknown) => e as { hint?: string })
    assert.match(broken.hint ?? '', /^its source is not valid JavaScript for this Node\.js/)
  }))
