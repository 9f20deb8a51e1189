import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { requires } from './requires.js'

describe('requires', () => {
  it('root() is false exactly when the effective uid is 0', () => {
    const root = process.getuid?.() === 0
    const reason = requires.root()
    if (root) assert.equal(reason, false)
    else assert.match(String(reason), /needs root/)
  })

  it('platform() names what is needed and what this is', () => {
    assert.equal(requires.platform(process.platform), false)
    assert.equal(requires.platform('aix', process.platform), false)
    const other = process.platform === 'darwin' ? 'linux' : 'darwin'
    assert.equal(requires.platform(other), `needs ${other} (this is ${process.platform})`)
    assert.equal(requires.linux(), process.platform === 'linux' ? false : `needs linux (this is ${process.platform})`)
  })

  it('command() searches PATH', () => {
    assert.equal(requires.command('node'), false)
    assert.equal(requires.command('ngrokd-no-such-command-here'), 'needs the `ngrokd-no-such-command-here` command on PATH')
  })

  it('kernelModule() gives a reason for a module that does not exist', { skip: requires.linux() }, () => {
    assert.match(String(requires.kernelModule('ngrokd_no_such_module')), /needs the ngrokd_no_such_module kernel module/)
  })

  it('all() gives the first reason, or false', () => {
    assert.equal(requires.all(false, false), false)
    assert.equal(requires.all(false, 'a', 'b'), 'a')
    assert.equal(requires.all(), false)
  })
})
