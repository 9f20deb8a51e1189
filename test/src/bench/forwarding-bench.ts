import { lookup } from 'node:dns/promises'
import { writeFileSync } from 'node:fs'
import { generateKeyAndCsr, IngressDialer, NgrokApiClient, silentLogger } from '@ngrokd/core'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import type { NetDriverCase } from '../helpers/net-drivers.js'
import { SimHost } from './sim-host-client.js'
import { bulkExchange, tcpOpener, type OpenStream } from './stream-probes.js'
import { median, percentile, ratio } from './stats.js'
import { findWrk, runWrk, WRK_CONNECTIONS, WRK_THREADS } from './wrk.js'

export type PathName = 'direct' | 'mtls' | 'daemon'

export const PATH_LABELS: Record<PathName, string> = {
  direct: 'direct TCP to the bulk backend (no tunnel)',
  mtls: 'direct mTLS client to the ingress (ConnRequest, then bulk)',
  daemon: 'through ngrokd (in-thread forwarder)',
}

export interface PathFigures {
  /** Download of `downloadBytes` on a fresh connection, 10⁶ bytes per second. */
  downloadMBps: number
  /** Fresh connection → first payload byte of `GET 1`, percentiles over `latencyRequests` sequential requests. */
  ttfbP50Ms: number
  ttfbP99Ms: number
}

/** Figure 3: forwarding on loopback, direct vs a direct mTLS client vs through the daemon. */
export interface ForwardingFigure {
  status: 'ok' | 'skipped' | 'error'
  reason?: string
  runs: number
  downloadBytes: number
  latencyRequests: number
  /** Medians over the runs; `daemon` is null when the daemon part was skipped. */
  paths?: { direct: PathFigures; mtls: PathFigures; daemon: PathFigures | null }
  daemonSkipped?: string
  /** Each path over the direct one (throughput: path/direct; latency: path − direct). */
  versusDirect?: Partial<Record<PathName, { download: number | null; ttfbP50ExtraMs: number; ttfbP99ExtraMs: number }>>
  wrk: {
    status: 'ok' | 'skipped' | 'error'
    reason?: string
    seconds: number
    threads: number
    connections: number
    /** Median keep-alive HTTP requests/s against the http-echo backend directly and through ngrokd. */
    directRps?: number
    daemonRps?: number
    /** daemon / direct. */
    ratio?: number | null
    samples: Array<{ direct: number; daemon: number }>
  }
  samples: Partial<Record<PathName, PathFigures[]>>
}

const NET: NetDriverCase = { driver: 'linux-netlink', subnet: '10.107.0.0/16', interfaceName: 'ngkbench0', kernelLink: true }
const BULK = { hostname: 'bulk.bench', port: 9000 }
const WEB = { hostname: 'web.bench', port: 80 }

/** A client of the binding ingress as the daemon is one: registered through the API, dialling with core's IngressDialer. */
async function mtlsOpener(sim: SimHost): Promise<OpenStream> {
  const api = new NgrokApiClient({ baseUrl: sim.info.apiUrl, apiKey: sim.info.apiKey, logger: silentLogger })
  const { keyPem, csrPem } = generateKeyAndCsr()
  const op = await api.createOperator({
    description: 'ngrokd bench: direct mTLS client',
    enabled_features: ['bindings'],
    region: 'global',
    binding: { endpoint_selectors: ['true'], csr: csrPem },
  })
  const certPem = op.binding?.cert?.cert
  const ingress = op.binding?.ingress_endpoint
  if (!certPem || !ingress) throw new Error('the simulator registered the bench operator without a certificate or ingress endpoint')
  const dialer = new IngressDialer({ logger: silentLogger, credentials: () => ({ certPem, keyPem }), endpoint: () => ingress, ca: sim.info.caCertPem })
  return async () => {
    const { socket, early } = await dialer.dial(BULK)
    return { socket, early }
  }
}

/** How long the daemon may take to close the connections the clients already closed (wrk's last ones). A safety net. */
const SETTLE_SAFETY_MS = 10_000

/**
 * Waits until the daemon counts no open connection before stopping it: every client has closed by
 * now, and the figures are not about a stop racing connections that are still closing.
 */
async function settleConnections(daemon: E2eDaemon, log: (line: string) => void): Promise<void> {
  const deadline = Date.now() + SETTLE_SAFETY_MS
  let open: number | undefined
  while (Date.now() < deadline) {
    open = await daemon.status().then((st) => st.openConnections as number, () => undefined)
    if (open === 0 || open === undefined) return
    await new Promise((r) => setTimeout(r, 50))
  }
  log(`  ngrokd still counts ${open} open connection(s) ${SETTLE_SAFETY_MS} ms after the last client closed`)
}

async function measurePath(open: OpenStream, downloadBytes: number, latencyRequests: number): Promise<PathFigures> {
  const { totalMs } = await bulkExchange(open, downloadBytes)
  const ttfb: number[] = []
  for (let i = 0; i < latencyRequests; i++) ttfb.push((await bulkExchange(open, 1)).firstByteMs)
  return { downloadMBps: downloadBytes / 1e6 / (totalMs / 1000), ttfbP50Ms: percentile(ttfb, 50), ttfbP99Ms: percentile(ttfb, 99) }
}

const medianPath = (xs: PathFigures[]): PathFigures => ({
  downloadMBps: median(xs.map((x) => x.downloadMBps)),
  ttfbP50Ms: median(xs.map((x) => x.ttfbP50Ms)),
  ttfbP99Ms: median(xs.map((x) => x.ttfbP99Ms)),
})

