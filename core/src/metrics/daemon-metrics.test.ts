import { test } from 'node:test'
import { spawnSync } from 'node:child_process'
import { requires } from '../testing/requires.js'
import assert from 'node:assert/strict'
import { Registry } from 'prom-client'
import { registerDaemonMetrics, type MetricsSnapshot } from './daemon-metrics.js'

const snapshot: MetricsSnapshot = {
  version: '1.0.0',
  draining: 2,
  services: { serving: 2, error: 1 },
  polls: { ok: 7, failed: 1, lastSuccessUnixSeconds: 1_764_000_000 },
  listeners: [
    {
      address: '10.107.0.2', port: 80, target: { hostname: 'api.prod', port: 80, proto: 'http' },
      openConnections: 3, totalConnections: 10, bytesIn: 1200, bytesOut: 64000,
      errors: { ERR_NGROK_3200: 2, 'weird"code\n': 1 }, refused: 4, handshake: { count: 8, totalMs: 40, maxMs: 12 },
    },
  ],
}

test('renders the Prometheus text format with escaped labels', async () => {
  const registry = new Registry()
  registerDaemonMetrics(registry, () => snapshot)
  const text = await registry.metrics()
  const lines = text.trimEnd().split('\n').filter((line) => line !== '') // families are separated by blank lines
  for (const line of lines) assert.match(line, /^(# (HELP|TYPE) ngrokd_\w+ .+|ngrokd_\w+(\{[^}]*\})? -?[\d.e+]+)$/, line)
  const l = 'hostname="api.prod",port="80",proto="http",listen="10.107.0.2:80"'
  assert.ok(lines.includes(`ngrokd_connections_open{${l}} 3`))
  assert.ok(lines.includes(`ngrokd_bytes_total{${l},direction="in"} 1200`))
  assert.ok(lines.includes(`ngrokd_bytes_total{${l},direction="out"} 64000`))
  assert.ok(lines.includes(`ngrokd_connection_errors_total{${l},code="ERR_NGROK_3200"} 2`))
  assert.ok(lines.includes(`ngrokd_connection_errors_total{${l},code="weird\\"code\\n"} 1`))
  assert.ok(lines.includes(`ngrokd_connections_refused_total{${l}} 4`))
  assert.ok(lines.includes(`ngrokd_ingress_handshake_seconds_sum{${l}} 0.04`))
  assert.ok(lines.includes(`ngrokd_ingress_handshake_seconds_count{${l}} 8`))
  assert.ok(lines.includes('ngrokd_services{state="error"} 1'))
  assert.ok(lines.includes('ngrokd_connections_draining 2'), 'a removed endpoint\'s connections still open')
  assert.ok(lines.includes('ngrokd_polls_total{result="ok"} 7'))
  assert.equal(lines.filter((x) => x === '# TYPE ngrokd_bytes_total counter').length, 1)
  assert.ok(lines.includes('# TYPE ngrokd_ingress_handshake_seconds summary'), 'one family for _sum and _count, as Prometheus expects')
  assert.ok(!lines.some((x) => /^# TYPE ngrokd_ingress_handshake_seconds_(sum|count) /.test(x)))
})

test("promtool's linter accepts the exposition", { skip: requires.command('promtool') }, async () => {
  const registry = new Registry()
  registerDaemonMetrics(registry, () => snapshot)
  const r = spawnSync('promtool', ['check', 'metrics'], { input: await registry.metrics(), encoding: 'utf8' })
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`)
})

test('reads the snapshot at every scrape: no state is kept between scrapes', async () => {
  const registry = new Registry()
  let opened = 1
  registerDaemonMetrics(registry, () => ({ ...snapshot, listeners: [{ ...snapshot.listeners[0]!, openConnections: opened }] }))
  assert.match(await registry.metrics(), /^ngrokd_connections_open\{[^}]+\} 1$/m)
  opened = 5
  assert.match(await registry.metrics(), /^ngrokd_connections_open\{[^}]+\} 5$/m)
  assert.match(await registry.metrics(), /^ngrokd_build_info\{version="1\.0\.0"\} 1$/m)
})
