import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { describeConfig } from './describe-config.js'
import { redactSecret } from './redact-secret.js'
import { defaultConfig } from './resolve-config.js'

describe('redactSecret', () => {
  it('keeps a type prefix and at most the last 4 characters', () => {
    assert.equal(redactSecret('ak_2VbQx9mTgH4kLpZr7Wn0xyz1'), 'ak_…xyz1')
    assert.equal(redactSecret('2VbQx9mTgH4kLpZr7Wn0abcd'), '…abcd')
  })
  it('shows no more than a quarter of a short secret', () => {
    assert.equal(redactSecret('abcdefgh'), '…gh')
    assert.equal(redactSecret('abc'), '…')
    assert.equal(redactSecret(''), '…')
  })
})

describe('describeConfig', () => {
  it('redacts the API key and secret-looking driver options in a copy', () => {
    const config = defaultConfig('/srv')
    config.api.key = 'ak_2VbQx9mTgH4kLpZr7Wn0xyz1'
    config.net.driverOptions = { authToken: 'tok_abcdefghijklmnop', mtu: 1420, bridge: 'br0' }
    const shown = describeConfig(config)
    assert.equal(shown.api.key, 'ak_…xyz1')
    assert.deepEqual(shown.net.driverOptions, { authToken: 'tok_…mnop', mtu: 1420, bridge: 'br0' })
    assert.ok(!JSON.stringify(shown).includes('2VbQx9mTgH4kLpZr7Wn0'))
    // The original is untouched.
    assert.equal(config.api.key, 'ak_2VbQx9mTgH4kLpZr7Wn0xyz1')
    assert.equal(config.net.driverOptions.authToken, 'tok_abcdefghijklmnop')
    assert.equal(shown.net.subnet, config.net.subnet)
  })

  it('leaves an unset key unset', () => {
    const shown = describeConfig(defaultConfig('/srv'))
    assert.equal(shown.api.key, undefined)
    assert.ok(!('key' in shown.api))
  })
})
