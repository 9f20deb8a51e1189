import type { InterfaceInfo } from '../contracts/interface.js'
import type { ListenerFigures, ListenerStatus } from '../contracts/forwarder.js'
import type { NameResolverHealth } from '../contracts/name-resolver.js'
import type { IngressTarget } from '../api/ingress-endpoint.js'
import type { ForwarderMode } from '../forward/create-forwarder.js'
import type { MetricsSnapshot } from '../metrics/daemon-metrics.js'
import type { PluginStatus } from '../plugin/plugin-host.js'
import { CORE_VERSION } from '../version.js'
import type { DaemonPhase, DaemonStatus, PollStatus, TrafficTotals } from './control-api.js'
import type { ServiceCounts } from './reconciler.js'

/**
 * The status stage: what `ngrokd status`, `GET /v1/status` and the metrics show, assembled from what
 * each of the other stages reports. It owns nothing but the assembly: every figure comes from the
 * stage that owns it (registration, poller, reconciler, forwarder, plugins, drivers).
 */
export interface StatusSources {
  phase: DaemonPhase
  startedAt: number
  config: DaemonStatus['config']
  operatorId?: string
  /** Undefined until an endpoint is configured or a registration is known. */
  ingress?: IngressTarget
  insecureSkipVerify: boolean
  ingressCheck?: DaemonStatus['ingressCheck']
  apiKey: DaemonStatus['apiKey']
  stateError?: DaemonStatus['stateError']
  registrationUpdate?: DaemonStatus['registrationUpdate']
  ingressTrust?: string
  driver?: string
  forwarder?: ForwarderMode
  interface?: InterfaceInfo
  subnet?: string
  names: NameResolverHealth
  plugins: PluginStatus[]
  pollIntervalMs: number
  lastPoll?: PollStatus
  polls: { ok: number; failed: number }
  services: ServiceCounts
  listeners: ListenerStatus[]
  /** The forwarder's listeners no longer listening (`Forwarder.unlistened()`): connections draining, counters kept. */
  unlistened?: ListenerFigures
  metricsUrl?: string
}

export function describeStatus(s: StatusSources): DaemonStatus {
  // a removed endpoint's connections still draining are open, and what it carried stays in the totals
  const counted: readonly ListenerFigures[] = s.unlistened ? [...s.listeners, s.unlistened] : s.listeners
  return {
    version: CORE_VERSION,
    pid: process.pid,
    phase: s.phase,
    uptimeSeconds: Math.round((Date.now() - s.startedAt) / 1000),
    config: s.config,
    operatorId: s.operatorId,
    ...(s.ingress ? { ingressEndpoint: s.ingress.endpoint, ingressEndpointSource: s.ingress.source } : {}),
    ingressVerification: s.insecureSkipVerify ? 'DISABLED (ingress.insecure_skip_verify)' : 'verified',
    ...(s.ingressCheck ? { ingressCheck: s.ingressCheck } : {}),
    apiKey: s.apiKey,
    ...(s.stateError ? { stateError: s.stateError } : {}),
    ...(s.registrationUpdate ? { registrationUpdate: s.registrationUpdate } : {}),
    ingressTrust: s.ingressTrust,
    driver: s.driver,
    ...(s.forwarder ? { forwarder: s.forwarder } : {}),
    interface: s.interface,
    subnet: s.subnet,
    names: s.names,
    plugins: s.plugins,
    pollIntervalMs: s.pollIntervalMs,
    lastPoll: s.lastPoll,
    services: s.services,
    openConnections: counted.reduce((n, l) => n + l.openConnections, 0),
    traffic: trafficTotals(counted),
    memory: (({ rss, heapUsed, external, arrayBuffers }) => ({ rss, heapUsed, external, arrayBuffers }))(process.memoryUsage()),
    metrics: s.metricsUrl,
  }
}

/** What the metrics exposition reads (`GET /v1/metrics`, the prometheus plugin). */
export function metricsSnapshot(s: Pick<StatusSources, 'listeners' | 'unlistened' | 'services' | 'polls'>): MetricsSnapshot {
  return { version: CORE_VERSION, listeners: s.listeners, draining: s.unlistened?.openConnections ?? 0, services: s.services, polls: { ...s.polls } }
}

/** Totals over `listeners` (or sums of listeners): bytes each way, connections, errors by code, mean handshake time. */
export function trafficTotals(listeners: readonly ListenerFigures[]): TrafficTotals {
  const errors: Record<string, number> = {}
  let handshakes = 0
  let handshakeMs = 0
  const totals: TrafficTotals = { connections: 0, refused: 0, bytesIn: 0, bytesOut: 0, errors }
  for (const l of listeners) {
    for (const [code, n] of Object.entries(l.errors)) errors[code] = (errors[code] ?? 0) + n
    handshakes += l.handshake?.count ?? 0
    handshakeMs += l.handshake?.totalMs ?? 0
    totals.connections += l.totalConnections
    totals.refused += l.refused ?? 0
    totals.bytesIn += l.bytesIn
    totals.bytesOut += l.bytesOut
  }
  if (handshakes) totals.meanHandshakeMs = handshakeMs / handshakes
  return totals
}
