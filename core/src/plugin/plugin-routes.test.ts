import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { isPluginRouteOf, pluginRouteKey } from './plugin-routes.js'

test('a plugin route is GET or POST at /v1/plugins/<name>/<path>: one rule for the daemon (pluginRouteKey) and the kit (isPluginRouteOf)', () => {
  assert.equal(pluginRouteKey('probe', 'GET', '/served'), 'GET /v1/plugins/probe/served')
  assert.equal(pluginRouteKey('dns', 'POST', '/zone/v1.records'), 'POST /v1/plugins/dns/zone/v1.records')
  for (const [method, path] of [['GET', 'hecks'], ['GET', 'be/served'], ['DELETE', '/x'], ['get', '/x'], ['GET', '/'], ['GET', '//x'], ['GET', '/x/'], ['GET', '/../status'], ['GET', '/a b'], ['GET', '/x?y'], ['GET', undefined]]) {
    assert.throws(() => pluginRouteKey('pro', method, path), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PLUGIN_INVALID') && e.message.startsWith(`plugin "pro": addRoute(`), `${method} ${path}`)
  }
  assert.equal(isPluginRouteOf('probe', 'GET /v1/plugins/probe/served'), true)
  assert.equal(isPluginRouteOf('pro', 'GET /v1/plugins/probe/served'), false, 'another plugin\'s prefix')
  assert.equal(isPluginRouteOf('c', 'GET /v1/plugins/checks'), false, 'the daemon\'s own route')
  assert.equal(isPluginRouteOf('probe', 'DELETE /v1/plugins/probe/served'), false)
  assert.equal(isPluginRouteOf('probe', 'GET /v1/plugins/probe/'), false)
})
