import { lookup } from 'node:dns/promises'
import { generateKeyAndCsr, IngressDialer, NgrokApiClient, silentLogger } from '@ngrokd/core'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import type { NetDriverCase } from '../helpers/net-drivers.js'
import { processCpuSeconds, processMemoryMiB } from './proc-stats.js'
import { SimHost } from './sim-host-client.js'
import { bulkExchange, bulkUpload, openIdle, parallelDownload, tcpOpener, type OpenStream } from './stream-probes.js'
import { median, percentile } from './stats.js'
import { findWrk, runWrk, WRK_CONNECTIONS, WRK_THREADS } from './wrk.js'

/** The table's rows: two daemon-free references, then the daemon by `forwarder.workers`. */
export const ROWS = ['direct', 'mtls', 'workers0', 'workers1', 'workers2', 'workersAuto'] as const
export type RowName = (typeof ROWS)[number]
export type DaemonRow = Exclude<RowName, 'direct' | 'mtls'>
export const DAEMON_ROWS: readonly DaemonRow[] = ['workers0', 'workers1', 'workers2', 'workersAuto']

/** `forwarder.workers` of each daemon row. */
export const ROW_WORKERS: Record<DaemonRow, number | 'auto'> = { workers0: 0, workers1: 1, workers2: 2, workersAuto: 'auto' }

export const ROW_LABELS: Record<RowName, string> = {
  direct: 'direct TCP to the backend (no tunnel)',
  mtls: 'direct mTLS client to the ingress (the limit)',
  workers0: 'ngrokd, workers: 0 (in-thread)',
  workers1: 'ngrokd, workers: 1',
  workers2: 'ngrokd, workers: 2',
  workersAuto: 'ngrokd, workers: auto (default)',
}

/** An HTTP load figure: requests/s and latency percentiles from wrk. */
export interface HttpFigure {
  rps: number
  p50Ms: number
  p99Ms: number
  /** Daemon CPU-µs per request (daemon rows only). */
  cpuUsPerRequest: number | null
}

/** One row's figures of one run (or their medians). null = not measured on this row (see the report's notes). */
export interface RowFigures {
  /** One connection, `downloadBytes`, 10⁶ bytes/s from before connect to the last byte. */
  downloadMBps: number
  uploadMBps: number
  /** Aggregate of 8 and 64 downloads at once, `parallelBytes` split over them. */
  parallel8MBps: number
  parallel64MBps: number
  /** Fresh connection → first byte of `GET 1`. */
  ttfbP50Ms: number
  ttfbP99Ms: number
  keepAlive: HttpFigure | null
  newConnection: HttpFigure | null
  /** Daemon process CPU-seconds (utime+stime, all threads) per GiB moved. */
  cpuSecPerGiBDown: number | null
  cpuSecPerGiBUp: number | null
  /** Daemon VmHWM after the row's run, and VmRSS with `idleConnections` idle open connections. */
  peakRssMiB: number | null
  idleRssMiB: number | null
}

/** Figure 3: the forwarding table of the hot-path issue, on loopback against the simulator. */
export interface ForwardingFigure {
  status: 'ok' | 'skipped' | 'error'
  reason?: string
  runs: number
  downloadBytes: number
  uploadBytes: number
  parallelBytes: number
  idleConnections: number
  latencyRequests: number
  /** Medians over the runs; a row is null when it was skipped or failed (`rowProblems` says why). */
  rows?: Record<RowName, RowFigures | null>
  rowProblems: Partial<Record<RowName, string>>
  wrk: { status: 'ok' | 'skipped'; reason?: string; seconds: number; threads: number; connections: number }
  samples: Partial<Record<RowName, RowFigures[]>>
}

const NET: NetDriverCase = { driver: 'linux-netlink', subnet: '10.107.0.0/16', interfaceName: 'ngkbench0', kernelLink: true }
const BULK = { hostname: 'bulk.bench', port: 9000 }
const IDLE = { hostname: 'idle.bench', port: 9001 }
const WEB = { hostname: 'web.bench', port: 80 }
const GiB = 1024 ** 3

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

/** How long the daemon may take to close the connections the clients already closed. A safety net. */
const SETTLE_SAFETY_MS = 10_000

/** Waits until the daemon counts no open connection: the next figure does not pay for the last one's closing. */
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

export interface ForwardingRunOptions {
  runs: number
  downloadBytes: number
  uploadBytes: number
  parallelBytes: number
  idleConnections: number
  latencyRequests: number
  wrkSeconds: number
  /** Why the daemon cannot run here (not root / no namespace); undefined = run it. */
  daemonSkip: string | undefined
  log: (line: string) => void
}

/** How one row is reached: openers for the bulk and idle endpoints, the HTTP URL for wrk, the daemon's pid. */
interface Target {
  bulk: OpenStream
  idle: OpenStream | null
  httpUrl: string | null
  pid: number | null
  daemon: E2eDaemon | null
}

