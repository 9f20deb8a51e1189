#!/usr/bin/env node
// Bundles a package's built dist/ in place, so that a start reads a few files instead of one per module:
// Node 20's ES module loader pays for every file it resolves, reads and links.
//
// Run in the package's folder after `tsc` (and anything else that writes JavaScript into dist/). Entries are
// the files the package.json names: its `exports`, its `bin` and its `imports`. Each stays at its path; code
// that two entries share, or that one loads lazily, goes into dist/chunks/. Other packages stay imports
// (`--inline a,b` names the exceptions: small CommonJS packages the start loads, bundled with what they
// import), so a driver or plugin that imports @ngrokd/core/driver gets the very modules the CLI runs. Type
// declarations stay as tsc wrote them.
//
// Rule: bundling moves code, so a module finds a file of its package (a worker script, the CLI, a
// certificate) by a name in package.json, `import.meta.resolve('#name')`, never by a path from its own URL.
// A path from a module's URL left in the output must still lead to a file, or the build fails.
import { build } from 'esbuild'
import { chmodSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'

const DIST = 'dist'

/** Every `./dist/….js` a package.json field names, however deeply nested (conditions). */
function distFiles(field) {
  if (typeof field === 'string') return field.startsWith(`./${DIST}/`) && field.endsWith('.js') ? [field] : []
  if (field && typeof field === 'object') return Object.values(field).flatMap(distFiles)
  return []
}

function filesUnder(dir) {
  return readdirSync(dir, { withFileTypes: true, recursive: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name))
}

const { values: args } = parseArgs({ options: { inline: { type: 'string', default: '' } } })
const inline = new Set(args.inline.split(',').filter(Boolean))

/** A package import stays an import, unless `--inline` names its package or it comes from an inlined one. */
const keepPackagesOutside = {
  name: 'keep-packages-outside',
  setup(build) {
    build.onResolve({ filter: /^[^./]/ }, ({ path, importer }) => {
      const name = path.startsWith('@') ? path.split('/').slice(0, 2).join('/') : path.split('/')[0]
      if (inline.has(name) || importer.includes('/node_modules/')) return undefined
      return { path, external: true }
    })
  },
}

const pkg = JSON.parse(readFileSync('package.json', 'utf8'))
const bins = distFiles(pkg.bin)
const entryPoints = [...new Set([...distFiles(pkg.exports), ...bins, ...distFiles(pkg.imports)])]
if (entryPoints.length === 0) throw new Error(`${pkg.name}: package.json names no ./${DIST}/*.js file to bundle`)

const out = mkdtempSync(join(tmpdir(), 'bundle-dist-'))
try {
  await build({
    entryPoints,
    outdir: out,
    outbase: DIST,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    plugins: [keepPackagesOutside],
    // class and function names stay what they were: errors and logs name them
    keepNames: true,
    chunkNames: 'chunks/[name]-[hash]',
    logLevel: 'warning',
  })
  for (const file of filesUnder(DIST)) if (file.endsWith('.js')) rmSync(file)
  cpSync(out, DIST, { recursive: true })
} finally {
  rmSync(out, { recursive: true, force: true })
}
for (const bin of bins) chmodSync(bin, 0o755)

const missing = []
for (const file of filesUnder(DIST).filter((f) => f.endsWith('.js'))) {
  for (const [, path] of readFileSync(file, 'utf8').matchAll(/new URL\(\s*["'`](\.{1,2}\/[^"'`]+)["'`]\s*,\s*import\.meta\.url\s*\)/g)) {
    if (!existsSync(resolve(dirname(file), path))) missing.push(`${file}: ${path}`)
  }
}
if (missing.length > 0) {
  throw new Error(`${pkg.name}: bundled code looks for files that are not there:\n  ${missing.join('\n  ')}\n` +
    'name each such file in package.json "imports" and find it with import.meta.resolve(\'#name\')')
}
console.log(`${pkg.name}: ${entryPoints.length} entries bundled into ${filesUnder(DIST).filter((f) => f.endsWith('.js')).length} files (${DIST}/)`)
