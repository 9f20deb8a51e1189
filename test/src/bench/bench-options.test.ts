import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { parseBenchArgs, UsageError, type BenchOptions } from './bench-options.js'

test('--peer takes an executable file, resolved to an absolute path; without it there is no peer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ngrokd-bench-options-'))
  try {
    const bin = join(dir, 'ngrokd')
    writeFileSync(bin, '#!/bin/sh\n')
    chmodSync(bin, 0o755)
    assert.equal((parseBenchArgs([]) as BenchOptions).peer, undefined)
    assert.equal((parseBenchArgs(['--peer', relative(process.cwd(), bin)]) as BenchOptions).peer, bin)

    const refused = (argv: string[], why: RegExp) => assert.throws(() => parseBenchArgs(argv), (e: unknown) => e instanceof UsageError && /^--peer: /.test(e.message) && why.test(e.message))
    refused(['--peer', join(dir, 'missing')], /missing does not exist \(build it with test\/scripts\/build-go-peer\.sh/)
    refused(['--peer', dir], /is not a file/)
    chmodSync(bin, 0o644)
    refused(['--peer', bin], /is not executable/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('--predial sets ingress.predial for ngrokd and leaves the results block, which shows the defaults, alone', () => {
  const defaults = parseBenchArgs([]) as BenchOptions
  assert.equal(defaults.predial, 0)
  assert.equal(defaults.markdown, true)
  const ahead = parseBenchArgs(['--predial', '4']) as BenchOptions
  assert.equal(ahead.predial, 4)
  assert.equal(ahead.markdown, false)
  for (const bad of ['-1', '65', '2.5', 'many']) {
    assert.throws(() => parseBenchArgs([`--predial=${bad}`]), (e: unknown) => e instanceof UsageError && /^--predial must be an integer 0\.\.64/.test(e.message), bad)
  }
})
