import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { lookup } from 'node:dns/promises'
import type { EchoReply } from '@ngrokd/plugins/simulator'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { managedRecords, readHosts } from '../helpers/hosts-file.js'
import { httpRequest } from '../helpers/clients.js'
import type { NetDriverCase } from '../helpers/net-drivers.js'
import { SimHost } from './sim-host-client.js'
import { median } from './stats.js'

/** One start of the daemon, timed from spawn. */
export interface StartSample {
  /** Spawn → the control API reports the first successful poll. */
  firstPollMs: number
  /** Spawn → the control API reports every service serving and /etc/hosts names every hostname. */
  allServingMs: number
  /** The daemon's own duration of the reconcile that brought them up (a poll's, or the restore from its endpoint cache on restart). */
  reconcileMs: number | null
  /** The daemon's resident set at that point, and its peak so far (/proc/<pid>/status VmRSS, VmHWM). */
  rssMiB: number
  peakRssMiB: number
  /** Pages of bound endpoints the daemon fetched during this start (simulator counters). */
  pageRequests: number
  /** Addresses on the link (`ip -j addr`), hostnames in the managed block. */
  kernelAddresses: number
  hostsNames: number
  /** Real requests by hostname (dns.lookup through /etc/hosts, HTTP through the tunnel) that came back from the right endpoint. */
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
/** Control API polling period while timing: the resolution of the start figures. */
const TICK_MS = 20
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

async function measureStart(daemon: E2eDaemon, t0: number, count: number, sampleSize: number, sim: SimHost, pagesBefore: number): Promise<StartSample> {
  let firstPollMs: number | undefined
  let allServingMs: number | undefined
  let status: Record<string, any> | undefined
  const deadline = Date.now() + START_SAFETY_MS
  while (firstPollMs === undefined || allServingMs === undefined) {
    if (Date.now() > deadline) throw new Error(`daemon did not serve ${count} endpoints within ${START_SAFETY_MS} ms; last status ${JSON.stringify(status)}\n${daemon.logTail(20)}`)
    if (!daemon.running) throw new Error(`daemon exited during start\n${daemon.logTail(30)}`)
    try {
      status = await daemon.status()
    } catch {
      status = undefined // control socket not up yet
    }
    const now = performance.now() - t0
    if (status?.lastPoll?.ok === true && firstPollMs === undefined) firstPollMs = now
    if (status?.lastPoll && status.lastPoll.ok === false) throw new Error(`poll failed: ${JSON.stringify(status.lastPoll.error)}`)
    if (allServingMs === undefined && status?.services?.serving === count && managedRecords(readHosts()).size === count) allServingMs = now
    if (firstPollMs === undefined || allServingMs === undefined) await new Promise((r) => setTimeout(r, TICK_MS))
  }
  const pid = daemon.process.pid
  const rssMiB = procStatusMiB(pid, 'VmRSS')
  const peakRssMiB = procStatusMiB(pid, 'VmHWM')
  if (status?.services?.error) throw new Error(`${status.services.error} services in error`)

  // the daemon's own reconcile time: the restore from its endpoint cache when it had one, else the first poll's
  const restored = daemon
    .logRecords()
    .filter((r) => r.pid === pid && typeof r.msg === 'string' && /^restored \d+ services/.test(r.msg))
    .pop()
  const reconcileMs = (restored?.report?.durationMs ?? status?.lastPoll?.report?.durationMs ?? null) as number | null

  const records = managedRecords(readHosts())
  const onLink = countLinkAddresses(NET.interfaceName!)
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
  if (onLink !== count) throw new Error(`${NET.interfaceName} holds ${onLink} addresses, expected ${count}`)
  return {
    firstPollMs,
    allServingMs,
    reconcileMs,
    rssMiB,
    peakRssMiB,
    pageRequests: (await pageRequests(sim)) - pagesBefore,
    kernelAddresses: onLink,
    hostsNames: records.size,
    sampleOk,
    sampleTotal,
  }
}

function medianSample(samples: StartSample[]): StartSample {
  const m = (pick: (s: StartSample) => number | null): number => median(samples.map(pick).filter((v): v is number => v !== null))
  return {
    firstPollMs: m((s) => s.firstPollMs),
    allServingMs: m((s) => s.allServingMs),
    reconcileMs: samples.some((s) => s.reconcileMs !== null) ? m((s) => s.reconcileMs) : null,
    rssMiB: m((s) => s.rssMiB),
    peakRssMiB: m((s) => s.peakRssMiB),
    pageRequests: m((s) => s.pageRequests),
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
        let pages = await pageRequests(sim)
        let t0 = performance.now()
        daemon = E2eDaemon.start({ name: 'bench-endpoints', sim: sim.info, net: NET, pollInterval: '1h', logLevel: 'info' })
        const first = await measureStart(daemon, t0, count, sample, sim, pages)
        const s0 = performance.now()
        const exit = await daemon.stop('SIGTERM')
        const stopMs = performance.now() - s0
        if (exit.code !== 0) throw new Error(`daemon exited with ${exit.code ?? exit.signal} on SIGTERM\n${daemon.logTail(20)}`)
        pages = await pageRequests(sim)
        t0 = performance.now()
        daemon.restart()
        const restart = await measureStart(daemon, t0, count, sample, sim, pages)
        fig.samples.first.push(first)
        fig.samples.restart.push(restart)
        fig.samples.stopMs.push(stopMs)
        log(
          `  run ${run}/${runs}: first start: poll ${first.firstPollMs.toFixed(0)} ms, all serving ${first.allServingMs.toFixed(0)} ms, RSS ${first.rssMiB.toFixed(0)} MiB; ` +
            `restart: all serving ${restart.allServingMs.toFixed(0)} ms, poll ${restart.firstPollMs.toFixed(0)} ms; stop ${stopMs.toFixed(0)} ms`,
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
