// What each published package ships: `npm pack --dry-run --json` of every public workspace package holds
// no test, test helper, fixture, bench, `src/` folder, build state or source map whose sources are not in
// the tarball; and it holds a README that links to the main documentation, the repository's LICENSE, a
// `repository` naming the repository root's and the package's folder in it, and the root's `engines.node`.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join, posix } from 'node:path'
import { describe, it } from 'node:test'
import { runNpm } from '../third-party/run-npm.js'
import { REPO_ROOT, workspaces } from '../helpers/workspaces.js'

/** Why a file has no place in a published tarball, or undefined when it may ship. */
const RULES: ReadonlyArray<[RegExp, string]> = [
  [/(^|\/)src\//, 'a src/ folder (sources do not ship)'],
  [/\.test\.[cm]?[jt]s(\.map)?$|\.test\.d\.[cm]?ts(\.map)?$/, 'a test file'],
  // testing/ is a package's published kit for driver and plugin authors: it may ship
  [/\.test-helper\.|^(?!(.*\/)?testing\/)(.*\/)?test-[^/]*\.[cm]?[jt]s$|(^|\/)test\//, 'a test helper'],
  [/(^|\/)(test-)?fixtures\//, 'a fixture'],
  [/(^|\/)bench[^/]*$|(^|\/)bench\/|(^|\/)[^/]*-bench\.|(^|\/)measure-[^/]*$/, 'a bench'],
  [/\.tsbuildinfo$/, 'build state of the compiler'],
]

interface Manifest {
  name: string
  private?: boolean
  repository?: { type?: string; url?: string; directory?: string }
  exports?: Record<string, unknown>
  engines?: { node?: string }
}

const rootManifest = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as Manifest
const LICENSE = readFileSync(join(REPO_ROOT, 'LICENSE'), 'utf8')

/** `git+https://github.com/o/r.git` → `https://github.com/o/r`: where the main documentation is read. */
function webUrl(gitUrl: string): string {
  return gitUrl.replace(/^git\+/, '').replace(/\.git$/, '')
}

/** What a published package lacks: README, LICENSE, `repository`, the root's `engines.node` (one range for all: npm installs them together). */
function missing(dir: string, ws: string, manifest: Manifest, files: string[]): string[] {
  const found: string[] = []
  const repo = rootManifest.repository?.url
  if (!repo) return ['the repository root package.json has no repository.url']
  if (manifest.repository?.url !== repo || manifest.repository.directory !== ws) {
    found.push(`package.json repository is ${JSON.stringify(manifest.repository)}, not { url: ${repo}, directory: ${ws} }`)
  }
  if (manifest.engines?.node !== rootManifest.engines?.node) found.push(`package.json engines.node is ${JSON.stringify(manifest.engines?.node)}, not the root's ${JSON.stringify(rootManifest.engines?.node)}`)
  if (!files.includes('README.md')) found.push('no README.md')
  else if (!readFileSync(join(dir, 'README.md'), 'utf8').includes(webUrl(repo))) found.push(`README.md does not link to the main documentation (${webUrl(repo)})`)
  if (!files.includes('LICENSE')) found.push('no LICENSE')
  else if (readFileSync(join(dir, 'LICENSE'), 'utf8') !== LICENSE) found.push("LICENSE is not the repository's LICENSE")
  return found
}

type Packed = { name: string; files: { path: string }[] }

/** Every reason a file list breaks the rules: `path: why`. */
function violations(dir: string, files: string[], manifest: Manifest): string[] {
  const shipped = new Set(files)
  const found: string[] = []
  // a testing/ folder ships only as a kit: a subpath export that names it (`./testing`, `./darwin/testing`)
  const kits = Object.keys(manifest.exports ?? {}).filter((key) => /(^|\/)testing$/.test(key))
  for (const f of files) {
    const rule = RULES.find(([re]) => re.test(f))
    if (rule) found.push(`${f}: ${rule[1]}`)
    else if (/(^|\/)testing\//.test(f) && kits.length === 0) found.push(`${f}: a testing/ folder no export names (a test helper is *.test-helper.ts)`)
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
    const manifest = JSON.parse(readFileSync(join(REPO_ROOT, ws, 'package.json'), 'utf8')) as Manifest
    if (manifest.private) continue
    it(`${manifest.name} (${ws})`, { timeout: 300_000 }, async () => {
      const dir = join(REPO_ROOT, ws)
      const [packed] = JSON.parse(await runNpm(['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: dir })) as Packed[]
      assert.ok(packed && packed.files.length > 0, `npm pack listed no file for ${manifest.name}`)
      const files = packed.files.map((f) => f.path)
      const found = violations(dir, files, manifest)
      assert.deepEqual(found, [], `${manifest.name} ships what it must not:\n${found.join('\n')}`)
      const lacks = missing(dir, ws, manifest, files)
      assert.deepEqual(lacks, [], `${manifest.name} lacks what every published package has:\n${lacks.join('\n')}`)
    })
  }
})