/** CPU-seconds the daemon used while `work` ran; null without a daemon. */
async function cpuDuring<T>(pid: number | null, work: () => Promise<T> | T): Promise<{ value: T; cpuSec: number | null }> {
  const before = pid === null ? 0 : processCpuSeconds(pid)
  const value = await work()
  return { value, cpuSec: pid === null ? null : processCpuSeconds(pid) - before }
}

async function measureRow(t: Target, o: ForwardingRunOptions, wrkPath: string | null): Promise<RowFigures> {
  const settle = async () => {
    if (t.daemon) await settleConnections(t.daemon, o.log)
  }
  const down = await cpuDuring(t.pid, () => bulkExchange(t.bulk, o.downloadBytes))
  await settle()
  const up = await cpuDuring(t.pid, () => bulkUpload(t.bulk, o.uploadBytes))
  await settle()
  const p8 = await parallelDownload(t.bulk, o.parallelBytes, 8)
  await settle()
  const p64 = await parallelDownload(t.bulk, o.parallelBytes, 64)
  await settle()
  const ttfb: number[] = []
  for (let i = 0; i < o.latencyRequests; i++) ttfb.push((await bulkExchange(t.bulk, 1)).firstByteMs)
  await settle()
  const http = async (newConnections: boolean): Promise<HttpFigure | null> => {
    if (!wrkPath || !t.httpUrl) return null
    const { value: w, cpuSec } = await cpuDuring(t.pid, () => runWrk(wrkPath, t.httpUrl!, o.wrkSeconds, newConnections))
    if (w.errors > 0) throw new Error(`wrk ${newConnections ? 'Connection: close' : 'keep-alive'} ${t.httpUrl}: ${w.errors} errors`)
    await settle()
    return { rps: w.requestsPerSec, p50Ms: w.p50Ms, p99Ms: w.p99Ms, cpuUsPerRequest: cpuSec === null ? null : (cpuSec * 1e6) / w.requests }
  }
  const keepAlive = await http(false)
  const newConnection = await http(true)
  let idleRssMiB: number | null = null
  if (t.idle && t.pid !== null) {
    const idle = await openIdle(t.idle, o.idleConnections)
    idleRssMiB = processMemoryMiB(t.pid).rssMiB
    idle.close()
    await settle()
  }
  const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000)
  return {
    downloadMBps: mbps(o.downloadBytes, down.value.totalMs),
    uploadMBps: mbps(o.uploadBytes, up.value.totalMs),
    parallel8MBps: mbps(p8.bytes, p8.totalMs),
    parallel64MBps: mbps(p64.bytes, p64.totalMs),
    ttfbP50Ms: percentile(ttfb, 50),
    ttfbP99Ms: percentile(ttfb, 99),
    keepAlive,
    newConnection,
    cpuSecPerGiBDown: down.cpuSec === null ? null : down.cpuSec / (o.downloadBytes / GiB),
    cpuSecPerGiBUp: up.cpuSec === null ? null : up.cpuSec / (o.uploadBytes / GiB),
    peakRssMiB: t.pid === null ? null : processMemoryMiB(t.pid).peakRssMiB,
    idleRssMiB,
  }
}

/** Median of each figure over the runs; a figure missing in any run is missing in the median. */
function medianRow(xs: RowFigures[]): RowFigures {
  const m = (pick: (x: RowFigures) => number | null | undefined): number | null => {
    const v = xs.map(pick)
    return v.some((x) => x == null) ? null : median(v as number[])
  }
  const httpMedian = (pick: (x: RowFigures) => HttpFigure | null): HttpFigure | null =>
    xs.some((x) => pick(x) === null)
      ? null
      : { rps: m((x) => pick(x)!.rps)!, p50Ms: m((x) => pick(x)!.p50Ms)!, p99Ms: m((x) => pick(x)!.p99Ms)!, cpuUsPerRequest: m((x) => pick(x)!.cpuUsPerRequest) }
  return {
    downloadMBps: m((x) => x.downloadMBps)!,
    uploadMBps: m((x) => x.uploadMBps)!,
    parallel8MBps: m((x) => x.parallel8MBps)!,
    parallel64MBps: m((x) => x.parallel64MBps)!,
    ttfbP50Ms: m((x) => x.ttfbP50Ms)!,
    ttfbP99Ms: m((x) => x.ttfbP99Ms)!,
    keepAlive: httpMedian((x) => x.keepAlive),
    newConnection: httpMedian((x) => x.newConnection),
    cpuSecPerGiBDown: m((x) => x.cpuSecPerGiBDown),
    cpuSecPerGiBUp: m((x) => x.cpuSecPerGiBUp),
    peakRssMiB: m((x) => x.peakRssMiB),
    idleRssMiB: m((x) => x.idleRssMiB),
  }
}

