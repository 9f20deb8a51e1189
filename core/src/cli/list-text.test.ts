import { test } from 'node:test'
import assert from 'node:assert/strict'
import { renderList } from './commands.js'
import type { ServiceView } from '../daemon/reconciler.js'

test("list says how many connections of removed endpoints are still draining, and nothing when none are", () => {
  const service: ServiceView = { key: 'http://api.prod', url: 'http://api.prod', hostname: 'api.prod', port: 80, proto: 'http', endpointIds: ['ep_1'], state: 'serving', address: '10.107.0.2', openConnections: 0, totalConnections: 0, bytesIn: 0, bytesOut: 0 }
  assert.match(renderList({ services: [service], draining: 2 }), /\ndraining: {3}2 connections of removed endpoints \(closed at the latest when forwarder\.drain_timeout ends\) or of network ports that moved \(at the latest after forwarder\.idle_timeout\)$/)
  assert.match(renderList({ services: [], draining: 1 }), /^no endpoints .*\ndraining: {3}1 connection of removed endpoints/)
  assert.doesNotMatch(renderList({ services: [service], draining: 0 }), /draining/)
  assert.doesNotMatch(renderList({ services: [service] }), /draining/, 'a daemon older than this CLI says nothing of it')
})

test('list counts a hostname\'s connections from the network (network mode) with this machine\'s', () => {
  const service: ServiceView = { key: 'tcp://echo.lab:7000', url: 'tcp://echo.lab:7000', hostname: 'echo.lab', port: 7000, proto: 'tcp', endpointIds: ['ep_1'], state: 'serving', address: '10.107.0.2', openConnections: 1, totalConnections: 3, bytesIn: 0, bytesOut: 0, network: { address: '0.0.0.0', port: 20002, openConnections: 2, totalConnections: 2 } }
  const row = renderList({ services: [service] }).split('\n').find((l) => l.startsWith('echo.lab'))!
  assert.match(row, /serving +3 +0\.0\.0\.0:20002$/, row)
})
