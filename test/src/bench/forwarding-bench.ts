import { lookup } from 'node:dns/promises'
import { generateKeyAndCsr, IngressDialer, NgrokApiClient, silentLogger } from '@ngrokd/core'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { HOSTS_FILE, managedRecords, readHosts } from '../helpers/hosts-file.js'
import type { NetDriverCase } from '../helpers/net-drivers.js'
import { GO_PEER_API, GoPeer, peerCommit } from './go-peer.js'
import { processCpuSeconds, processMemoryMiB } from './proc-stats.js'
import { SimHost } from './sim-host-client.js'
import { bulkExchange, bulkUpload, openIdle, parallelDownload, tcpOpener, type OpenStream } from './stream-probes.js'
import { median, percentile } from './stats.js'
import { findWrk, runWrk, WRK_CONNECTIONS, WRK_THREADS } from './wrk.js'

/** The table's rows: two daemon-free references, then the daemon by `forwarder.workers`, then the Go daemon (`--peer`). */
export const ROWS = ['direct', 'mtls', 'workers0', 'workers1', 'workers2', 'workersAuto', 'goPeer'] as const
export type RowName = (typeof ROWS)[number]
export type DaemonRow = Exclude<RowName, 'direct' | 'mtls' | 'goPeer'>
export const DAEMON_ROWS: readonly DaemonRow[] = ['workers0', 'workers1', 'workers2', 'workersAuto']
/** ngrokd's row with the default configuration: the one set beside the Go daemon. */
export const DEFAULT_ROW: DaemonRow = 'workersAuto'
/** The rows with start-to-first-answer figures: ngrokd with its defaults, and the Go daemon. */
const START_ROWS: readonly RowName[] = [DEFAULT_ROW, 'goPeer']

/** `forwarder.workers` of each daemon row. */
export const ROW_WORKERS: Record<DaemonRow, number | 'auto'> = { workers0: 0, workers1: 1, workers2: 2, workersAuto: 'auto' }

export const ROW_LABELS: Record<RowName, string> = {
  direct: 'direct TCP to the backend (no tunnel)',
  mtls: 'direct mTLS client to the ingress (the limit)',
  workers0: 'ngrokd, workers: 0 (in-thread)',
  workers1: 'ngrokd, workers: 1',
  workers2: 'ngrokd, workers: 2',
  workersAuto: 'ngrokd, workers: auto (default)',
  goPeer: 'the original Go daemon (ishanj12/ngrokd, unmodified)',
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
  /** Daemon VmRSS idle: {@link IDLE_SETTLE_MS} after it serves, before the row's first connection. */
  readyRssMiB: number | null
  /** Daemon VmHWM after the row's run, and VmRSS with `idleConnections` idle open connections. */
  peakRssMiB: number | null
  idleRssMiB: number | null
  /**
   * Spawn → the first `GET 1` answered through the bulk endpoint (its address read from the hosts file the
   * daemon writes, probed every few ms): with an empty state dir (it registers), then again with the state it
   * saved. Only for ngrokd with its defaults and the Go daemon; a process of their own, before the row's.
   */
  startFreshMs: number | null
  startSavedMs: number | null
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
  /** The Go daemon measured beside ngrokd (`--peer`): its binary and the commit it was built from; null without. */
  peer: { path: string; commit: string | null } | null
  /** `ingress.predial` of the ngrokd rows (`--predial`; 0, the default, when absent). */
  predial?: number
  samples: Partial<Record<RowName, RowFigures[]>>
}

const NET: NetDriverCase = { driver: 'linux-netlink', subnet: '10.107.0.0/16', interfaceName: 'ngkbench0', kernelLink: true }
/** The Go daemon's link and subnet: its own, so no address of one is ever the other's. */
const PEER_NET = { interfaceName: 'ngkpeer0', subnet: '10.108.0.0/16' }
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

/**
 * Waits until `open()` (a daemon's open connections) is at most `idle`: the next figure does not pay for the
 * last one's closing. `open()` undefined = cannot tell, go on.
 */
