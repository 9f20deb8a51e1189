import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { silentLogger } from '../contracts/logger.js'
import { PrometheusServer, renderPrometheus, type MetricsSnapshot } from './prometheus.js'

const snapshot: MetricsSnapshot = {
  version: '1.0.0',
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

test('renders the Prometheus text format with escaped labels', () => {
  const text = renderPrometheus(snapshot)
  const lines = text.trimEnd().split('\n')
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
  assert.ok(lines.includes('ngrokd_polls_total{result="ok"} 7'))
  assert.equal(lines.filter((x) => x === '# TYPE ngrokd_bytes_total counter').length, 1)
})

test('serves GET /metrics and nothing else', async () => {
  const server = new PrometheusServer('127.0.0.1:0', () => snapshot, silentLogger)
  // port 0 is not "host:port" of a real port for users, but it lets the test pick a free one
  await server.start()
  const port = ((server as unknown as { server: { address(): { port: number } } }).server.address()).port
  const get = (path: string) =>
    new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
      request({ host: '127.0.0.1', port, path }, (res) => {
        let body = ''
        res.on('data', (d) => (body += d))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }))
      })
        .on('error', reject)
        .end()
    })
  try {
    const ok = await get('/metrics')
    assert.equal(ok.status, 200)
    assert.match(ok.type, /^text\/plain; version=0\.0\.4/)
    assert.match(ok.body, /ngrokd_build_info\{version="1\.0\.0"\} 1/)
    assert.equal((await get('/')).status, 404)
  } finally {
    await server.close()
    await server.close()
  }
})