export interface ForwardingRunOptions {
  runs: number
  downloadBytes: number
  latencyRequests: number
  wrkSeconds: number
  /** Why the daemon cannot run here (not root / no namespace); undefined = run it. */
  daemonSkip: string | undefined
  log: (line: string) => void
}

export async function runForwardingFigure(o: ForwardingRunOptions): Promise<ForwardingFigure> {
  const fig: ForwardingFigure = {
    status: 'ok',
    runs: o.runs,
    downloadBytes: o.downloadBytes,
    latencyRequests: o.latencyRequests,
    wrk: { status: 'ok', seconds: o.wrkSeconds, threads: WRK_THREADS, connections: WRK_CONNECTIONS, samples: [] },
    samples: { direct: [], mtls: [], daemon: [] },
  }
  if (o.daemonSkip) fig.daemonSkipped = o.daemonSkip
  const sim = await SimHost.start({
    endpoints: [
      { url: `tcp://${BULK.hostname}:${BULK.port}`, backend: 'bulk' },
      { url: `http://${WEB.hostname}`, backend: 'http-echo' },
    ],
    direct: true,
  })
  let daemon: E2eDaemon | undefined
  try {
    const direct = sim.info.direct!
    const paths: Partial<Record<PathName, OpenStream>> = { direct: tcpOpener('127.0.0.1', direct.bulk), mtls: await mtlsOpener(sim) }
    let daemonWeb: string | undefined
    if (!o.daemonSkip) {
      daemon = E2eDaemon.start({ name: 'bench-forwarding', sim: sim.info, net: NET, pollInterval: '1h', logLevel: 'warn' })
      await daemon.waitReady((s) => s.services?.serving === 2)
      // The baseline is the in-thread forwarder: forwarder.workers 0 (the default, auto, may pick the
      // worker pool). E2eDaemon writes a fixed config, so add the key and start again with it.
      await daemon.stop('SIGTERM')
      writeFileSync(daemon.configFile, `${JSON.stringify({ ...daemon.config, forwarder: { workers: 0 } }, null, 2)}\n`)
      daemon.restart()
      await daemon.waitReady((s) => s.services?.serving === 2)
      // by hostname through /etc/hosts once; the timed connections then use the address (as the direct paths do)
      const { address } = await lookup(BULK.hostname, { family: 4 })
      paths.daemon = tcpOpener(address, BULK.port)
      daemonWeb = `http://${WEB.hostname}/`
    }
    const wrk = findWrk()
    if ('reason' in wrk) {
      fig.wrk.status = 'skipped'
      fig.wrk.reason = wrk.reason
    } else if (!daemonWeb) {
      fig.wrk.status = 'skipped'
      fig.wrk.reason = `through ngrokd: ${o.daemonSkip}`
    }
    for (let run = 1; run <= o.runs; run++) {
      const line: string[] = []
      for (const name of ['direct', 'mtls', 'daemon'] as const) {
        const open = paths[name]
        if (!open) continue
        const r = await measurePath(open, o.downloadBytes, o.latencyRequests)
        fig.samples[name]!.push(r)
        line.push(`${name} ${r.downloadMBps.toFixed(0)} MB/s, ttfb p50 ${r.ttfbP50Ms.toFixed(2)} ms`)
      }
      if (fig.wrk.status === 'ok' && 'path' in wrk && daemon && daemonWeb) {
        try {
          const d = runWrk(wrk.path, `http://127.0.0.1:${direct.http}/`, o.wrkSeconds)
          const t = runWrk(wrk.path, daemonWeb, o.wrkSeconds)
          if (d.errors + t.errors > 0) throw new Error(`wrk counted errors: direct ${d.errors}, through ngrokd ${t.errors}`)
          fig.wrk.samples.push({ direct: d.requestsPerSec, daemon: t.requestsPerSec })
          line.push(`wrk direct ${d.requestsPerSec.toFixed(0)} req/s, through ngrokd ${t.requestsPerSec.toFixed(0)} req/s`)
        } catch (e) {
          // the other figures stand; this row says what went wrong
          fig.wrk.status = 'error'
          fig.wrk.reason = (e as Error).message
          line.push(`wrk: ${fig.wrk.reason}`)
        }
        await settleConnections(daemon, o.log) // wrk's 16 connections are closing: not into the next run's figures
      }
      o.log(`  run ${run}/${o.runs}: ${line.join('; ')}`)
    }
    const s = fig.samples
    const d = medianPath(s.direct!)
    const m = medianPath(s.mtls!)
    const t = s.daemon!.length > 0 ? medianPath(s.daemon!) : null
    fig.paths = { direct: d, mtls: m, daemon: t }
    const vs = (p: PathFigures) => ({ download: ratio(p.downloadMBps, d.downloadMBps), ttfbP50ExtraMs: p.ttfbP50Ms - d.ttfbP50Ms, ttfbP99ExtraMs: p.ttfbP99Ms - d.ttfbP99Ms })
    fig.versusDirect = { mtls: vs(m), ...(t ? { daemon: vs(t) } : {}) }
    if (fig.wrk.samples.length > 0) {
      fig.wrk.directRps = median(fig.wrk.samples.map((x) => x.direct))
      fig.wrk.daemonRps = median(fig.wrk.samples.map((x) => x.daemon))
      fig.wrk.ratio = ratio(fig.wrk.daemonRps, fig.wrk.directRps)
    }
  } finally {
    try {
      if (daemon?.running) await settleConnections(daemon, o.log)
      await daemon?.dispose()
    } finally {
      await sim.stop()
    }
  }
  return fig
}