async function settleConnections(what: string, open: () => Promise<number | undefined>, idle: number, log: (line: string) => void): Promise<void> {
  const deadline = Date.now() + SETTLE_SAFETY_MS
  let n: number | undefined
  while (Date.now() < deadline) {
    n = await open()
    if (n === undefined || n <= idle) return
    await new Promise((r) => setTimeout(r, 50))
  }
  log(`  ${what} still holds ${n} open connection(s) (${idle} when idle) ${SETTLE_SAFETY_MS} ms after the last client closed`)
}

/** ngrokd's own count of open connections (control API). */
const ngrokdSettle = (daemon: E2eDaemon, log: (line: string) => void) => () =>
  settleConnections('ngrokd', () => daemon.status().then((st) => st.openConnections as number, () => undefined), 0, log)

/** The Go daemon has no such count: its sockets in /proc, back to what it held when it started serving. */
const peerSettle = (peer: GoPeer, log: (line: string) => void) => {
  const idle = peer.openSockets()
  return () => settleConnections('the Go daemon', async () => (peer.running ? peer.openSockets() : undefined), idle, log)
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
  /** The built Go daemon for its row (`--peer`); undefined = no such row. */
  peer: string | undefined
  /** `ingress.predial` for every ngrokd daemon (`--predial`); 0 = its default. */
  predial: number
  log: (line: string) => void
}

/** How one row is reached: openers for the bulk and idle endpoints, the HTTP URL for wrk, the daemon's pid. */
interface Target {
  bulk: OpenStream
  idle: OpenStream | null
  httpUrl: string | null
  pid: number | null
  /** Waits until the daemon has closed what the last figure opened; null without a daemon. */
  settle: (() => Promise<void>) | null
}

/** CPU-seconds the daemon used while `work` ran; null without a daemon. */
async function cpuDuring<T>(pid: number | null, work: () => Promise<T> | T): Promise<{ value: T; cpuSec: number | null }> {
  const before = pid === null ? 0 : processCpuSeconds(pid)
  const value = await work()
  return { value, cpuSec: pid === null ? null : processCpuSeconds(pid) - before }
}

/**
 * How long a daemon that serves is left alone before its idle RSS is read: ngrokd returns its start's
 * memory (young generation, C heap) just after it reports serving and again 2 s later
 * (RELEASE_AFTER_START_MS), so a read at once caught it before that about half the time (97 → 78 → 71
 * MiB, measured). The same wait for every row.
 */
const IDLE_SETTLE_MS = 3_000

async function measureRow(t: Target, o: ForwardingRunOptions, wrkPath: string | null): Promise<RowFigures> {
  const settle = async () => {
    if (t.settle) await t.settle()
  }
  let readyRssMiB: number | null = null
  if (t.pid !== null) {
    await new Promise((r) => setTimeout(r, IDLE_SETTLE_MS))
    readyRssMiB = processMemoryMiB(t.pid).rssMiB
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
    readyRssMiB,
    peakRssMiB: t.pid === null ? null : processMemoryMiB(t.pid).peakRssMiB,
    idleRssMiB,
    startFreshMs: null,
    startSavedMs: null,
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
    readyRssMiB: m((x) => x.readyRssMiB),
    peakRssMiB: m((x) => x.peakRssMiB),
    idleRssMiB: m((x) => x.idleRssMiB),
    startFreshMs: m((x) => x.startFreshMs),
    startSavedMs: m((x) => x.startSavedMs),
  }
}

/** Starts a daemon row's daemon (a fresh process per run, so its peak RSS is this run's) and finds its listeners. */
/** Config every ngrokd daemon of the figure gets: `ingress.predial` when `--predial` asks for it. */
const ingressConfig = (predial: number): Record<string, Record<string, unknown>> => (predial > 0 ? { ingress: { predial } } : {})

