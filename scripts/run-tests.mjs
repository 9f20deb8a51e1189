#!/usr/bin/env node
// Runs every compiled *.test.js under the given folders with node:test.
// Node 20's `--test` takes no globs, so the files are listed here.
// Tests compile to dist-test/ (tsconfig.json) apart from the published dist/ (tsconfig.build.json);
// with no folder given, dist-test/ is used, or dist/ for a package that still compiles tests there.
import { appendFileSync, existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { spawn, spawnSync } from 'node:child_process'
import { createInterface } from 'node:readline'

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

// At a terminal, node:test's own reporter (spec) lists the failures at its end. Elsewhere (CI, a pipe) the TAP report
// goes through as it comes, and each failed test's lines (its `not ok` and the YAML block under it) are printed again
// at the end, so that the tail of a long CI log names what failed. NGROKD_TEST_FAILURES names a file the summary is
// appended to as well (test/scripts/run-suites.sh).
const MAX_LINES_PER_FAILURE = 40
const args = ['--test', '--test-concurrency=1', ...flags, ...files]
if (process.stdout.isTTY) {
  process.exit(spawnSync(process.execPath, args, { stdio: 'inherit' }).status ?? 1)
}
// TAP by name: Node 24's default reporter is spec at a pipe too
const child = spawn(process.execPath, ['--test-reporter=tap', ...args], { stdio: ['inherit', 'pipe', 'inherit'] })
const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code ?? 1)))
const failures = []
let current = null
const lines = createInterface({ input: child.stdout, crlfDelay: Infinity })
const ended = new Promise((resolve) => lines.once('close', resolve))
lines.on('line', (line) => {
  process.stdout.write(line + '\n')
  if (/^\s*not ok \d+/.test(line)) {
    current = [line]
    failures.push(current)
  } else if (current) {
    if (current.length < MAX_LINES_PER_FAILURE) current.push(line)
    if (/^\s*\.\.\.$/.test(line)) current = null
  }
})
const code = await exited
// A process a test left running may hold the pipe open: what node:test wrote is read, then the pipe is let go
// (with `stdio: 'inherit'` such a process never held this runner either).
let drained
await Promise.race([ended, new Promise((resolve) => (drained = setTimeout(resolve, 2_000)))])
clearTimeout(drained)
child.stdout.destroy()
if (failures.length > 0) {
  const summary =
    `\n== run-tests: ${failures.length} failed (tests, and the suites and files holding them) under ${roots.join(' ') || 'dist-test'} (${process.cwd()}):\n` +
    failures.map((f) => f.join('\n')).join('\n') +
    '\n'
  process.stdout.write(summary)
  if (process.env.NGROKD_TEST_FAILURES) appendFileSync(process.env.NGROKD_TEST_FAILURES, summary)
}
process.exit(code)
