import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { ListenerStatus } from '../contracts/forwarder.js'
import { describeStatus, metricsSnapshot, trafficTotals, type StatusSources } from './status.js'

const listener = (over: Partial<ListenerStatus>): ListenerStatus => ({
  address: '10.107.0.2',
  port: 80,
  target: { hostname: 'api.prod', port: 80, proto: 'http' },
  openConnections: 0,
  totalConnections: 0,
  bytesIn: 0,
  bytesOut: 0,
  errors: {},
  ...over,
})

const listeners = [
  listener({ openConnections: 2, totalConnections: 10, bytesIn: 100, bytesOut: 1000, errors: { ERR_NGROK_3200: 1 }, refused: 3, handshake: { count: 4, totalMs: 40, maxMs: 20 } }),
  listener({ port: 443, openConnections: 1, totalConnections: 5, bytesIn: 50, bytesOut: 500, errors: { ERR_NGROK_3200: 2, NGROKD_ERR_INGRESS_TIMEOUT: 1 }, handshake: { count: 1, totalMs: 10, maxMs: 10 } }),
]

test('trafficTotals adds every listener up: bytes, connections, refusals, errors by code, the mean handshake', () => {
  assert.deepEqual(trafficTotals(listeners), {
    connections: 15,
    refused: 3,
    bytesIn: 150,
    bytesOut: 1500,
    errors: { ERR_NGROK_3200: 3, NGROKD_ERR_INGRESS_TIMEOUT: 1 },
    meanHandshakeMs: 10,
  })
  assert.equal(trafficTotals([]).meanHandshakeMs, undefined, 'no handshake yet: no mean')
})

/** A running daemon's status sources with two serving services on `listeners`, `over` on top. */
function sourcesWith(over: Partial<StatusSources>): StatusSources {
  return {
    phase: 'running',
    startedAt: Date.now(),
    config: { file: '/etc/ngrokd/config.yml', restartPending: [] },
    insecureSkipVerify: false,
    apiKey: { source: 'none' },
    names: { state: 'ok' },
    plugins: [],
    pollIntervalMs: 10_000,
    polls: { ok: 1, failed: 0 },
    services: { total: 2, serving: 2, error: 0 },
    listeners,
    ...over,
  }
}

test('describeStatus reports what each stage gave it, and says loudly when ingress verification is off', () => {
  const sources = sourcesWith({
    startedAt: Date.now() - 61_000,
    operatorId: 'k8sop_1',
    ingress: { endpoint: 'ingress.example:443', source: 'api' },
    apiKey: { source: 'environment variable NGROK_API_KEY', lastError: { at: '2026-12-04T05:00:00.000Z', message: 'HTTP 503' } },
    pollIntervalMs: 30_000,
    polls: { ok: 3, failed: 1 },
  })
  const status = describeStatus(sources)
  assert.equal(status.phase, 'running')
  assert.equal(status.pid, process.pid)
  assert.ok(status.uptimeSeconds >= 61)
  assert.equal(status.ingressEndpoint, 'ingress.example:443')
  assert.equal(status.ingressEndpointSource, 'api')
  assert.equal(status.ingressVerification, 'verified')
  assert.deepEqual(status.apiKey, sources.apiKey, 'where the key came from and the last API error reach the CLI')
  assert.ok(status.memory.rss > status.memory.heapUsed && status.memory.heapUsed > 0, 'the process memory, as process.memoryUsage() tells it')
  assert.equal(status.openConnections, 3)
  assert.equal(status.traffic.connections, 15)
  assert.equal('forwarder' in status, false, 'no forwarder mode: the key is absent')
  const { ingress: _ingress, ...withoutIngress } = sources
  const early = describeStatus({ ...withoutIngress, insecureSkipVerify: true })
  assert.equal('ingressEndpoint' in early, false, 'no endpoint known yet')
  assert.match(early.ingressVerification, /^DISABLED/)
  assert.deepEqual(metricsSnapshot(sources).polls, { ok: 3, failed: 1 })
})

test("describeStatus counts the forwarder's unlistened listeners: connections still draining are open, and a removed endpoint's traffic stays in the totals", () => {
  const sources = sourcesWith({
    unlistened: { openConnections: 1, totalConnections: 7, bytesIn: 50_000_000, bytesOut: 20, errors: { ERR_NGROK_3200: 1 }, refused: 0, handshake: { count: 5, totalMs: 50, maxMs: 30 } },
  })
  const status = describeStatus(sources)
  assert.equal(status.openConnections, 4)
  assert.deepEqual(status.traffic, { connections: 22, refused: 3, bytesIn: 50_000_150, bytesOut: 1520, errors: { ERR_NGROK_3200: 4, NGROKD_ERR_INGRESS_TIMEOUT: 1 }, meanHandshakeMs: 10 })
})
