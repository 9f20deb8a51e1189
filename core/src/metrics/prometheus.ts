import { createServer, type Server } from 'node:http'
import type { ListenerStatus } from '../contracts/forwarder.js'
import type { Logger } from '../contracts/logger.js'
import { NgrokdError } from '../errors/ngrokd-error.js'

export interface MetricsSnapshot {
  version: string
  listeners: readonly ListenerStatus[]
  services: { serving: number; error: number }
  polls: { ok: number; failed: number; lastSuccessUnixSeconds?: number }
}

type Labels = Record<string, string | number>

/** Label values escaped as the text format asks: backslash, double quote and newline. */
function labels(l: Labels): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
  return parts.length ? `{${parts.join(',')}}` : ''
}

/**
 * Renders the Prometheus text exposition format (version 0.0.4): one HELP and TYPE line per
 * family, then its samples. Pure: the daemon hands in a snapshot.
 */
export function renderPrometheus(s: MetricsSnapshot): string {
  const out: string[] = []
  const family = (name: string, type: 'counter' | 'gauge', help: string, samples: Array<[Labels, number]>): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`)
    for (const [l, v] of samples) out.push(`${name}${labels(l)} ${Number.isFinite(v) ? v : 0}`)
  }
  const per = (l: ListenerStatus): Labels => ({ hostname: l.target.hostname, port: l.target.port, proto: l.target.proto, listen: `${l.address}:${l.port}` })
  family('ngrokd_build_info', 'gauge', 'ngrokd version.', [[{ version: s.version }, 1]])
  family('ngrokd_services', 'gauge', 'Services by state.', [
    [{ state: 'serving' }, s.services.serving],
    [{ state: 'error' }, s.services.error],
  ])
  family('ngrokd_polls_total', 'counter', 'API polls by result.', [
    [{ result: 'ok' }, s.polls.ok],
    [{ result: 'failed' }, s.polls.failed],
  ])
  if (s.polls.lastSuccessUnixSeconds !== undefined) {
    family('ngrokd_last_successful_poll_timestamp_seconds', 'gauge', 'When the API was last polled successfully.', [[{}, s.polls.lastSuccessUnixSeconds]])
  }
  family('ngrokd_connections_open', 'gauge', 'Forwarded connections open now.', s.listeners.map((l) => [per(l), l.openConnections]))
  family('ngrokd_connections_total', 'counter', 'Forwarded connections accepted.', s.listeners.map((l) => [per(l), l.totalConnections]))
  family('ngrokd_connections_refused_total', 'counter', 'Connections refused at a connection limit.', s.listeners.map((l) => [per(l), l.refused ?? 0]))
  family(
    'ngrokd_bytes_total',
    'counter',
    'Bytes forwarded; direction in = client to ingress, out = ingress to client.',
    s.listeners.flatMap((l): Array<[Labels, number]> => [
      [{ ...per(l), direction: 'in' }, l.bytesIn],
      [{ ...per(l), direction: 'out' }, l.bytesOut],
    ]),
  )
  family(
    'ngrokd_connection_errors_total',
    'counter',
    'Failed connections by ngrok error code or ngrokd error code.',
    s.listeners.flatMap((l) => Object.entries(l.errors).map(([code, n]): [Labels, number] => [{ ...per(l), code }, n])),
  )
  family('ngrokd_ingress_handshake_seconds_sum', 'counter', 'Time from accept to ConnResponse, summed.', s.listeners.map((l) => [per(l), (l.handshake?.totalMs ?? 0) / 1000]))
  family('ngrokd_ingress_handshake_seconds_count', 'counter', 'Connections that got a ConnResponse.', s.listeners.map((l) => [per(l), l.handshake?.count ?? 0]))
  family('ngrokd_ingress_handshake_seconds_max', 'gauge', 'Longest time from accept to ConnResponse.', s.listeners.map((l) => [per(l), (l.handshake?.maxMs ?? 0) / 1000]))
  return `${out.join('\n')}\n`
}

/** Serves `GET /metrics` on `host:port` (off unless `metrics.prometheus_listen` is set). */
export class PrometheusServer {
  private server?: Server

  constructor(
    private readonly listen: string,
    private readonly snapshot: () => MetricsSnapshot,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(this.listen)
    if (!m) throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `metrics.prometheus_listen "${this.listen}" needs host:port`, { hint: 'e.g. 127.0.0.1:9464' })
    const host = m[1] ?? m[2]!
    const server = createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404).end('only GET /metrics here\n')
        return
      }
      const body = renderPrometheus(this.snapshot())
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': Buffer.byteLength(body) })
      res.end(body)
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) =>
        reject(new NgrokdError('NGROKD_ERR_LISTEN', `metrics endpoint ${this.listen}: ${(e as Error).message}`, { cause: e, hint: 'choose a free host:port for metrics.prometheus_listen' })),
      )
      server.listen(Number(m[3]), host, () => resolve())
    })
    this.server = server
    this.logger.info({ listen: this.listen }, `Prometheus metrics on http://${this.listen}/metrics`)
  }

  async close(): Promise<void> {
    const server = this.server
    this.server = undefined
    if (!server) return
    server.closeAllConnections?.()
    await new Promise<void>((r) => server.close(() => r()))
  }
}
