import { test } from 'node:test'
import assert from 'node:assert/strict'
import { pluginLine } from './commands.js'

test('status lists each plugin; a failed or degraded one with its error, escaped', () => {
  assert.equal(pluginLine({ name: 'dns', version: '1.0.0', state: 'running' }), 'plugin:     dns 1.0.0 running')
  assert.equal(
    pluginLine({ name: 'bad', version: '0.1.0', state: 'failed', error: { code: 'NGROKD_ERR_PLUGIN_FAILED', message: 'register threw: boom\u001b]0;x\u0007', at: '2026-12-04T00:00:00Z' } }),
    'plugin:     bad 0.1.0 FAILED: register threw: boom\\u001b]0;x\\u0007 (NGROKD_ERR_PLUGIN_FAILED); ngrokd doctor checks it',
  )
  assert.match(pluginLine({ name: 'journal', version: '1.0.0', state: 'degraded', error: { code: 'NGROKD_ERR_PLUGIN_FAILED', message: 'onServicesChanged threw', at: '2026-12-04T00:00:00Z' } }), /^plugin: +journal 1\.0\.0 DEGRADED: onServicesChanged threw/)
})
