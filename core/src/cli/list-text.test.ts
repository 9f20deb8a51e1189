import { test } from 'node:test'
import assert from 'node:assert/strict'
import { renderList } from './commands.js'
import type { ServiceView } from '../daemon/reconciler.js'

test("list says how many connections of removed endpoints are still draining, and nothing when none are", () => {
  const service: ServiceView = { key: 'http://api.prod', url: 'http://api.prod', hostname: 'api.prod', port: 80, proto: 'http', endpointIds: ['ep_1'], state: 'serving', address: '10.107.0.2', openConnections: 0, totalConnections: 0, bytesIn: 0, bytesOut: 0 }
  assert.match(renderList({ services: [service], draining: 2 }), /\ndraining: {3}2 connections of removed endpoints, closed at the latest when forwarder\.drain_timeout ends$/)
  assert.match(renderList({ services: [], draining: 1 }), /^no endpoints .*\ndraining: {3}1 connection of removed endpoints/)
  assert.doesNotMatch(renderList({ services: [service], draining: 0 }), /draining/)
  assert.doesNotMatch(renderList({ services: [service] }), /draining/, 'a daemon older than this CLI says nothing of it')
})
