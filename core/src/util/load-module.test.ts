import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, chown, mkdir, mkdtemp, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { resolveDriver } from '../driver/resolve-driver.js'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { resolvePlugin } from '../plugin/resolve-plugin.js'
import { localUser, localUserSkip, type LocalUser } from './local-user.test-helper.js'

const defineDriverUrl = new URL('../driver/define-driver.js', import.meta.url).href
const definePluginUrl = new URL('../plugin/define-plugin.js', import.meta.url).href

/** What a planted module did when imported: it counts itself in a global. */
const ran = (): string[] => ((globalThis as { planted?: string[] }).planted ??= [])
const mark = (tag: string) => `(globalThis.planted ??= []).push(${JSON.stringify(tag)})\n`

const plantedDriver = (tag: string) =>
  `import { defineDriver } from ${JSON.stringify(defineDriverUrl)}\n${mark(tag)}` +
  `export default defineDriver({ name: 'planted', provides: ['interface'], platforms: [process.platform], ngrokd: '^1.0.0', async create() { return {} } })\n`
const plantedPlugin = (tag: string) =>
  `import { definePlugin } from ${JSON.stringify(definePluginUrl)}\n${mark(tag)}` +
  `export default definePlugin({ name: 'planted', version: '1.0.0', ngrokd: '^1.0.0', register() {} })\n`

async function plantPackage(dir: string, name: string, source: string): Promise<void> {
  const pkg = join(dir, 'node_modules', ...name.split('/'))
  await mkdir(pkg, { recursive: true })
  await writeFile(join(pkg, 'package.json'), JSON.stringify({ name, type: 'module', exports: { '.': { default: './index.js' } } }))
  await writeFile(join(pkg, 'index.js'), source)
}

