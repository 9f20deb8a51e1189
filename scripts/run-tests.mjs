#!/usr/bin/env node
// Runs every compiled *.test.js under the given folders with node:test.
// Node 20's `--test` takes no globs, so the files are listed here.
// Tests compile to dist-test/ (tsconfig.json) apart from the published dist/ (tsconfig.build.json);
// with no folder given, dist-test/ is used, or dist/ for a package that still compiles tests there.
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'

const roots = process.argv.slice(2).filter((a) => !a.startsWith('--'))
const flags = process.argv.slice(2).filter((a) => a.startsWith('--'))
const files = []
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) walk(p)
    else if (name.endsWith('.test.js')) files.push(p)
  }
}
for (const r of roots.length ? roots : [existsSync('dist-test') ? 'dist-test' : 'dist']) walk(r)
files.sort()
if (files.length === 0) {
  console.error(`run-tests: no *.test.js under ${roots.join(', ')} — was the package built?`)
  process.exit(1)
}
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...flags, ...files], { stdio: 'inherit' })
process.exit(r.status ?? 1)
