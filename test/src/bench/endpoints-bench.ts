import { execFileSync } from 'node:child_process'
import { readFileSync, statSync } from 'node:fs'
import { lookup } from 'node:dns/promises'
import type { EchoReply } from '@ngrokd/plugin-simulator'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { HOSTS_FILE, managedRecords, readHosts } from '../helpers/hosts-file.js'
import { httpRequest } from '../helpers/clients.js'
import type { NetDriverCase } from '../helpers/net-drivers.js'
import { LogTail } from './log-tail.js'
import { SimHost } from './sim-host-client.js'
import { median } from './stats.js'

/**
 * One start of the daemon, timed from spawn. The events come from the daemon's own log (pino `time`,
 * the same clock as the bench's `Date.now()`), so timing does not load the daemon: at 10,000 services a
 * control-API status call costs it tens of milliseconds of its main thread.
 */
export interface StartSample {
  /** Spawn → the first successful poll finished (every page fetched and reconciled, endpoint cache written). */
  firstPollMs: number
  /** Spawn → the end of the reconcile that put every address, name and listener in place (the first poll's, or on restart the restore from the endpoint cache). */
  allServingMs: number
  /** Spawn → /etc/hosts names every hostname, as the bench sees the file (read every 20 ms). */
  namesMs: number
  /** The daemon's own duration of the reconcile that brought them up. */
  reconcileMs: number
  /** The daemon's own duration of the first poll's reconcile (on restart: a diff that finds nothing to change). */
  pollReconcileMs: number
  /** The daemon's resident set once all were up, and its peak so far (/proc/<pid>/status VmRSS, VmHWM). */
  rssMiB: number
  peakRssMiB: number
  /** Its resident set once settled: {@link settledAfterMs} after the first poll's reconcile, the start's last. */
  settledRssMiB: number
  /** Pages of bound endpoints the daemon fetched during this start (simulator counters). */
  pageRequests: number
  /** Afterwards: services the control API reports serving, addresses on the link (`ip addr`), hostnames in the managed block. */
  serving: number
  kernelAddresses: number
  hostsNames: number
  /** Real requests by hostname (dns.lookup through /etc/hosts, HTTP through the tunnel) answered by the right backend. */
  sampleOk: number
  sampleTotal: number
}

/** Figure 2: from an API page of `endpoints` bound endpoints to all of them listening and resolvable, first start and restart. */
export interface EndpointsFigure {
  status: 'ok' | 'skipped' | 'error'
  reason?: string
  endpoints: number
  runs: number
  driver: string
  subnet: string
  /** Medians over the runs (counts: the median too; the samples hold every run). */
  first?: StartSample
  restart?: StartSample
  /** SIGTERM → exit of the first start: drain, unpublish and remove every address (median). */
  stopMs?: number
  samples: { first: StartSample[]; restart: StartSample[]; stopMs: number[] }
}

const NET: NetDriverCase = { driver: 'linux-netlink', subnet: '10.107.0.0/16', interfaceName: 'ngkbench0', kernelLink: true }
const PREFIX = 'svc-'
const DOMAIN = 'bench'
/** How often the bench reads the daemon's log and /etc/hosts while a start runs. */
const TICK_MS = 20
/**
 * When the settled RSS is read, after the start's last reconcile. The daemon (core's util/release-memory.ts)
 * collects all V8 can give back 2 s after it serves; after a reconcile of 1,000 services or more, 6 s after it,
 * and again every 6 s, three times more at most, while V8 keeps the young generation grown
 * (SETTLE_AFTER_RECONCILE_MS, SETTLE_RETRIES). A reading point, not a bound: nothing fails on it.
 */
export const settledAfterMs = (count: number): number => (count >= 1_000 ? 26_000 : 8_000)
/** Safety net for one start; not a performance bound. */
const START_SAFETY_MS = 600_000

const hostnameOf = (i: number): string => `${PREFIX}${String(i).padStart(5, '0')}.${DOMAIN}`

function procStatusMiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : NaN
}

