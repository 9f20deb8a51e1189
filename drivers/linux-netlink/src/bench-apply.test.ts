import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readlinkSync } from 'node:fs'
import { isNgrokdError } from '@ngrokd/core/driver'
import { assertPrivateNetns } from './bench-apply.js'

// Only reads /proc; never touches an interface.
test('the benchmark refuses to run in the caller’s own network namespace', { skip: process.platform === 'linux' ? false : 'reads /proc (Linux)' }, () => {
  const here = readlinkSync('/proc/self/ns/net')
  assert.throws(() => assertPrivateNetns({ hostNetns: here }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_NAMESPACE') && /refusing to run/.test((e as Error).message))
  assert.doesNotThrow(() => assertPrivateNetns({ hostNetns: 'net:[1]' }))
})
