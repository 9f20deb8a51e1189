import assert from 'node:assert/strict'
import { request } from 'node:http'
import { after, before, describe, it, test } from 'node:test'
import { TestFramework, testPlugin } from '@ngrokd/core/testing'
import { Registry, Counter } from 'prom-client'
import { silentLogger, isNgrokdError } from '@ngrokd/core/plugin'
import plugin, { MetricsServer, parseListen } from './index.js'

const get = (port: number, path: string) =>
  new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
    request({ host: '127.0.0.1', port, path }, (res) => {
      let body = ''
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }))
    })
      .on('error', reject)
      .end()
  })

test('serves GET /metrics from the registry in the Prometheus text format, and nothing else', async () => {
  const registry = new Registry()
  new Counter({ name: 'ngrokd_build_info', help: 'ngrokd version.', labelNames: ['version'], registers: [registry] }).inc({ version: '1.0.0' })
  const server = new MetricsServer('127.0.0.1:0', registry, silentLogger)
  await server.start()
  try {
    const ok = await get(server.port!, '/metrics')
    assert.equal(ok.status, 200)
    assert.match(ok.type, /^text\/plain; version=0\.0\.4/)
    assert.match(ok.body, /ngrokd_build_info\{version="1\.0\.0"\} 1/)
    assert.equal((await get(server.port!, '/')).status, 404)
  } finally {
    await server.close()
  }
})

test('listen must be host:port; the options schema requires it', () => {
  assert.deepEqual(parseListen('[::1]:9464'), { host: '::1', port: 9464 })
  for (const bad of ['9464', 'localhost', 'a:b', '[nope]:1', '127.0.0.1:70000']) assert.throws(() => parseListen(bad), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PLUGIN_INVALID'), bad)
  assert.deepEqual(plugin.optionsSchema?.required, ['listen'])
  assert.equal(plugin.name, 'prometheus')
})

// the conformance kit every plugin runs
TestFramework.use({ describe, it, beforeAll: before, afterAll: after })
testPlugin({ plugin, options: { listen: '127.0.0.1:0' } })
