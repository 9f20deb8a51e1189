import { createServer, type Server } from 'node:http'
import { isIP } from 'node:net'
import { NgrokdError, type Logger } from '@ngrokd/core/plugin'

/** What the server needs of a prom-client registry. */
export interface MetricsSource {
  contentType: string
  metrics(): Promise<string>
  /** With these two (a prom-client Registry has them), each family is collected alone: one that throws is left out. */
  getMetricsAsArray?(): Array<{ name: string }>
  getSingleMetricAsString?(name: string): Promise<string>
}

/** `host:port` (IPv6 as `[addr]:port`) → its parts; port 0 picks a free one (tests). */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(listen)
  const host = m?.[1] ?? m?.[2]
  const port = Number(m?.[3])
  if (!m || !host || !Number.isInteger(port) || port < 0 || port > 65535 || (m[1] !== undefined && isIP(host) !== 6)) {
    throw new NgrokdError('NGROKD_ERR_PLUGIN_INVALID', `prometheus: listen "${listen}" is not host:port`, { hint: 'e.g. 127.0.0.1:9464 (keep it on loopback unless a scraper elsewhere needs it)' })
  }
  return { host, port }
}

/**
 * How long one family's collection may take in a scrape: one still pending is left out as if it threw. Under
 * Prometheus's default `scrape_timeout` (10 s), so that the other families still arrive in time.
 */
export const METRIC_COLLECT_TIMEOUT_MS = 3_000

/**
 * What other local users may hold of the metrics port (ngrokd's choices): a scraper keeps one connection and asks every
 * few seconds at most, so a connection silent for {@link METRICS_LIMITS.idleTimeoutMs} is closed, and past
 * `maxConnections` new ones are refused, as the control socket's and the DNS responder's are: nobody can take the
 * daemon's file descriptors through it.
 */
export const METRICS_LIMITS = { maxConnections: 32, idleTimeoutMs: 10_000, headersTimeoutMs: 10_000, requestTimeoutMs: 30_000 } as const

/** Serves `GET /metrics` from `source`; every other request is a 404. */
export class MetricsServer {
  private server?: Server
  /** Families whose collection failed at the last scrape (warned about once, until they recover). */
  private readonly failing = new Set<string>()
  /** Collections that timed out and have not settled since: left out, not called again, until they settle. */
  private readonly stuck = new Set<string>()
  private readonly collectTimeoutMs: number
  private readonly limits: Record<keyof typeof METRICS_LIMITS, number>

  constructor(
    private readonly listen: string,
    private readonly source: MetricsSource,
    private readonly logger: Logger,
    { collectTimeoutMs = METRIC_COLLECT_TIMEOUT_MS, limits = {} }: { collectTimeoutMs?: number; limits?: Partial<Record<keyof typeof METRICS_LIMITS, number>> } = {},
  ) {
    this.collectTimeoutMs = collectTimeoutMs
    this.limits = { ...METRICS_LIMITS, ...limits }
  }

  /** The port listened on (useful with port 0). */
  get port(): number | undefined {
    const a = this.server?.address()
    return typeof a === 'object' && a ? a.port : undefined
  }

  async start(): Promise<void> {
    const { host, port } = parseListen(this.listen)
    const server = createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics here\n')
        return
      }
      this.collect().then(
        (body) => {
          res.writeHead(200, { 'content-type': this.source.contentType, 'content-length': Buffer.byteLength(body) })
          res.end(body)
        },
        (e: unknown) => {
          this.logger.warn({ err: e }, `prometheus: collecting metrics failed: ${(e as Error).message}`)
          res.writeHead(500, { 'content-type': 'text/plain' }).end('collecting metrics failed\n')
        },
      )
    })
    server.maxConnections = this.limits.maxConnections
    server.headersTimeout = this.limits.headersTimeoutMs
    server.requestTimeout = this.limits.requestTimeoutMs
    server.setTimeout(this.limits.idleTimeoutMs, (socket) => socket.destroy())
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(new NgrokdError('NGROKD_ERR_LISTEN', `prometheus: cannot listen on ${this.listen}: ${(e as Error).message}`, { cause: e, hint: 'choose a free host:port for the prometheus plugin\'s listen option' })))
      server.listen(port, host, () => resolve())
    })
    this.server = server
    this.logger.info({ listen: this.listen }, `Prometheus metrics on http://${this.listen}/metrics`)
  }

  /**
   * The exposition text. A family whose collect() throws (a plugin's metric), or is still pending after
   * {@link METRIC_COLLECT_TIMEOUT_MS}, is left out of the scrape, with a warning the first time, instead of failing
   * (or holding) every family with it (prom-client's metrics() rejects as a whole).
   */
  private async collect(): Promise<string> {
    const src = this.source
    if (!src.getMetricsAsArray || !src.getSingleMetricAsString) return src.metrics()
    const names = src.getMetricsAsArray().map((m) => m.name)
    const parts = await Promise.allSettled(names.map((name) => this.collectOne(name)))
    const texts: string[] = []
    parts.forEach((part, i) => {
      const name = names[i]!
      if (part.status === 'fulfilled') {
        texts.push(part.value)
        this.failing.delete(name)
      } else if (!this.failing.has(name)) {
        this.failing.add(name)
        this.logger.warn({ err: part.reason, metric: name }, `prometheus: collecting ${name} failed, left out of the scrape until it works: ${(part.reason as Error)?.message ?? String(part.reason)}`)
      }
    })
    // as prom-client's metrics() joins them (its text format, not OpenMetrics)
    return `${texts.join('\n\n')}\n`
  }

  /** One family's text, or a rejection once it has taken {@link collectTimeoutMs} (or its last call still has). */
  private collectOne(name: string): Promise<string> {
    const ms = this.collectTimeoutMs
    if (this.stuck.has(name)) return Promise.reject(new Error(`its collection from an earlier scrape has not finished after ${ms / 1000} s`))
    const call = Promise.resolve().then(() => this.source.getSingleMetricAsString!(name))
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.stuck.add(name)
        const settled = () => void this.stuck.delete(name)
        call.then(settled, settled)
        reject(new Error(`it did not finish within ${ms / 1000} s`))
      }, ms)
    })
    return Promise.race([call, timedOut]).finally(() => clearTimeout(timer))
  }

  async close(): Promise<void> {
    const server = this.server
    this.server = undefined
    if (!server) return
    server.closeAllConnections?.()
    await new Promise<void>((r) => server.close(() => r()))
  }
}