/** IPv4 addresses on a link by iproute2 (independently of the driver); one line each, so 10,000 need a large buffer. */
function countLinkAddresses(ifname: string): number {
  const out = execFileSync('ip', ['-o', '-4', 'addr', 'show', 'dev', ifname], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
  return out.split('\n').filter((l) => /\sinet\s/.test(l)).length
}

async function pageRequests(sim: SimHost): Promise<number> {
  const stats = (await (await fetch(`${sim.info.apiUrl}/_admin/stats`)).json()) as { api: { byPath: Record<string, number> } }
  return Object.entries(stats.api.byPath).reduce((n, [path, count]) => (path.endsWith('/bound_endpoints') ? n + count : n), 0)
}

const RESTORED = /^restored \d+ services/
const RECONCILED = /^reconciled \d+ services/

/** Hostnames in the managed block, re-read only when the file changed size. */
function hostsWatcher(): () => number {
  let size = -1
  let names = 0
  return () => {
    const now = statSync(HOSTS_FILE).size
    if (now !== size) {
      size = now
      names = managedRecords(readHosts()).size
    }
    return names
  }
}

interface StartContext {
  daemon: E2eDaemon
  /** `Date.now()` just before the spawn. */
  spawnedAt: number
  /** Size of the log file before the spawn: this start's records follow it. */
  logOffset: number
  count: number
  sampleSize: number
  sim: SimHost
  pagesBefore: number
}

async function measureStart({ daemon, spawnedAt, logOffset, count, sampleSize, sim, pagesBefore }: StartContext): Promise<StartSample> {
  const pid = daemon.process.pid
  const tail = new LogTail(daemon.logFile, logOffset)
  const namesNow = hostsWatcher()
  let firstPollAt: number | undefined
  let servingAt: number | undefined
  let namesAt: number | undefined
  let reconcileMs: number | undefined
  let pollReconcileMs: number | undefined
  const deadline = Date.now() + START_SAFETY_MS
  try {
    while (firstPollAt === undefined || servingAt === undefined || namesAt === undefined) {
      if (Date.now() > deadline) throw new Error(`daemon did not serve ${count} endpoints within ${START_SAFETY_MS} ms\n${daemon.logTail(20)}`)
      if (!daemon.running) throw new Error(`daemon exited during start\n${daemon.logTail(30)}`)
      for (const r of tail.read()) {
        if (r.pid !== pid || typeof r.msg !== 'string') continue
        if (/^poll failed/.test(r.msg)) throw new Error(`daemon: ${r.msg}`)
        if (RESTORED.test(r.msg) && servingAt === undefined) {
          servingAt = r.time as number
          reconcileMs = r.report?.durationMs as number
        }
        if (RECONCILED.test(r.msg) && firstPollAt === undefined) {
          firstPollAt = r.time as number
          pollReconcileMs = r.report?.durationMs as number
          if (servingAt === undefined) {
            servingAt = firstPollAt
            reconcileMs = pollReconcileMs
          }
        }
      }
      if (namesAt === undefined && namesNow() === count) namesAt = Date.now()
      if (firstPollAt === undefined || servingAt === undefined || namesAt === undefined) await new Promise((r) => setTimeout(r, TICK_MS))
    }
  } finally {
    tail.close()
  }
  const rssMiB = procStatusMiB(pid, 'VmRSS')
  const peakRssMiB = procStatusMiB(pid, 'VmHWM')

  // now check from outside what the log claims: control API, kernel, hosts file, real requests
  const status = await daemon.status()
  if (status.lastPoll?.ok !== true) throw new Error(`control API: last poll ${JSON.stringify(status.lastPoll)}`)
  if (status.services?.serving !== count) throw new Error(`control API: ${status.services?.serving} of ${count} services serving (${status.services?.error} in error)`)
  const records = managedRecords(readHosts())
  const onLink = countLinkAddresses(NET.interfaceName!)
  if (onLink !== count) throw new Error(`${NET.interfaceName} holds ${onLink} addresses, expected ${count}`)
  let sampleOk = 0
  const failures: string[] = []
  const step = Math.max(1, Math.floor(count / sampleSize))
  for (let i = 0; i < count && i / step < sampleSize; i += step) {
    const hostname = hostnameOf(i)
    try {
      const { address } = await lookup(hostname, { family: 4 })
      if (address !== records.get(hostname)) throw new Error(`resolves to ${address}, hosts block says ${records.get(hostname)}`)
      const res = await httpRequest(`http://${hostname}/bench/${i}`)
      const echo = res.json<EchoReply>()
      if (res.status !== 200 || echo.host !== hostname) throw new Error(`answered ${res.status} for host ${echo.host}`)
      sampleOk++
    } catch (e) {
      failures.push(`${hostname}: ${(e as Error).message}`)
    }
  }
  const sampleTotal = sampleOk + failures.length
  if (failures.length > 0) throw new Error(`${failures.length}/${sampleTotal} sampled hostnames failed: ${failures.slice(0, 3).join('; ')}`)
  const settleFor = firstPollAt + settledAfterMs(count) - Date.now()
  if (settleFor > 0) await new Promise((r) => setTimeout(r, settleFor))
  const settledRssMiB = procStatusMiB(pid, 'VmRSS')
  return {
    firstPollMs: firstPollAt - spawnedAt,
    allServingMs: servingAt - spawnedAt,
    namesMs: namesAt - spawnedAt,
    reconcileMs: reconcileMs!,
    pollReconcileMs: pollReconcileMs!,
    rssMiB,
    peakRssMiB,
    settledRssMiB,
    pageRequests: (await pageRequests(sim)) - pagesBefore,
    serving: status.services.serving as number,
    kernelAddresses: onLink,
    hostsNames: records.size,
    sampleOk,
    sampleTotal,
  }
}

function medianSample(samples: StartSample[]): StartSample {
  const m = (pick: (s: StartSample) => number): number => median(samples.map(pick))
  return {
    firstPollMs: m((s) => s.firstPollMs),
    allServingMs: m((s) => s.allServingMs),
    namesMs: m((s) => s.namesMs),
    reconcileMs: m((s) => s.reconcileMs),
    pollReconcileMs: m((s) => s.pollReconcileMs),
    rssMiB: m((s) => s.rssMiB),
    peakRssMiB: m((s) => s.peakRssMiB),
    settledRssMiB: m((s) => s.settledRssMiB),
    pageRequests: m((s) => s.pageRequests),
    serving: m((s) => s.serving),
    kernelAddresses: m((s) => s.kernelAddresses),
    hostsNames: m((s) => s.hostsNames),
    sampleOk: Math.min(...samples.map((s) => s.sampleOk)),
    sampleTotal: Math.max(...samples.map((s) => s.sampleTotal)),
  }
}

export async function runEndpointsFigure({ count, sample, runs, log }: { count: number; sample: number; runs: number; log: (line: string) => void }): Promise<EndpointsFigure> {
  const fig: EndpointsFigure = { status: 'ok', endpoints: count, runs, driver: NET.driver, subnet: NET.subnet, samples: { first: [], restart: [], stopMs: [] } }
  const sim = await SimHost.start({ generate: { count, prefix: PREFIX, domain: DOMAIN } })
  log(`  simulator holds ${count} endpoints (set up in ${(sim.info.setupMs / 1000).toFixed(1)} s, not a figure)`)
  try {
    for (let run = 1; run <= runs; run++) {
      let daemon: E2eDaemon | undefined
      try {
        // a fresh state dir each run: the first start registers and has no endpoint cache
        const pages = await pageRequests(sim)
        const spawnedAt = Date.now()
        // debug: the log then also records the polls that change nothing (restart); ~1 line per listener
        daemon = E2eDaemon.start({ name: 'bench-endpoints', sim: sim.info, net: NET, pollInterval: '1h', logLevel: 'debug' })
        const first = await measureStart({ daemon, spawnedAt, logOffset: 0, count, sampleSize: sample, sim, pagesBefore: pages })
        const s0 = performance.now()
        const exit = await daemon.stop('SIGTERM')
        const stopMs = performance.now() - s0
        if (exit.code !== 0) throw new Error(`daemon exited with ${exit.code ?? exit.signal} on SIGTERM\n${daemon.logTail(20)}`)
        const restartContext = { daemon, logOffset: LogTail.sizeOf(daemon.logFile), count, sampleSize: sample, sim, pagesBefore: await pageRequests(sim) }
        const restartedAt = Date.now()
        daemon.restart()
        const restart = await measureStart({ ...restartContext, spawnedAt: restartedAt })
        fig.samples.first.push(first)
        fig.samples.restart.push(restart)
        fig.samples.stopMs.push(stopMs)
        log(
          `  run ${run}/${runs}: first start: poll ${first.firstPollMs.toFixed(0)} ms, all serving ${first.allServingMs.toFixed(0)} ms, RSS ${first.rssMiB.toFixed(0)} MiB, settled ${first.settledRssMiB.toFixed(0)}; ` +
            `restart: all serving ${restart.allServingMs.toFixed(0)} ms, poll ${restart.firstPollMs.toFixed(0)} ms, settled RSS ${restart.settledRssMiB.toFixed(0)} MiB; stop ${stopMs.toFixed(0)} ms`,
        )
      } finally {
        await daemon?.dispose()
      }
    }
    fig.first = medianSample(fig.samples.first)
    fig.restart = medianSample(fig.samples.restart)
    fig.stopMs = median(fig.samples.stopMs)
  } finally {
    await sim.stop()
  }
  return fig
}
