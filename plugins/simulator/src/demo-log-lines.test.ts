import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { it } from 'node:test'
import { lastLogLines } from './demo.js'

it('the demo shows a daemon log line once: an error its message already holds is not repeated, only its code added', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ngrokd-demo-log-'))
  try {
    const file = join(dir, 'ngrokd.log')
    const cause = "Cannot find module '@ngrokd/driver-linux-netlink'\nRequire stack:\n- /x/chunk.js"
    const lines = [
      { level: 60, msg: `ngrokd could not start: ${cause}`, err: { message: cause, code: 'NGROKD_ERR_DRIVER_NOT_FOUND' } },
      { level: 40, msg: 'poll failed', err: { message: 'the API is down', code: 'NGROKD_ERR_API' } },
      { level: 30, msg: 'serving' },
    ]
    writeFileSync(file, lines.map((l) => JSON.stringify(l)).join('\n') + '\nnot json\n')
    assert.deepEqual(await lastLogLines(file, 4), [
      `error: ngrokd could not start: ${cause} (NGROKD_ERR_DRIVER_NOT_FOUND)`,
      'warning: poll failed (the API is down, NGROKD_ERR_API)',
      'serving',
      'not json',
    ])
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
