// The bundled packages (scripts/bundle-dist.mjs) keep their classes' names, which errors and logs show, without
// esbuild's keepNames: that redefines `name` on every function object as it is made, and so gave each closure a
// forwarded connection makes a property array of its own (~4 KiB of heap per open connection).
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'

const require = createRequire(import.meta.url)
const BUNDLE_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '../../../scripts/bundle-dist.mjs')
/** A safety net for one esbuild run on a few small files; not a figure. */
const BUNDLE_TIMEOUT_MS = 60_000

/** The packages the build bundles, with the entries a user imports. */
const BUNDLED = {
  '@ngrokd/core': ['@ngrokd/core', '@ngrokd/core/driver', '@ngrokd/core/testing'],
  '@ngrokd/driver-linux-netlink': ['@ngrokd/driver-linux-netlink'],
  '@ngrokd/plugin-simulator': ['@ngrokd/plugin-simulator'],
} as const

const isClass = (value: unknown): value is abstract new (...args: never[]) => unknown =>
  typeof value === 'function' && /^class\b/.test(Function.prototype.toString.call(value))

function jsFilesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.js'))
    .map((e) => join(e.parentPath, e.name))
}

describe('the bundled packages', () => {
  test('every class they export has its own name', async () => {
    const wrong: string[] = []
    let classes = 0
    for (const entry of Object.values(BUNDLED).flat()) {
      for (const [key, value] of Object.entries(await import(entry))) {
        if (!isClass(value)) continue
        classes++
        if (value.name !== key) wrong.push(`${entry}: ${key} is named ${JSON.stringify(value.name)}`)
      }
    }
    assert.ok(classes > 10, `they export classes (${classes})`)
    assert.deepEqual(wrong, [])
  })

  for (const pkg of Object.keys(BUNDLED)) {
    test(`${pkg}: its functions are not renamed as they are made (no keepNames helper)`, () => {
      const dist = join(dirname(require.resolve(`${pkg}/package.json`)), 'dist')
      const withHelper = jsFilesUnder(dist).filter((file) => /\b__name\(/.test(readFileSync(file, 'utf8')))
      assert.deepEqual(withHelper, [])
    })
  }
})

describe('bundle-dist on a package of its own', () => {
  const dirs: string[] = []
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })))

  /** A package whose dist/ holds these files (index.js is the entry), bundled by the script; its stderr. */
  async function bundle(files: Record<string, string>): Promise<{ dir: string; error?: string }> {
    const dir = mkdtempSync(join(tmpdir(), 'ngrokd-bundle-names-'))
    dirs.push(dir)
    mkdirSync(join(dir, 'dist'))
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'fixture', type: 'module', exports: { '.': './dist/index.js' } }))
    for (const [name, code] of Object.entries(files)) writeFileSync(join(dir, 'dist', name), code)
    try {
      await promisify(execFile)(process.execPath, [BUNDLE_SCRIPT], { cwd: dir, timeout: BUNDLE_TIMEOUT_MS })
      return { dir }
    } catch (e) {
      return { dir, error: (e as { stderr?: string }).stderr ?? String(e) }
    }
  }

  test('a class that refers to itself, a decorated one and one that extends another keep their names', async () => {
    const { dir, error } = await bundle({
      'index.js': `export { Lock, Base } from './lock.js'\nexport { Reconciler } from './reconciler.js'\n`,
      'lock.js': `export class Base {}\nexport class Lock extends Base { static open() { return new Lock() } }\n`,
      // what tsc writes for a class with decorators (experimentalDecorators)
      'reconciler.js': `const decorate = (c) => c\nlet Reconciler = class Reconciler { run() { return 1 } }\nReconciler = decorate(Reconciler)\nexport { Reconciler }\n`,
    })
    assert.equal(error, undefined)
    const bundled = readFileSync(join(dir, 'dist', 'index.js'), 'utf8')
    assert.match(bundled, /class _Lock|class Reconciler\d/, 'esbuild renamed a class here (else this test proves nothing)')
    const m = (await import(pathToFileURL(join(dir, 'dist', 'index.js')).href)) as Record<string, { name: string; open?: () => unknown }>
    assert.deepEqual([m.Lock!.name, m.Base!.name, m.Reconciler!.name], ['Lock', 'Base', 'Reconciler'])
    assert.ok(m.Lock!.open!() instanceof (m.Lock as unknown as new () => unknown), 'its own references still work')
  })

  test('two modules with a class of the same name fail the build, naming the class', async () => {
    const { error } = await bundle({
      'index.js': `export { Thing } from './a.js'\nexport { Thing as Other } from './b.js'\n`,
      'a.js': `export class Thing { a() {} }\n`,
      'b.js': `export class Thing { b() {} }\n`,
    })
    assert.ok(error, 'the build failed')
    assert.match(error, /renamed classes:[\s\S]*class Thing2/)
  })
})