/** Starts a daemon row's daemon (a fresh process per run, so its peak RSS is this run's) and finds its listeners. */
async function startDaemonRow(row: DaemonRow, daemon: E2eDaemon | undefined, sim: SimHost): Promise<{ daemon: E2eDaemon; target: Target }> {
  let d = daemon
  if (d) d.restart()
  else
    d = E2eDaemon.start({
      name: `bench-${row}`,
      sim: sim.info,
      net: NET,
      pollInterval: '1h',
      logLevel: 'warn',
      extraConfig: { forwarder: { workers: ROW_WORKERS[row] } },
    })
  await d.waitReady((s) => s.services?.serving === 3)
  // by hostname through /etc/hosts once; the timed connections then use the address (as the direct paths do)
  const bulk = await lookup(BULK.hostname, { family: 4 })
  const idle = await lookup(IDLE.hostname, { family: 4 })
  const pid = d.process.child.pid
  if (pid === undefined) throw new Error(`${row}: the daemon has no pid`)
  return { daemon: d, target: { bulk: tcpOpener(bulk.address, BULK.port), idle: tcpOpener(idle.address, IDLE.port), httpUrl: `http://${WEB.hostname}/`, pid, daemon: d } }
}

export async function runForwardingFigure(o: ForwardingRunOptions): Promise<ForwardingFigure> {
  const fig: ForwardingFigure = {
    status: 'ok',
    runs: o.runs,
    downloadBytes: o.downloadBytes,
    uploadBytes: o.uploadBytes,
    parallelBytes: o.parallelBytes,
    idleConnections: o.idleConnections,
    latencyRequests: o.latencyRequests,
    rowProblems: {},
    wrk: { status: 'ok', seconds: o.wrkSeconds, threads: WRK_THREADS, connections: WRK_CONNECTIONS },
    samples: Object.fromEntries(ROWS.map((r) => [r, []])),
  }
  const wrk = findWrk()
  if ('reason' in wrk) {
    fig.wrk.status = 'skipped'
    fig.wrk.reason = wrk.reason
  }
  const wrkPath = 'path' in wrk ? wrk.path : null
  if (o.daemonSkip) for (const row of DAEMON_ROWS) fig.rowProblems[row] = `skipped: ${o.daemonSkip}`
  const sim = await SimHost.start({
    endpoints: [
      { url: `tcp://${BULK.hostname}:${BULK.port}`, backend: 'bulk' },
      { url: `tcp://${IDLE.hostname}:${IDLE.port}`, backend: 'tcp-echo' },
      { url: `http://${WEB.hostname}`, backend: 'http-echo' },
    ],
    direct: true,
  })
  const daemons: Partial<Record<DaemonRow, E2eDaemon>> = {}
  try {
    const direct = sim.info.direct!
    const fixed: Partial<Record<RowName, Target>> = {
      direct: { bulk: tcpOpener('127.0.0.1', direct.bulk), idle: null, httpUrl: `http://127.0.0.1:${direct.http}/`, pid: null, daemon: null },
      // wrk speaks no ConnRequest: the mTLS row has no HTTP figures
      mtls: { bulk: await mtlsOpener(sim), idle: null, httpUrl: null, pid: null, daemon: null },
    }
    for (let run = 1; run <= o.runs; run++) {
      const line: string[] = []
      for (const row of ROWS) {
        if (fig.rowProblems[row]) continue
        let target = fixed[row]
        let daemon: E2eDaemon | undefined
        try {
          if (!target) {
            const started = await startDaemonRow(row as DaemonRow, daemons[row as DaemonRow], sim)
            daemon = daemons[row as DaemonRow] = started.daemon
            target = started.target
          }
          const r = await measureRow(target, o, wrkPath)
          fig.samples[row]!.push(r)
          line.push(`${row} ${r.downloadMBps.toFixed(0)} MB/s down${r.keepAlive ? `, ${r.keepAlive.rps.toFixed(0)} req/s` : ''}`)
        } catch (e) {
          // the other rows stand; this one says what went wrong
          fig.rowProblems[row] = `error: ${(e as Error).message}${daemon ? `\n${daemon.logTail(10)}` : ''}`
          line.push(`${row}: ${(e as Error).message}`)
        } finally {
          if (daemon?.running) await daemon.stop('SIGTERM')
        }
      }
      o.log(`  run ${run}/${o.runs}: ${line.join('; ')}`)
    }
    fig.rows = Object.fromEntries(ROWS.map((row) => [row, fig.rowProblems[row] || fig.samples[row]!.length === 0 ? null : medianRow(fig.samples[row]!)])) as Record<RowName, RowFigures | null>
  } finally {
    try {
      for (const d of Object.values(daemons)) await d.dispose()
    } finally {
      await sim.stop()
    }
  }
  return fig
}

/** A row that failed (not one skipped for want of privilege). */
export const rowFailed = (f: ForwardingFigure, row: RowName): boolean => f.rowProblems[row]?.startsWith('error:') === true
