// What each published package ships: `npm pack --dry-run --json` of every public workspace package holds
// no test, test helper, fixture, bench, `src/` folder or source map whose sources are not in the tarball.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { dirname, join, posix } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, it } from 'node:test'
import { runNpm } from '../third-party/run-npm.js'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

/** Why a file has no place in a published tarball, or undefined when it may ship. */
const RULES: ReadonlyArray<[RegExp, string]> = [
  [/(^|\/)src\//, 'a src/ folder (sources do not ship)'],
  [/\.test\.[cm]?[jt]s(\.map)?$|\.test\.d\.[cm]?ts(\.map)?$/, 'a test file'],
  // testing/ is a package's published kit for driver and plugin authors: it may ship
  [/\.test-helper\.|^(?!(.*\/)?testing\/)(.*\/)?test-[^/]*\.[cm]?[jt]s$|(^|\/)test\//, 'a test helper'],
  [/(^|\/)(test-)?fixtures\//, 'a fixture'],
  [/(^|\/)bench[^/]*$|(^|\/)bench\/|(^|\/)[^/]*-bench\.|(^|\/)measure-[^/]*$/, 'a bench'],
]

/**
 * Files still shipped while their move out of the product is pending, each named with where it goes. Reported
 * as a diagnostic (a key ending in / stands for the files under it); a listed file that no longer ships fails the test, so the list only shrinks.
 */
const PENDING: Readonly<Record<string, string>> = {
  'core/dist/forward/test-ingress.js': 'a *.test-helper.ts beside the forwarder tests once measure-pool and bench-ingress-host live in the bench package (or the simulator ingress)',
  'core/dist/forward/test-ingress.d.ts': 'as test-ingress.js',
  'core/dist/forward/test-pki.js': 'as test-ingress.js',
  'core/dist/forward/test-pki.d.ts': 'as test-ingress.js',
  'core/dist/forward/bench-dial.js': 'test/src/bench (exported from @ngrokd/core today)',
  'core/dist/forward/bench-dial.d.ts': 'as bench-dial.js',
  'core/dist/forward/bench-ingress-host.js': 'test/src/bench',
  'core/dist/forward/bench-ingress-host.d.ts': 'test/src/bench',
  'core/dist/forward/pool/measure-pool.js': 'test/src/bench',
  'core/dist/forward/pool/measure-pool.d.ts': 'test/src/bench',
  'drivers/linux-netlink/dist/bench-apply.js': 'test/src/bench (exported as @ngrokd/driver-linux-netlink/bench-apply today)',
  'drivers/linux-netlink/dist/bench-apply.d.ts': 'as bench-apply.js',
}

/** The workspace folders of the root package.json (`dir` or `dir/*`). */
function workspaces(): string[] {
  const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { workspaces: string[] }
  const dirs: string[] = []
  for (const w of root.workspaces) {
    if (!w.endsWith('/*')) dirs.push(w)
    else {
      const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, unknown> }
      const parent = w.slice(0, -2)
      for (const p of Object.keys(lock.packages)) if (dirname(p) === parent && !p.startsWith('node_modules/')) dirs.push(p)
    }
  }
  return [...new Set(dirs)]
}

type Packed = { name: string; files: { path: string }[] }

/** Every reason a file list breaks the rules: `path: why`. */
function violations(dir: string, files: string[]): string[] {
  const shipped = new Set(files)
  const found: string[] = []
  for (const f of files) {
    const rule = RULES.find(([re]) => re.test(f))
    if (rule) found.push(`${f}: ${rule[1]}`)
    else if (f.endsWith('.map')) {
      const map = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { sources?: string[]; sourceRoot?: string }
      for (const s of map.sources ?? []) {
        const target = posix.normalize(posix.join(posix.dirname(f), map.sourceRoot ?? '', s))
        if (!shipped.has(target)) found.push(`${f}: a source map to ${target}, which is not in the tarball`)
      }
    }
  }
  return found
}

describe('published tarballs hold only the product', () => {
  for (const ws of workspaces()) {
    const manifest = JSON.parse(readFileSync(join(ROOT, ws, 'package.json'), 'utf8')) as { name: string; private?: boolean }
    if (manifest.private) continue
    it(`${manifest.name} (${ws})`, { timeout: 300_000 }, async (t) => {
      const dir = join(ROOT, ws)
      const [packed] = JSON.parse(await runNpm(['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: dir })) as Packed[]
      assert.ok(packed && packed.files.length > 0, `npm pack listed no file for ${manifest.name}`)
      const found = violations(dir, packed.files.map((f) => f.path))
      const file = (v: string) => `${ws}/${v.slice(0, v.indexOf(': '))}`
      const key = (v: string) => Object.keys(PENDING).find((p) => p === file(v) || (p.endsWith('/') && file(v).startsWith(p))) ?? file(v)
      const pending = found.filter((v) => key(v) in PENDING)
      const gone = Object.keys(PENDING).filter((p) => p.startsWith(`${ws}/`) && !found.some((v) => key(v) === p))
      assert.deepEqual(gone, [], 'no longer shipped: take these out of PENDING')
      for (const v of pending) t.diagnostic(`pending move: ${v} -> ${PENDING[key(v)]}`)
      const wrong = found.filter((v) => !pending.includes(v))
      assert.deepEqual(wrong, [], `${manifest.name} ships what it must not:\n${wrong.join('\n')}`)
    })
  }
})