async function startDaemonRow(row: DaemonRow, daemon: E2eDaemon | undefined, sim: SimHost, predial: number, log: (line: string) => void): Promise<{ daemon: E2eDaemon; target: Target }> {
  let d = daemon
  if (d) d.restart()
  else
    d = E2eDaemon.start({
      name: `bench-${row}`,
      sim: sim.info,
      net: NET,
      pollInterval: '1h',
      logLevel: 'warn',
      extraConfig: { forwarder: { workers: ROW_WORKERS[row] }, ...ingressConfig(predial) },
    })
  await d.waitReady((s) => s.services?.serving === 3)
  // by hostname through /etc/hosts once; the timed connections then use the address (as the direct paths do)
  const bulk = await lookup(BULK.hostname, { family: 4 })
  const idle = await lookup(IDLE.hostname, { family: 4 })
  const pid = d.process.child.pid
  if (pid === undefined) throw new Error(`${row}: the daemon has no pid`)
  return { daemon: d, target: { bulk: tcpOpener(bulk.address, BULK.port), idle: tcpOpener(idle.address, IDLE.port), httpUrl: `http://${WEB.hostname}/`, pid, settle: ngrokdSettle(d, log) } }
}

/** Starts the Go daemon (a fresh process and state dir) and reads its listeners' addresses from the hosts file it writes. */
async function startPeerRow(bin: string, sim: SimHost, log: (line: string) => void): Promise<{ peer: GoPeer; target: Target }> {
  const peer = GoPeer.start({ bin, sim: sim.info, ...PEER_NET })
  try {
    const records = await peer.waitServing([BULK.hostname, IDLE.hostname, WEB.hostname])
    const at = (h: string) => records.get(h)!
    // wrk by address: the Go daemon's names are in its own hosts file, not the resolver's (it rewrites the Host header anyway)
    return { peer, target: { bulk: tcpOpener(at(BULK.hostname), BULK.port), idle: tcpOpener(at(IDLE.hostname), IDLE.port), httpUrl: `http://${at(WEB.hostname)}/`, pid: peer.pid, settle: peerSettle(peer, log) } }
  } catch (e) {
    await peer.dispose()
    throw e
  }
}

/** Safety net for a start to answer; not a figure. */
const START_SAFETY_MS = 60_000

/**
 * Milliseconds from `startedAt` (just before the spawn) to the end of the first `GET 1` answered through the
 * bulk endpoint at the address `address()` reads from the daemon's hosts file, probing every few ms.
 */
async function firstAnswerMs(startedAt: number, address: () => string | undefined, alive: () => boolean, what: string): Promise<number> {
  const deadline = startedAt + START_SAFETY_MS
  let last = 'no address in its hosts file yet'
  while (performance.now() < deadline) {
    const at = address()
    if (at) {
      try {
        await bulkExchange(tcpOpener(at, BULK.port), 1)
        return performance.now() - startedAt
      } catch (e) {
        last = (e as Error).message // not listening or not forwarding yet
      }
    }
    if (!alive()) throw new Error(`${what} exited before its first answer (${last})`)
    await new Promise((r) => setTimeout(r, 2))
  }
  throw new Error(`${what}: no answer through ${BULK.hostname} within ${START_SAFETY_MS} ms (${last})`)
}

