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
//
// Rule: a class keeps its name (errors and logs name classes). esbuild's `keepNames` would keep every
// function's too, but it does so by redefining `name` on each function object as it is made: every closure a
// forwarded connection makes got a property array of its own (~4 KiB of heap per open connection, measured
// with a heap snapshot). Without it, esbuild renames only what collides at a chunk's top level, and names a
// class that refers to itself `_Name`; the class names are put back below, and a class left with a name no
// source gave it fails the build. A renamed top-level function shows its new name (`isIpv42`) in stack traces.
import { build } from 'esbuild'
import { chmodSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
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

/** Every name a `class` keyword gives in these sources. */
function classNamesIn(sources) {
  return new Set(sources.flatMap((code) => [...code.matchAll(/\bclass\s+([\w$]+)/g)].map((m) => m[1])))
}

/**
 * Gives back the name a class had in its source where esbuild's output changed it, and lists each class whose
 * name is still not one a source gave it.
 * - `var X = class _X [extends Y] {` or `var X = class X2 {` (a class that refers to itself; a decorated
 *   class): the class is named X again by a static block, the first thing that runs in its body (its own
 *   references to `_X` are untouched).
 * - `var X = class {` and `var X = class extends Y {` take the name X from the binding; `class X {` is X.
 */
function restoreClassNames(code, sourceClasses) {
  const problems = []
  const fixed = code.replace(/\b(?:var|let|const)\s+([\w$]+)\s*=\s*class\b(\s+(?!extends\b)[\w$]+)?([^{]*)\{/g, (whole, binding, inner, rest) => {
    if (!sourceClasses.has(binding)) problems.push(`class ${binding}${inner ? ` (${inner.trim()})` : ''}`)
    if (!inner || inner.trim() === binding) return whole
    if (rest.trim() !== '' && !/^\s*extends\s+[\w$.]+\s*$/.test(rest)) {
      problems.push(`class ${inner.trim()}${rest}: its name cannot be put back`)
      return whole
    }
    return `${whole}\n  static { Object.defineProperty(this, "name", { value: ${JSON.stringify(binding)}, configurable: true }); }`
  })
  for (const [, name] of fixed.matchAll(/(?:^|[;{}\n])\s*(?:export\s+)?class\s+([\w$]+)/g)) {
    if (!sourceClasses.has(name)) problems.push(`class ${name}`)
  }
  return { code: fixed, problems }
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
  const result = await build({
    entryPoints,
    outdir: out,
    outbase: DIST,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    plugins: [keepPackagesOutside],
    metafile: true,
    chunkNames: 'chunks/[name]-[hash]',
    logLevel: 'warning',
  })
  const sourceClasses = classNamesIn(Object.keys(result.metafile.inputs).map((input) => readFileSync(input, 'utf8')))
  const renamed = []
  for (const file of filesUnder(out).filter((f) => f.endsWith('.js'))) {
    const { code, problems } = restoreClassNames(readFileSync(file, 'utf8'), sourceClasses)
    writeFileSync(file, code)
    renamed.push(...problems.map((p) => `${file.slice(out.length + 1)}: ${p}`))
  }
  if (renamed.length > 0) {
    throw new Error(`${pkg.name}: bundling renamed classes:\n  ${renamed.join('\n  ')}\ngive each class a name no other module of the package uses at its top level`)
  }
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