describe('drivers and plugins: built-ins from the installation, nothing another user planted (as root)', { skip: localUserSkip() }, () => {
  let dir: string
  let eve: LocalUser
  before(async () => {
    eve = localUser()!
    dir = await mkdtemp(join(tmpdir(), 'ngrokd-planted-'))
    await chmod(dir, 0o755)
  })
  after(() => rm(dir, { recursive: true, force: true }))

  it('a built-in driver name loads the installed driver, never node_modules/@ngrokd/driver-* of the config or current directory', async () => {
    const cwd = join(dir, 'cwd-driver')
    await plantPackage(cwd, '@ngrokd/driver-loopback-alias', plantedDriver('builtin-driver'))
    for (const spec of ['loopback-alias', '@ngrokd/driver-loopback-alias']) {
      const { driver } = await resolveDriver(spec, { configDir: cwd, kind: 'interface' })
      assert.equal(driver.name, 'loopback-alias', `${spec} is the installed driver`)
    }
    assert.deepEqual(ran(), [], 'the planted package never ran')
  })

  it('a built-in plugin name loads the installed plugin, never a planted node_modules/@ngrokd/plugin-*', async () => {
    const cwd = join(dir, 'cwd-plugin')
    await plantPackage(cwd, '@ngrokd/plugin-prometheus', plantedPlugin('builtin-plugin'))
    const { plugin } = await resolvePlugin('prometheus', { configDir: cwd })
    assert.equal(plugin.name, 'prometheus')
    assert.deepEqual(ran(), [])
  })

  it('a driver or plugin file owned by another user is refused before it runs, naming owner and mode', async () => {
    const evil = join(dir, 'evil-driver.mjs')
    await writeFile(evil, plantedDriver('path-driver'), { mode: 0o644 })
    await chown(evil, eve.uid, eve.gid)
    await assert.rejects(resolveDriver('./evil-driver.mjs', { configDir: dir, kind: 'interface' }), (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED'), String(e))
      assert.match(e.message, new RegExp(`refusing interface driver module ${evil}: .* is owned by ${eve.name} \\(uid ${eve.uid}\\).*mode 0644`))
      return true
    })
    const evilPlugin = join(dir, 'evil-plugin.mjs')
    await writeFile(evilPlugin, plantedPlugin('path-plugin'), { mode: 0o666 })
    await chmod(evilPlugin, 0o666)
    await assert.rejects(resolvePlugin('./evil-plugin.mjs', { configDir: dir }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED') && /writable by its group and everyone/.test(e.message))
    assert.deepEqual(ran(), [])
  })

  it('a third-party package planted by another user in the config directory is refused', async () => {
    const project = join(dir, 'project')
    await plantPackage(project, 'ngrokd-driver-sample', plantedDriver('package-driver'))
    await chown(join(project, 'node_modules', 'ngrokd-driver-sample'), eve.uid, eve.gid)
    await assert.rejects(resolveDriver('ngrokd-driver-sample', { configDir: project, kind: 'interface' }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED') && e.message.includes(`is owned by ${eve.name}`))
    assert.deepEqual(ran(), [])
  })

  it('a root-owned package whose own files another user may change is refused: it would import them', async () => {
    const project = join(dir, 'project-lib')
    await plantPackage(project, 'ngrokd-driver-split', `import './lib/impl.js'\n${plantedDriver('split-driver')}`)
    const lib = join(project, 'node_modules', 'ngrokd-driver-split', 'lib')
    await mkdir(lib)
    await writeFile(join(lib, 'impl.js'), mark('split-impl'), { mode: 0o644 })
    await chown(join(lib, 'impl.js'), eve.uid, eve.gid)
    await assert.rejects(resolveDriver('ngrokd-driver-split', { configDir: project, kind: 'interface' }), (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED'), String(e))
      assert.match(e.message, new RegExp(`refusing interface driver module file ${join(lib, 'impl.js')}: it is owned by ${eve.name}`))
      return true
    })
    assert.deepEqual(ran(), [])
  })

  it('a root-owned plugin package whose dependency another user installed is refused: the dependency would run as root', async () => {
    const project = join(dir, 'project-deps')
    await plantPackage(project, 'evil-helper', mark('evil-helper'))
    await plantPackage(project, 'ngrokd-plugin-dep', `import 'evil-helper'\n${plantedPlugin('dep-plugin')}`)
    // the plugin declares what it imports; npm put both side by side
    const plugin = join(project, 'node_modules', 'ngrokd-plugin-dep')
    await writeFile(join(plugin, 'package.json'), JSON.stringify({ name: 'ngrokd-plugin-dep', type: 'module', exports: { '.': { default: './index.js' } }, dependencies: { 'evil-helper': '^1.0.0' }, peerDependencies: { '@ngrokd/core': '^1.0.0' } }))
    const helper = join(project, 'node_modules', 'evil-helper')
    for (const f of [helper, join(helper, 'index.js'), join(helper, 'package.json')]) await chown(f, eve.uid, eve.gid)
    for (const spec of ['ngrokd-plugin-dep', plugin]) {
      await assert.rejects(resolvePlugin(spec, { configDir: project }), (e: unknown) => {
        assert.ok(isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED'), String(e))
        assert.match(e.message, new RegExp(`refusing package evil-helper that the plugin module depends on ${helper}: ${helper} is owned by ${eve.name}`))
        return true
      }, spec)
    }
    assert.deepEqual(ran(), [])
    // Node finds the dependency without a package.json too (its index.js), and require() finds a lone evil-helper.js
    await rm(join(helper, 'package.json'))
    await assert.rejects(resolvePlugin('ngrokd-plugin-dep', { configDir: project }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED') && e.message.includes(`${helper} is owned by ${eve.name}`))
    await rm(helper, { recursive: true })
    await writeFile(`${helper}.js`, mark('evil-helper-cjs'))
    await chown(`${helper}.js`, eve.uid, eve.gid)
    await assert.rejects(resolvePlugin('ngrokd-plugin-dep', { configDir: project }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED') && e.message.includes(`${helper}.js is owned by ${eve.name}`))
    assert.deepEqual(ran(), [])
    await rm(`${helper}.js`)
    // the nearest entry is one Node passes over (a link to nothing): it finds, and so runs, the one further up
    await plantPackage(project, 'evil-helper', mark('evil-helper'))
    for (const f of [helper, join(helper, 'index.js'), join(helper, 'package.json')]) await chown(f, eve.uid, eve.gid)
    await mkdir(join(plugin, 'node_modules'))
    await symlink(join(dir, 'nowhere', 'evil-helper'), join(plugin, 'node_modules', 'evil-helper'))
    await assert.rejects(resolvePlugin('ngrokd-plugin-dep', { configDir: project }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED') && e.message.includes(`${helper} is owned by ${eve.name}`))
    assert.deepEqual(ran(), [])
    await rm(join(plugin, 'node_modules'), { recursive: true })
    // the same dependency of root's own passes
    for (const f of [helper, join(helper, 'index.js'), join(helper, 'package.json')]) await chown(f, 0, 0)
    const { plugin: loaded } = await resolvePlugin('ngrokd-plugin-dep', { configDir: project })
    assert.equal(loaded.name, 'planted')
    assert.deepEqual(ran().splice(0), ['evil-helper', 'dep-plugin'])
  })

  it('a module named by path is refused when a file of its package, or of its folder, is another user\'s: it could import it', async () => {
    for (const withPackage of [true, false]) {
      const folder = join(dir, withPackage ? 'path-package' : 'path-folder')
      await mkdir(join(folder, 'lib'), { recursive: true })
      if (withPackage) await writeFile(join(folder, 'package.json'), JSON.stringify({ name: 'mine', type: 'module' }), { mode: 0o644 })
      // in a package, its entry may import from anywhere in it; a lone folder's file from beside it
      const entry = withPackage ? join('lib', 'index.mjs') : 'index.mjs'
      await writeFile(join(folder, entry), `import '${withPackage ? '../helper.mjs' : './helper.mjs'}'\n${plantedPlugin('path-package-plugin')}`, { mode: 0o644 })
      await writeFile(join(folder, 'helper.mjs'), mark('planted-helper'), { mode: 0o644 })
      await chown(join(folder, 'helper.mjs'), eve.uid, eve.gid)
      await assert.rejects(resolvePlugin(`./${join(withPackage ? 'path-package' : 'path-folder', entry)}`, { configDir: dir }), (e: unknown) => {
        assert.ok(isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED'), String(e))
        assert.match(e.message, new RegExp(`refusing plugin module file ${join(folder, 'helper.mjs')}: it is owned by ${eve.name}`))
        return true
      }, withPackage ? 'in a package (nearest package.json)' : 'in a folder of its own')
    }
    assert.deepEqual(ran(), [])
  })

  it('a folder a package links to is judged as its own; a lone file is judged with its folder\'s entries, not what lies below', async () => {
    const linked = join(dir, 'linked')
    await mkdir(join(linked, 'plugin'), { recursive: true })
    await mkdir(join(dir, 'elsewhere'))
    await writeFile(join(dir, 'elsewhere', 'helper.mjs'), mark('linked-helper'), { mode: 0o644 })
    await chown(join(dir, 'elsewhere', 'helper.mjs'), eve.uid, eve.gid)
    await symlink(join(dir, 'elsewhere'), join(linked, 'plugin', 'sub'))
    await writeFile(join(linked, 'package.json'), JSON.stringify({ name: 'linked', type: 'module' }), { mode: 0o644 })
    await writeFile(join(linked, 'plugin', 'index.mjs'), `import './sub/helper.mjs'\n${plantedPlugin('linked-plugin')}`, { mode: 0o644 })
    await assert.rejects(resolvePlugin('./linked/plugin/index.mjs', { configDir: dir }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED') && e.message.includes(join(dir, 'elsewhere', 'helper.mjs')))
    assert.deepEqual(ran(), [])

    // a lone file: its folder is judged whole, subfolders (hidden ones too) and node_modules included
    for (const below of ['lib', '.gen', join('node_modules', 'dep')]) {
      const home = join(dir, `lone-${below.replace(/[^a-z]/g, '')}`)
      await mkdir(join(home, below), { recursive: true })
      await writeFile(join(home, below, 'helper.mjs'), mark(`lone-${below}`), { mode: 0o644 })
      await chown(join(home, below, 'helper.mjs'), eve.uid, eve.gid)
      await writeFile(join(home, 'lone.mjs'), `import './${below}/helper.mjs'\n${plantedPlugin('lone-plugin')}`, { mode: 0o644 })
      await assert.rejects(resolvePlugin(`./${join(home.slice(dir.length + 1), 'lone.mjs')}`, { configDir: dir }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED'), below)
    }
    assert.deepEqual(ran(), [])

    // a link to nothing yet: judged by the folder its target would be made in
    const waiting = join(dir, 'waiting')
    await mkdir(waiting)
    await writeFile(join(waiting, 'lone.mjs'), plantedPlugin('waiting-plugin'), { mode: 0o644 })
    await symlink(join(dir, 'root-only', 'later'), join(waiting, 'later'))
    assert.equal((await resolvePlugin('./waiting/lone.mjs', { configDir: dir })).plugin.name, 'planted', 'a target root alone could make')
    const evesFolder = join(dir, 'eves-folder')
    await mkdir(evesFolder)
    await chown(evesFolder, eve.uid, eve.gid)
    await symlink(join(evesFolder, 'later'), join(waiting, 'eves-later'))
    await assert.rejects(resolvePlugin('./waiting/lone.mjs', { configDir: dir }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED') && e.message.includes(evesFolder), 'a target another user could make')
    ran().length = 0
  })

  it("root's own modules still load (a path and a package, each root-owned and not writable by others)", async () => {
    const own = join(dir, 'own')
    await mkdir(own)
    await writeFile(join(own, 'mine.mjs'), plantedDriver('root-driver'), { mode: 0o644 })
    assert.equal((await resolveDriver('./own/mine.mjs', { configDir: dir, kind: 'interface' })).driver.name, 'planted')
    assert.deepEqual(ran(), ['root-driver'])
  })
})

describe('a name that is one of Node’s own modules', () => {
  it('is not found as a driver (names.resolver: dns without its plugin once met realpath("dns"))', async () => {
    await assert.rejects(resolveDriver('dns', { configDir: tmpdir(), kind: 'name-resolver' }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_DRIVER_NOT_FOUND') && /"dns" not found/.test((e as Error).message))
  })
})

describe('a near miss of a built-in name', () => {
  it('is named as the likely typo, with no advice to npm install the misspelling', async () => {
    await assert.rejects(resolveDriver('linux-netlnk', { configDir: tmpdir(), kind: 'interface' }), (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_DRIVER_NOT_FOUND'), String(e))
      assert.match(e.hint ?? '', /did you mean "linux-netlink", the built-in/)
      assert.doesNotMatch(e.hint ?? '', /npm install linux-netlnk/)
      return true
    })
  })
})

describe('a path written without ./ (drivers/mine.js)', () => {
  it('is told to start with ./, not to npm install it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ngrokd-relpath-'))
    try {
      mkdirSync(join(dir, 'drivers'))
      writeFileSync(join(dir, 'drivers', 'mine'), '')
      for (const spec of ['drivers/mine.js', 'drivers/mine']) {
        await assert.rejects(resolveDriver(spec, { configDir: dir, kind: 'interface' }), (e: unknown) => {
          assert.ok(isNgrokdError(e, 'NGROKD_ERR_DRIVER_NOT_FOUND'), String(e))
          assert.match(e.hint ?? '', new RegExp(`a path starts with \\./ or / \\(without, it names an npm package\\): write "\\./${spec.replace('.', '\\.')}"`))
          return true
        })
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('a fresh load (a reload\'s check)', () => {
  it('evaluates a changed file anew, but an unchanged one that loaded is the same module: reloads keep no copies', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ngrokd-fresh-'))
    try {
      const file = join(dir, 'counted.mjs')
      const source = (version: string) =>
        `import { definePlugin } from '@ngrokd/core/plugin'\nglobalThis.__freshEvaluations = (globalThis.__freshEvaluations ?? 0) + 1\nexport default definePlugin({ name: 'counted', version: '${version}', ngrokd: '^1.0.0', register() {} })\n`
      await writeFile(file, source('1.0.0'))
      const evaluations = () => (globalThis as { __freshEvaluations?: number }).__freshEvaluations
      assert.equal((await resolvePlugin('./counted.mjs', { configDir: dir })).plugin.version, '1.0.0')
      for (let i = 0; i < 3; i++) assert.equal((await resolvePlugin('./counted.mjs', { configDir: dir, fresh: true })).plugin.version, '1.0.0')
      assert.equal(evaluations(), 1, 'unchanged: one module')
      await writeFile(file, source('1.0.10')) // a new size: changed whatever the clock's resolution
      assert.equal((await resolvePlugin('./counted.mjs', { configDir: dir, fresh: true })).plugin.version, '1.0.10')
      assert.equal(evaluations(), 2)
      // the same size, its modification time set back (tar, cp -p): the change time still says it changed
      const { mtime, ctimeMs } = await stat(file)
      // file times come from a coarse clock: past its tick, so that the change time differs whatever the machine's speed
      while (Date.now() <= ctimeMs + 20) await new Promise((r) => setTimeout(r, 5))
      await writeFile(file, source('1.0.11'))
      await utimes(file, mtime, mtime)
      assert.equal((await resolvePlugin('./counted.mjs', { configDir: dir, fresh: true })).plugin.version, '1.0.11')
      assert.equal(evaluations(), 3)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

/** Runs `fn` in a fresh folder that everyone may write in, sticky as /tmp is; removed after. */
async function inStickyDir(prefix: string, fn: (sticky: string) => Promise<void>): Promise<void> {
  const sticky = await mkdtemp(join(tmpdir(), prefix))
  try {
    await chmod(sticky, 0o1777)
    await fn(sticky)
  } finally {
    await rm(sticky, { recursive: true, force: true })
  }
}

describe('a declared package that is not installed', () => {
  it('is refused where another user could put it on Node\'s way up (a sticky /tmp); once installed beside the module it loads', { skip: process.getuid?.() === 0 ? false : 'the trust rules apply as root' }, async () => {
    await inStickyDir('ngrokd-lazy-', async (sticky) => {
      const plugin = join(sticky, 'rootdir', 'plugin')
      await mkdir(plugin, { recursive: true, mode: 0o755 })
      await chmod(join(sticky, 'rootdir'), 0o755)
      await writeFile(join(plugin, 'package.json'), JSON.stringify({ name: 'ngrokd-plugin-lazy', type: 'module', exports: { '.': './index.js' }, optionalDependencies: { lazydep: '^1.0.0' } }))
      await writeFile(join(plugin, 'index.js'), `import { definePlugin } from '@ngrokd/core/plugin'\nexport default definePlugin({ name: 'lazy', version: '1.0.0', ngrokd: '^1.0.0', register() {} })\n`)
      await assert.rejects(resolvePlugin('./rootdir/plugin', { configDir: sticky }), (e: unknown) => {
        assert.ok(isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED'), String(e))
        assert.match(e.message, new RegExp(`lazydep .*not installed, and ${sticky} lets another user put it there`))
        assert.match(e.hint ?? '', /install lazydep beside the module/)
        return true
      })
      // installed beside it (root's), it is judged as any dependency and loads
      await mkdir(join(plugin, 'node_modules', 'lazydep'), { recursive: true })
      await writeFile(join(plugin, 'node_modules', 'lazydep', 'package.json'), JSON.stringify({ name: 'lazydep', version: '1.0.0', main: 'index.js' }))
      await writeFile(join(plugin, 'node_modules', 'lazydep', 'index.js'), 'module.exports = 1\n')
      assert.equal((await resolvePlugin('./rootdir/plugin', { configDir: sticky })).plugin.name, 'lazy')
    })
  })
})

describe('a plugin or driver file that no package holds', () => {
  it("imports ngrokd's own @ngrokd/core even where another user planted one in a folder above it (a sticky /tmp)", { skip: process.getuid?.() === 0 ? false : 'chown to another user needs root' }, async () => {
    await inStickyDir('ngrokd-sticky-', async (sticky) => {
      const own = join(sticky, 'rootplug')
      await mkdir(own, { mode: 0o755 })
      await writeFile(join(own, 'p.mjs'), `import { definePlugin } from '@ngrokd/core/plugin'\nexport default definePlugin({ name: 'own-core', version: '1.0.0', ngrokd: '^1.0.0', register() {} })\n`)
      const planted = join(sticky, 'node_modules', '@ngrokd', 'core')
      await mkdir(join(planted, 'dist'), { recursive: true })
      await writeFile(join(planted, 'package.json'), JSON.stringify({ name: '@ngrokd/core', version: '1.0.0', type: 'module', exports: { './plugin': './dist/plugin.js' } }))
      await writeFile(join(planted, 'dist', 'plugin.js'), `globalThis.__plantedCoreRan = true\nexport const definePlugin = (p) => p\n`)
      for (const path of [join(sticky, 'node_modules'), join(sticky, 'node_modules', '@ngrokd'), planted, join(planted, 'dist'), join(planted, 'package.json'), join(planted, 'dist', 'plugin.js')]) await chown(path, 4242, 4242)
      const { plugin } = await resolvePlugin('./p.mjs', { configDir: own })
      assert.equal(plugin.name, 'own-core')
      assert.equal((globalThis as { __plantedCoreRan?: boolean }).__plantedCoreRan, undefined, 'the planted copy never ran')
    })
  })

  it("a CommonJS one requires ngrokd's own @ngrokd/core too, never a copy another user planted above it", { skip: process.getuid?.() === 0 ? false : 'chown to another user needs root' }, async () => {
    await inStickyDir('ngrokd-sticky-cjs-', async (sticky) => {
      const own = join(sticky, 'rootplug')
      await mkdir(own, { mode: 0o755 })
      await writeFile(join(own, 'p.cjs'), `const { definePlugin } = require('@ngrokd/core/plugin')\nmodule.exports = definePlugin({ name: 'own-core-cjs', version: '1.0.0', ngrokd: '^1.0.0', register() {} })\n`)
      const planted = join(sticky, 'node_modules', '@ngrokd', 'core')
      await mkdir(join(planted, 'dist'), { recursive: true })
      await writeFile(join(planted, 'package.json'), JSON.stringify({ name: '@ngrokd/core', version: '1.0.0', exports: { './plugin': './dist/plugin.js' } }))
      await writeFile(join(planted, 'dist', 'plugin.js'), `globalThis.__plantedCjsCoreRan = true\nexports.definePlugin = (p) => p\n`)
      for (const path of [join(sticky, 'node_modules'), join(sticky, 'node_modules', '@ngrokd'), planted, join(planted, 'dist'), join(planted, 'package.json'), join(planted, 'dist', 'plugin.js')]) await chown(path, 4242, 4242)
      const { plugin } = await resolvePlugin('./p.cjs', { configDir: own })
      assert.equal(plugin.name, 'own-core-cjs')
      assert.equal((globalThis as { __plantedCjsCoreRan?: boolean }).__plantedCjsCoreRan, undefined, 'the planted copy never ran')
    })
  })

  it('a package folder named by path whose entry is in exports only (no main) loads from that entry', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ngrokd-folder-'))
    try {
      const pkg = join(dir, 'node_modules', 'ngrokd-plugin-folder')
      await mkdir(join(pkg, 'dist'), { recursive: true })
      await writeFile(join(pkg, 'package.json'), JSON.stringify({ name: 'ngrokd-plugin-folder', version: '1.0.0', type: 'module', exports: { '.': { types: './dist/index.d.ts', import: './dist/index.js' } } }))
      await writeFile(join(pkg, 'dist', 'index.js'), `import { definePlugin } from '@ngrokd/core/plugin'\nexport default definePlugin({ name: 'folder', version: '1.0.0', ngrokd: '^1.0.0', register() {} })\n`)
      const { plugin } = await resolvePlugin('./node_modules/ngrokd-plugin-folder', { configDir: dir })
      assert.equal(plugin.name, 'folder')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it("imports @ngrokd/core from ngrokd's own installation, when nothing beside it has one", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ngrokd-loose-'))
    try {
      await writeFile(
        join(dir, 'loose.mjs'),
        `import { definePlugin, Counter } from '@ngrokd/core/plugin'\nexport default definePlugin({ name: 'loose', version: '1.0.0', ngrokd: '^1.0.0', register() { return typeof Counter } })\n`,
      )
      const { plugin } = await resolvePlugin('./loose.mjs', { configDir: dir })
      assert.equal(plugin.name, 'loose')
      // a package it imports that is nowhere to be found is named, with where to install it
      await writeFile(join(dir, 'needs.mjs'), `import 'ngrokd-nobody-published-this'\nexport default {}\n`)
      await assert.rejects(resolvePlugin('./needs.mjs', { configDir: dir }), (e: unknown) => {
        assert.ok(isNgrokdError(e, 'NGROKD_ERR_PLUGIN_INVALID'))
        assert.equal(e.hint, `it imports ngrokd-nobody-published-this, which is not installed where it is: npm install ngrokd-nobody-published-this in ${dir} (or a folder above it)`)
        return true
      })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
