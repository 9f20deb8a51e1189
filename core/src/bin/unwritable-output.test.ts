// Output the CLI cannot write (`ngrokd version > /dev/full`: ENOSPC) is said in one line on stderr, without a
// stack trace, and the exit code is 1; a reader that went away (EPIPE) is not an error.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { closeSync, existsSync, openSync } from 'node:fs'
import { NGROKD_BIN } from '../daemon/daemon-process.js'

test('a full disk under stdout: one line on stderr, no stack, exit 1', { skip: existsSync('/dev/full') ? false : 'needs /dev/full' }, () => {
  for (const args of [['version'], ['--help'], ['completion', 'bash']]) {
    const full = openSync('/dev/full', 'w')
    try {
      const r = spawnSync(process.execPath, [NGROKD_BIN, ...args], { stdio: ['ignore', full, 'pipe'], encoding: 'utf8' })
      assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`)
      assert.equal(r.stderr.trim(), 'ngrokd: cannot write to standard output: ENOSPC', args.join(' '))
    } finally {
      closeSync(full)
    }
  }
})
