import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { defaultRunDir } from './run-dir.js'

describe('defaultRunDir', () => {
  it('as root, a folder only root may write on each OS: the interface, hosts-block and subnet locks go there', () => {
    assert.equal(defaultRunDir({ platform: 'linux', elevated: true }), '/run/ngrokd')
    // not /var/run: root:daemon 0775 on macOS
    assert.equal(defaultRunDir({ platform: 'darwin', elevated: true }), '/var/db/ngrokd/run')
    assert.equal(defaultRunDir({ platform: 'win32', elevated: true, env: { ProgramData: 'D:\\ProgramData' } }), 'D:\\ProgramData\\ngrokd\\run')
    assert.equal(defaultRunDir({ platform: 'win32', elevated: true, env: {} }), 'C:\\ProgramData\\ngrokd\\run')
  })

  it('none for a user (only the state dir is locked), nor on another OS', () => {
    for (const platform of ['linux', 'darwin', 'win32'] as const) assert.equal(defaultRunDir({ platform, elevated: false }), null)
    assert.equal(defaultRunDir({ platform: 'freebsd', elevated: true }), null)
  })
})
