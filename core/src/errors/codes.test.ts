import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { errorCodes } from './codes.js'
import { NgrokdError, isNgrokdError, formatError } from './ngrokd-error.js'

const docs = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8')

test('every error code has its own section in docs/errors.md', () => {
  const documented = new Set([...docs.matchAll(/^## (NGROKD_ERR_[A-Z_]+)$/gm)].map((m) => m[1]))
  const missing = Object.keys(errorCodes).filter((c) => !documented.has(c))
  assert.deepEqual(missing, [], `add a "## CODE" section to docs/errors.md for: ${missing.join(', ')}`)
  const stale = [...documented].filter((c) => !(c! in errorCodes))
  assert.deepEqual(stale, [], `docs/errors.md documents codes that no longer exist: ${stale.join(', ')}`)
})

test('the brand check works across copies and compares codes', () => {
  const e = new NgrokdError('NGROKD_ERR_LISTEN', 'listen 10.107.0.2:80 failed', { hint: 'free the port' })
  assert.equal(isNgrokdError(e), true)
  assert.equal(isNgrokdError(e, 'NGROKD_ERR_LISTEN'), true)
  assert.equal(isNgrokdError(e, 'NGROKD_ERR_SYSCALL'), false)
  // a plain object carrying the same brand (another copy of core) is recognised
  const foreign = Object.assign(new Error('x'), { [Symbol.for('ngrokd.error')]: true, code: 'NGROKD_ERR_LISTEN' })
  assert.equal(isNgrokdError(foreign, 'NGROKD_ERR_LISTEN'), true)
  assert.equal(isNgrokdError(new Error('plain')), false)
  assert.match(formatError(e), /listen 10\.107\.0\.2:80 failed \(NGROKD_ERR_LISTEN\)\n {2}hint: free the port/)
})
