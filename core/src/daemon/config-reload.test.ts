import { test } from 'node:test'
import assert from 'node:assert/strict'
import { resolveConfig } from '../config/resolve-config.js'
import { changedKeys, planReload } from './config-reload.js'

test('changed keys are named as in the config file; live ones apply, the rest wait for a restart', () => {
  const before = resolveConfig({ log: { level: 'info' }, bound_endpoints: { poll_interval: '10s' }, api: { key: 'ak_secret_1234567' } }, { source: '/etc/ngrokd/ngrokd.yml' }).config
  const after = resolveConfig(
    { log: { level: 'debug' }, bound_endpoints: { poll_interval: '20s' }, net: { subnet: '10.108.0.0/16' }, forwarder: { drain_timeout: '7s' }, api: { key: 'ak_secret_7654321' } },
    { source: '/etc/other/ngrokd.yml' },
  ).config
  assert.deepEqual(changedKeys(before, before), [])
  assert.deepEqual(changedKeys(before, after), ['api.key', 'bound_endpoints.poll_interval', 'forwarder.drain_timeout', 'log.level', 'net.subnet'])
  assert.deepEqual(planReload(before, after), {
    applied: ['bound_endpoints.poll_interval', 'log.level'],
    restartNeeded: ['api.key', 'forwarder.drain_timeout', 'net.subnet'],
  })
})

test("a mapping whose keys the user chose (annotations, driver options) is named as one key, never as its own keys renamed", () => {
  const before = resolveConfig({}, { env: {} }).config
  const after = resolveConfig({ net: { driver_options: { ifaceMTU: 1400 } }, ingress: { pod_identity: { annotations: { myApp: 'x', 'Team.Name': 'y' } } } }, { env: {} }).config
  assert.deepEqual(changedKeys(before, after), ['ingress.pod_identity.annotations', 'net.driver_options'])
  const reordered = resolveConfig({ net: { driver_options: { ifaceMTU: 1400 } }, ingress: { pod_identity: { annotations: { 'Team.Name': 'y', myApp: 'x' } } } }, { env: {} }).config
  assert.deepEqual(changedKeys(after, reordered), [], 'the same mapping in another order is no change')
  const nested = (routes: Record<string, number>) => resolveConfig({ net: { driver_options: { routes } } }, { env: {} }).config
  assert.deepEqual(changedKeys(nested({ x: 1, y: 2 }), nested({ y: 2, x: 1 })), [], 'at every depth')
  assert.deepEqual(changedKeys(nested({ x: 1, y: 2 }), nested({ x: 1, y: 3 })), ['net.driver_options'])
})

test('where a key was written is no key: the same value from the environment instead of the file is no change', () => {
  const fromFile = resolveConfig({ plugins: ['dns'] }, { source: '/etc/ngrokd/config.yml', env: {} }).config
  const fromEnv = resolveConfig({}, { source: '/etc/ngrokd/config.yml', env: { NGROKD_PLUGINS: 'dns' } }).config
  assert.deepEqual([fromFile.origins?.plugins, fromEnv.origins?.plugins], [{ key: 'plugins', file: '/etc/ngrokd/config.yml' }, { key: 'plugins', env: 'NGROKD_PLUGINS' }])
  assert.deepEqual(changedKeys(fromFile, fromEnv), [])
})
