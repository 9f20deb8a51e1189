import assert from 'node:assert/strict'
import { test } from 'node:test'
import { terminalSafe, waitingLine } from './terminal-text.js'

test('terminalSafe writes escape sequences, newlines and bidi overrides out, and keeps the rest', () => {
  assert.equal(terminalSafe('http://esc\u001b]0;pwned\u0007\u001b[2J.prod'), 'http://esc\\u001b]0;pwned\\u0007\\u001b[2J.prod')
  assert.equal(terminalSafe('a.prod\nskipped:    fake row'), 'a.prod\\u000askipped:    fake row')
  assert.equal(terminalSafe('\r\u0000\u007f\u009b\u2028\u202e\u2066'), '\\u000d\\u0000\\u007f\\u009b\\u2028\\u202e\\u2066')
  assert.equal(terminalSafe('tcp://db.prod:5432 (ep_1)\té → ü'), 'tcp://db.prod:5432 (ep_1)\té → ü')
})

test('waitingLine: on a terminal one line of what is awaited, cleared once by done(); elsewhere nothing', () => {
  const written: string[] = []
  const tty = { isTTY: true, write: (s: string) => written.push(s) } as unknown as NodeJS.WriteStream
  const done = waitingLine('asking the ngrok API at https://api.ngrok.com (up to 10 s)\x1b[2J', tty)
  assert.deepEqual(written, ['… asking the ngrok API at https://api.ngrok.com (up to 10 s)\\u001b[2J'])
  done()
  done()
  assert.deepEqual(written.slice(1), ['\r\x1b[K'], 'cleared once')
  const piped: string[] = []
  waitingLine('anything', { isTTY: false, write: (s: string) => piped.push(s) } as unknown as NodeJS.WriteStream)()
  assert.deepEqual(piped, [])
})
