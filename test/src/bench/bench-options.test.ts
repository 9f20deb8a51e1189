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
