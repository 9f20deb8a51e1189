import assert from 'node:assert/strict'
import { test } from 'node:test'
import { terminalSafe } from './terminal-text.js'

test('terminalSafe writes escape sequences, newlines and bidi overrides out, and keeps the rest', () => {
  assert.equal(terminalSafe('http://esc\u001b]0;pwned\u0007\u001b[2J.prod'), 'http://esc\\u001b]0;pwned\\u0007\\u001b[2J.prod')
  assert.equal(terminalSafe('a.prod\nskipped:    fake row'), 'a.prod\\u000askipped:    fake row')
  assert.equal(terminalSafe('\r\u0000\u007f\u009b\u2028\u202e\u2066'), '\\u000d\\u0000\\u007f\\u009b\\u2028\\u202e\\u2066')
  assert.equal(terminalSafe('tcp://db.prod:5432 (ep_1)\té → ü'), 'tcp://db.prod:5432 (ep_1)\té → ü')
})