/** Start to first answer of ngrokd with its defaults: an empty state dir, then a restart on what it saved. */
async function ngrokdStarts(sim: SimHost, predial: number): Promise<{ freshMs: number; savedMs: number }> {
  const address = () => {
    try {
      return managedRecords(readHosts(HOSTS_FILE)).get(BULK.hostname)
    } catch {
      return undefined // being rewritten
    }
  }
  let t0 = performance.now()
  const d = E2eDaemon.start({ name: 'bench-start', sim: sim.info, net: NET, pollInterval: '1h', logLevel: 'warn', extraConfig: ingressConfig(predial) })
  try {
    const freshMs = await firstAnswerMs(t0, address, () => d.running, 'ngrokd')
    await d.waitReady((s) => s.services?.serving === 3) // everything saved before the restart
    await d.stop('SIGTERM')
    t0 = performance.now()
    d.restart()
    const savedMs = await firstAnswerMs(t0, address, () => d.running, 'ngrokd (restart)')
    return { freshMs, savedMs }
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${d.logTail(10)}`)
  } finally {
    await d.dispose()
  }
}

/** The same for the Go daemon: registers with an empty state dir, then restarts on its saved registration. */
async function peerStarts(bin: string, sim: SimHost): Promise<{ freshMs: number; savedMs: number }> {
  const peer = GoPeer.start({ bin, sim: sim.info, ...PEER_NET })
  const address = () => peer.records().get(BULK.hostname)
  try {
    const freshMs = await firstAnswerMs(peer.startedAt, address, () => peer.running, 'the Go daemon')
    await peer.waitServing([BULK.hostname, IDLE.hostname, WEB.hostname])
    await peer.stop()
    peer.restart()
    const savedMs = await firstAnswerMs(peer.startedAt, address, () => peer.running, 'the Go daemon (restart)')
    return { freshMs, savedMs }
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${peer.logTail(10)}`)
  } finally {
    await peer.dispose()
  }
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
    peer: o.peer ? { path: o.peer, commit: peerCommit(o.peer) } : null,
    ...(o.predial > 0 ? { predial: o.predial } : {}),
    samples: Object.fromEntries(ROWS.map((r) => [r, []])),
  }
  const wrk = findWrk()
  if ('reason' in wrk) {
    fig.wrk.status = 'skipped'
    fig.wrk.reason = wrk.reason
  }
  const wrkPath = 'path' in wrk ? wrk.path : null
  if (!o.peer) fig.rowProblems.goPeer = 'skipped: not asked for (--peer PATH)'
  if (o.daemonSkip) for (const row of [...DAEMON_ROWS, 'goPeer'] as const) fig.rowProblems[row] = `skipped: ${o.daemonSkip}`
  const sim = await SimHost.start({
    endpoints: [
      { url: `tcp://${BULK.hostname}:${BULK.port}`, backend: 'bulk' },
      { url: `tcp://${IDLE.hostname}:${IDLE.port}`, backend: 'tcp-echo' },
      { url: `http://${WEB.hostname}`, backend: 'http-echo' },
    ],
    direct: true,
    ...(o.peer && !o.daemonSkip ? { apiTls: GO_PEER_API } : {}),
  })
  const daemons: Partial<Record<DaemonRow, E2eDaemon>> = {}
  try {
    const direct = sim.info.direct!
    const fixed: Partial<Record<RowName, Target>> = {
      direct: { bulk: tcpOpener('127.0.0.1', direct.bulk), idle: null, httpUrl: `http://127.0.0.1:${direct.http}/`, pid: null, settle: null },
      // wrk speaks no ConnRequest: the mTLS row has no HTTP figures
      mtls: { bulk: await mtlsOpener(sim), idle: null, httpUrl: null, pid: null, settle: null },
    }
    for (let run = 1; run <= o.runs; run++) {
      const line: string[] = []
      for (const row of ROWS) {
        if (fig.rowProblems[row]) continue
        let target = fixed[row]
        let daemon: E2eDaemon | undefined
        let peer: GoPeer | undefined
        try {
          const starts = !START_ROWS.includes(row) ? undefined : row === 'goPeer' ? await peerStarts(o.peer!, sim) : await ngrokdStarts(sim, o.predial)
          if (row === 'goPeer') {
            const started = await startPeerRow(o.peer!, sim, o.log)
            peer = started.peer
            target = started.target
          } else if (!target) {
            const started = await startDaemonRow(row as DaemonRow, daemons[row as DaemonRow], sim, o.predial, o.log)
            daemon = daemons[row as DaemonRow] = started.daemon
            target = started.target
          }
          const r = { ...(await measureRow(target!, o, wrkPath)), startFreshMs: starts?.freshMs ?? null, startSavedMs: starts?.savedMs ?? null }
          fig.samples[row]!.push(r)
          line.push(`${row} ${r.downloadMBps.toFixed(0)} MB/s down${r.keepAlive ? `, ${r.keepAlive.rps.toFixed(0)} req/s` : ''}`)
        } catch (e) {
          // the other rows stand; this one says what went wrong
          fig.rowProblems[row] = `error: ${(e as Error).message}${daemon ? `\n${daemon.logTail(10)}` : peer ? `\n${peer.logTail(10)}` : ''}`
          line.push(`${row}: ${(e as Error).message}`)
        } finally {
          if (daemon?.running) await daemon.stop('SIGTERM')
          await peer?.dispose()
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
