import assert from 'node:assert/strict'
import { request } from 'node:http'
import { connect, type Socket } from 'node:net'
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

test('connections that say nothing are closed after the idle limit, and past maxConnections new ones are refused: a scrape still gets through', { timeout: 60_000 }, async () => {
  const registry = new Registry()
  new Counter({ name: 'ngrokd_build_info', help: 'ngrokd version.', registers: [registry] }).inc()
  const server = new MetricsServer('127.0.0.1:0', registry, silentLogger, { limits: { maxConnections: 4, idleTimeoutMs: 200 } })
  await server.start()
  const held: Socket[] = []
  try {
    const closed: Array<Promise<void>> = []
    for (let i = 0; i < 6; i++) {
      const socket = connect(server.port!, '127.0.0.1')
      socket.on('error', () => {})
      held.push(socket)
      closed.push(new Promise((resolve) => socket.once('close', () => resolve())))
    }
    // the two past the limit are closed at once, the four silent ones once idle: none stays
    await Promise.all(closed)
    assert.equal((await get(server.port!, '/metrics')).status, 200, 'a scraper gets in afterwards')
  } finally {
    for (const s of held) s.destroy()
    await server.close()
  }
})

test("a family whose collect() throws (a plugin's metric) is left out, with one warning; the others are served", async () => {
  const registry = new Registry()
  new Counter({ name: 'ngrokd_build_info', help: 'ngrokd version.', labelNames: ['version'], registers: [registry] }).inc({ version: '1.0.0' })
  let broken = true
  new Counter({ name: 'plugin_broken_total', help: 'a plugin metric whose collect throws', registers: [registry], collect() { if (broken) throw new Error('the moon is down') } })
  const warnings: string[] = []
  const logger = { ...silentLogger, warn: (_o: unknown, msg?: string) => void warnings.push(String(msg)), child: () => logger }
  const server = new MetricsServer('127.0.0.1:0', registry, logger)
  await server.start()
  try {
    for (let i = 0; i < 2; i++) {
      const r = await get(server.port!, '/metrics')
      assert.equal(r.status, 200)
      assert.match(r.body, /ngrokd_build_info\{version="1\.0\.0"\} 1/)
      assert.doesNotMatch(r.body, /plugin_broken_total/)
    }
    assert.deepEqual(warnings, ['prometheus: collecting plugin_broken_total failed, left out of the scrape until it works: the moon is down'], 'warned once')
    broken = false
    const healed = await get(server.port!, '/metrics')
    assert.match(healed.body, /^plugin_broken_total 0$/m)
    assert.equal(healed.body, await registry.metrics(), "the same text as prom-client's own")
  } finally {
    await server.close()
  }
})

test('listen must be host:port; the options schema requires it', () => {
  assert.deepEqual(parseListen('[::1]:9464'), { host: '::1', port: 9464 })
  for (const bad of ['9464', 'localhost', 'a:b', '[nope]:1', '127.0.0.1:70000']) assert.throws(() => parseListen(bad), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PLUGIN_INVALID'), bad)
  assert.deepEqual(plugin.optionsSchema?.required, ['listen'])
  const pattern = new RegExp((plugin.optionsSchema as unknown as { properties: { listen: { pattern: string } } }).properties.listen.pattern)
  for (const good of ['127.0.0.1:9464', '[::1]:9464', 'localhost:9464']) assert.ok(pattern.test(good), good)
  for (const bad of ['9464', 'localhost', '127.0.0.1:', ':9464', '[::1]9464', 'a b:1']) assert.ok(!pattern.test(bad), bad)
  assert.equal(plugin.name, 'prometheus')
  // what the pattern lets through and the parser refuses is refused at load (the start, a reload), not in register()
  assert.throws(() => plugin.checkOptions?.({ listen: '127.0.0.1:70000' }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PLUGIN_INVALID'))
  assert.doesNotThrow(() => plugin.checkOptions?.({ listen: '127.0.0.1:9464' }))
})

// the conformance kit every plugin runs
TestFramework.use({ describe, it, beforeAll: before, afterAll: after })
testPlugin({ plugin, options: { listen: '127.0.0.1:0' } })

test("a family whose collect() never settles is left out after the time limit, warned once and not called again meanwhile; the others are served", async () => {
  const registry = new Registry()
  new Counter({ name: 'ngrokd_build_info', help: 'ngrokd version.', labelNames: ['version'], registers: [registry] }).inc({ version: '1.0.0' })
  let calls = 0
  let release: (() => void) | undefined
  new Counter({
    name: 'plugin_stuck_total',
    help: 'a plugin metric whose collect awaits what never comes',
    registers: [registry],
    collect() {
      if (++calls === 1) return new Promise<void>((resolve) => (release = resolve))
    },
  })
  const warnings: string[] = []
  const logger = { ...silentLogger, warn: (_o: unknown, msg?: string) => void warnings.push(String(msg)), child: () => logger }
  const server = new MetricsServer('127.0.0.1:0', registry, logger, { collectTimeoutMs: 200 })
  await server.start()
  try {
    for (let i = 0; i < 2; i++) {
      const r = await get(server.port!, '/metrics')
      assert.equal(r.status, 200)
      assert.match(r.body, /ngrokd_build_info\{version="1\.0\.0"\} 1/)
      assert.doesNotMatch(r.body, /plugin_stuck_total/)
    }
    assert.equal(calls, 1, 'a collection still pending is not started again')
    assert.deepEqual(warnings, ['prometheus: collecting plugin_stuck_total failed, left out of the scrape until it works: it did not finish within 0.2 s'], 'warned once')
    release!()
    await new Promise((r) => setImmediate(r))
    const healed = await get(server.port!, '/metrics')
    assert.match(healed.body, /^plugin_stuck_total 0$/m)
  } finally {
    release?.()
    await server.close()
  }
})

test('a listen port held by another program at start is tried again after each reconcile, with the same hook (the plugin then runs again)', async () => {
  const holder = (await import('node:net')).createServer()
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve))
  const port = (holder.address() as { port: number }).port
  const hooks: { onStart: Array<() => unknown>; afterReconcile: Array<(s: readonly unknown[]) => unknown>; onStop: Array<() => unknown> } = { onStart: [], afterReconcile: [], onStop: [] }
  const ctx = {
    name: 'prometheus', options: { listen: `127.0.0.1:${port}` }, logger: silentLogger, metrics: new Registry(), addDoctorChecks: () => {},
    hooks: { onStart: (f: () => unknown) => hooks.onStart.push(f), afterReconcile: (f: (s: readonly unknown[]) => unknown) => hooks.afterReconcile.push(f), onStop: (f: () => unknown) => hooks.onStop.push(f) },
  }
  await plugin.register(ctx as unknown as Parameters<typeof plugin.register>[0])
  assert.equal(hooks.onStart[0], hooks.afterReconcile[0], 'one function: the plugin host ends the failure of one with the success of the other')
  try {
    await assert.rejects(Promise.resolve().then(() => hooks.onStart[0]!()), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_LISTEN'))
    await assert.rejects(Promise.resolve().then(() => hooks.afterReconcile[0]!([])), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_LISTEN'), 'still held')
    await new Promise<void>((resolve) => holder.close(() => resolve()))
    await hooks.afterReconcile[0]!([])
    assert.equal((await get(port, '/metrics')).status, 200)
    await hooks.afterReconcile[0]!([]) // listening: nothing to do
  } finally {
    for (const f of hooks.onStop) await f()
    holder.close()
  }
})
