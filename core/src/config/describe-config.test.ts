import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { describeConfig } from './describe-config.js'
import { censorSecretFields, isSecretName, redactSecret, redactSecretOptions } from './redact-secret.js'
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

describe('the secret rule: one for options and log fields', () => {
  it('a name that says key, secret, token, password, credential or authorization holds a secret', () => {
    for (const name of ['api_key', 'apiKey', 'keyPem', 'client_secret', 'api_token', 'authToken', 'password', 'PASSWD', 'credentials', 'authorization']) assert.ok(isSecretName(name), name)
    for (const name of ['url', 'zone', 'ttl', 'webhook', 'authorized', 'port']) assert.ok(!isSecretName(name), name)
  })

  it('redactSecretOptions: strings and numbers under a secret name, its own or one above it, at any depth; a copy', () => {
    const options = { url: 'https://hooks.example', ttl: 5, a: { b: { c: { d: { password: 'PASSWORD_SECRET_VALUE_987', user: 'bob' } } } }, tokens: ['tok_AAAAAAAAAAAAAAAA', { extra: 'BBBBBBBBBBBBBBBB' }], pin_key: 12345678 }
    const shown = redactSecretOptions(options)
    assert.deepEqual(shown, { url: 'https://hooks.example', ttl: 5, a: { b: { c: { d: { password: '…_987', user: 'bob' } } } }, tokens: ['tok_…AAAA', { extra: '…BBBB' }], pin_key: '…78' })
    assert.equal(options.a.b.c.d.password, 'PASSWORD_SECRET_VALUE_987', 'the original is untouched')
    assert.equal(redactSecretOptions({ password: 'x' }.password, true), '…', 'a value that is itself under a secret name')
  })

  it('censorSecretFields: the whole value of a secret-named field at any depth; an Error is kept as it is', () => {
    const err = new Error('boom')
    const fields = { err, config: { plugins: [{ name: 'p', options: { api_token: 'TOKEN_SECRET_VALUE_123456', webhook: { password: 'PASSWORD_SECRET_VALUE_987' } } }] }, credentials: { certPem: 'x' } }
    const out = censorSecretFields(fields, '[redacted]')
    assert.deepEqual(out.config.plugins[0]!.options, { api_token: '[redacted]', webhook: { password: '[redacted]' } })
    assert.equal(out.credentials as unknown, '[redacted]')
    assert.equal(out.err, err)
    assert.equal(fields.config.plugins[0]!.options.api_token, 'TOKEN_SECRET_VALUE_123456', 'the original is untouched')
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

  it('redacts secret options of every plugin and nested driver options, at any depth', () => {
    const config = defaultConfig('/srv')
    config.net.driverOptions = { tunnel: { auth: { password: 'DRIVER_PASSWORD_VALUE_42' } }, mtu: 1420 }
    config.plugins = ['dns', { name: '/opt/tokplug.mjs', options: { api_token: 'TOKEN_SECRET_VALUE_123456', webhook: { password: 'PASSWORD_SECRET_VALUE_987', url: 'https://hooks.example' } } }]
    const shown = describeConfig(config)
    const text = JSON.stringify(shown)
    for (const secret of ['SECRET_VALUE', 'PASSWORD_VALUE']) assert.ok(!text.includes(secret), `${secret} in ${text}`)
    assert.deepEqual(shown.plugins, ['dns', { name: '/opt/tokplug.mjs', options: { api_token: 'TOKEN_…3456', webhook: { password: '…_987', url: 'https://hooks.example' } } }])
    assert.deepEqual(shown.net.driverOptions, { tunnel: { auth: { password: '…E_42' } }, mtu: 1420 })
  })

  it('leaves out where each key was written: no setting', () => {
    const config = { ...defaultConfig('/srv'), origins: { plugins: { key: 'plugins', file: '/etc/ngrokd/config.yml' } } }
    assert.ok(!('origins' in describeConfig(config)))
    assert.ok('origins' in config, 'the original is untouched')
  })

  it('leaves an unset key unset', () => {
    const shown = describeConfig(defaultConfig('/srv'))
    assert.equal(shown.api.key, undefined)
    assert.ok(!('key' in shown.api))
  })
})
