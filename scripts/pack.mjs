#!/usr/bin/env node
// Packs every published workspace package (built first: `npm run build`) into OUT_DIR as it is to be
// published, and prints the tarballs' paths, one a line:
//
//   node scripts/pack.mjs OUT_DIR        then, to publish: npm publish OUT_DIR/<tarball>
//
// The tarballs are `npm pack` of each package with one thing the repository cannot hold: each platform
// driver's `os` field (core's builtinDriverOs), so that npm installs only the driver for its system.
// In the repository that field would break the workspace: npm refuses to install a workspace package
// whose `os` excludes the machine (EBADPLATFORM), and every driver is built and tested on Linux.
import { execFileSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const [outArg] = process.argv.slice(2)
if (!outArg) {
  console.error('usage: node scripts/pack.mjs OUT_DIR')
  process.exit(2)
}
const out = resolve(outArg)
// core's dist is bundled: its entry, not a module's own file
const coreEntry = join(root, 'core/dist/index.js')
if (!existsSync(coreEntry)) {
  console.error('pack: core is not built: run npm run build first')
  process.exit(1)
}
const { builtinDrivers, builtinDriverOs } = await import(pathToFileURL(coreEntry).href)
/** package name → the `os` it is published with */
const osOf = new Map(Object.entries(builtinDriverOs).map(([name, os]) => [builtinDrivers[name], os]))

/** The workspace folders of the root package.json (`dir` or `dir/*`). */
function workspaceDirs() {
  const { workspaces } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
  return workspaces.flatMap((w) =>
    w.endsWith('/*') ? readdirSync(join(root, w.slice(0, -2))).map((d) => join(root, w.slice(0, -2), d)) : [join(root, w)],
  )
}

/** `npm pack --json` in `cwd`, with `args`; returns its one result. */
function npmPack(cwd, args) {
  const [result] = JSON.parse(execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--loglevel=error', ...args], { cwd, encoding: 'utf8' }))
  return result
}

mkdirSync(out, { recursive: true })
const staging = mkdtempSync(join(tmpdir(), 'ngrokd-pack-'))
try {
  for (const dir of workspaceDirs()) {
    if (!existsSync(join(dir, 'package.json'))) continue
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
    if (manifest.private) continue
    if (manifest.files?.includes('dist') && !existsSync(join(dir, 'dist'))) {
      console.error(`pack: ${manifest.name} is not built (no ${join(dir, 'dist')}): run npm run build first`)
      process.exit(1)
    }
    // the files npm would publish from the workspace, copied to a folder of their own
    const stage = join(staging, manifest.name.replace('/', '+'))
    for (const { path } of npmPack(dir, ['--dry-run']).files) {
      mkdirSync(dirname(join(stage, path)), { recursive: true })
      copyFileSync(join(dir, path), join(stage, path))
    }
    const os = osOf.get(manifest.name)
    if (os) writeFileSync(join(stage, 'package.json'), `${JSON.stringify({ ...manifest, os }, null, 2)}\n`)
    console.log(join(out, npmPack(stage, ['--pack-destination', out]).filename))
  }
} finally {
  rmSync(staging, { recursive: true, force: true })
}
