import { Counter, Gauge, type Registry } from 'prom-client'
import type { ListenerStatus } from '../contracts/forwarder.js'

/** What the daemon's metrics are read from, at every scrape. */
export interface MetricsSnapshot {
  version: string
  listeners: readonly ListenerStatus[]
  /** Connections of listeners no longer listening (removed endpoints, moved network ports) still open: draining. */
  draining?: number
  services: { serving: number; error: number }
  polls: { ok: number; failed: number; lastSuccessUnixSeconds?: number }
}

const LISTENER_LABELS = ['hostname', 'port', 'proto', 'listen'] as const
type ListenerLabels = Record<(typeof LISTENER_LABELS)[number], string | number>

const per = (l: ListenerStatus): ListenerLabels => ({ hostname: l.target.hostname, port: l.target.port, proto: l.target.proto, listen: `${l.address}:${l.port}` })

/**
 * Registers the daemon's own metrics on a prom-client registry; each family reads `snapshot()` when
 * scraped, so nothing is counted twice and nothing runs between scrapes. Served by the prometheus
 * plugin (`plugins: [{ name: prometheus, options: { listen } }]`); plugins add their own to the same registry.
 *
 * Families: `ngrokd_build_info`, `ngrokd_services{state}`, `ngrokd_polls_total{result}`,
 * `ngrokd_last_successful_poll_timestamp_seconds`, and per listener (labels hostname, port, proto,
 * listen) `ngrokd_connections_open`, `ngrokd_connections_total`, `ngrokd_connections_refused_total`,
 * `ngrokd_bytes_total{direction}`, `ngrokd_connection_errors_total{code}`,
 * `ngrokd_ingress_handshake_seconds` (a summary without quantiles: `_sum`, `_count`) and `ngrokd_ingress_handshake_seconds_max`;
 * `ngrokd_connections_draining` (no labels).
 */
export function registerDaemonMetrics(registry: Registry, snapshot: () => MetricsSnapshot): void {
  const registers = [registry]
  // each family reads the snapshot when collected (cheap: counters the forwarder keeps anyway)
  const gauge = (name: string, help: string, labelNames: readonly string[], fill: (g: Gauge, s: MetricsSnapshot) => void) =>
    new Gauge({ name, help, labelNames, registers, collect() { this.reset(); fill(this, snapshot()) } })
  const counter = (name: string, help: string, labelNames: readonly string[], fill: (c: Counter, s: MetricsSnapshot) => void) =>
    new Counter({ name, help, labelNames, registers, collect() { this.reset(); fill(this, snapshot()) } })

  gauge('ngrokd_build_info', 'ngrokd version.', ['version'], (g, s) => g.set({ version: s.version }, 1))
  gauge('ngrokd_services', 'Services by state.', ['state'], (g, s) => {
    g.set({ state: 'serving' }, s.services.serving)
    g.set({ state: 'error' }, s.services.error)
  })
  counter('ngrokd_polls_total', 'API polls by result.', ['result'], (c, s) => {
    c.inc({ result: 'ok' }, s.polls.ok)
    c.inc({ result: 'failed' }, s.polls.failed)
  })
  gauge('ngrokd_last_successful_poll_timestamp_seconds', 'When the API was last polled successfully.', [], (g, s) => {
    if (s.polls.lastSuccessUnixSeconds !== undefined) g.set(s.polls.lastSuccessUnixSeconds)
  })
  gauge('ngrokd_connections_open', 'Forwarded connections open now.', LISTENER_LABELS, (g, s) => {
    for (const l of s.listeners) g.set(per(l), l.openConnections)
  })
  gauge('ngrokd_connections_draining', 'Forwarded connections still open of listeners no longer listening (removed endpoints, moved network ports).', [], (g, s) => {
    g.set(s.draining ?? 0)
  })
  counter('ngrokd_connections_total', 'Forwarded connections accepted.', LISTENER_LABELS, (c, s) => {
    for (const l of s.listeners) c.inc(per(l), l.totalConnections)
  })
  counter('ngrokd_connections_refused_total', 'Connections refused at a connection limit or from another machine.', LISTENER_LABELS, (c, s) => {
    for (const l of s.listeners) c.inc(per(l), l.refused ?? 0)
  })
  counter('ngrokd_bytes_total', 'Bytes carried; direction in = read from clients (sent on to the ingress once it accepted the connection), out = ingress to client.', [...LISTENER_LABELS, 'direction'], (c, s) => {
    for (const l of s.listeners) {
      c.inc({ ...per(l), direction: 'in' }, l.bytesIn)
      c.inc({ ...per(l), direction: 'out' }, l.bytesOut)
    }
  })
  counter('ngrokd_connection_errors_total', 'Failed connections by ngrok error code or ngrokd error code.', [...LISTENER_LABELS, 'code'], (c, s) => {
    for (const l of s.listeners) for (const [code, n] of Object.entries(l.errors)) c.inc({ ...per(l), code }, n)
  })
  // a summary without quantiles: its _sum and _count series (what the forwarder keeps), one family as Prometheus expects
  const handshake = 'ngrokd_ingress_handshake_seconds'
  const handshakeHelp = 'Time from accept to ConnResponse.'
  registry.registerMetric({
    name: handshake,
    help: handshakeHelp,
    type: 'summary',
    aggregator: 'sum',
    reset() {},
    async get() {
      const values = snapshot().listeners.flatMap((l) => [
        { metricName: `${handshake}_sum`, labels: per(l), value: (l.handshake?.totalMs ?? 0) / 1000 },
        { metricName: `${handshake}_count`, labels: per(l), value: l.handshake?.count ?? 0 },
      ])
      return { name: handshake, help: handshakeHelp, type: 'summary', aggregator: 'sum', values }
    },
  } as unknown as Parameters<Registry['registerMetric']>[0])
  gauge('ngrokd_ingress_handshake_seconds_max', 'Longest time from accept to ConnResponse.', LISTENER_LABELS, (g, s) => {
    for (const l of s.listeners) g.set(per(l), (l.handshake?.maxMs ?? 0) / 1000)
  })
}
