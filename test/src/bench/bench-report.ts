import type { AddressesFigure } from './address-bench.js'
import { settledAfterMs, type EndpointsFigure, type StartSample } from './endpoints-bench.js'
import { DAEMON_ROWS, DEFAULT_ROW, ROW_LABELS, ROWS, type ForwardingFigure, type RowFigures, type RowName } from './forwarding-bench.js'
import type { MachineInfo } from './machine-info.js'
import { ratio } from './stats.js'

/** What one `npm run bench` produced: bench-results/latest.json. */
export interface BenchResults {
  schema: 'ngrokd-bench/1'
  generatedAt: string
  mode: 'full' | 'reduced' | 'quick'
  runs: number
  machine: MachineInfo
  /** `namespace` (a private network + mount namespace of its own, as root) or why not. */
  environment: string
  figures: { addresses: AddressesFigure; endpoints: EndpointsFigure; forwarding: ForwardingFigure }
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US')
const ms = (n: number | null | undefined): string => (n == null ? '—' : n >= 100 ? `${int(n)} ms` : `${n.toFixed(n >= 10 ? 1 : 2)} ms`)
const times = (r: number | null | undefined): string => (r == null ? '—' : `${r.toFixed(2)}×`)
const mib = (n: number): string => `${n.toFixed(0)} MiB`

function table(header: string[], rows: string[][], align: Array<'l' | 'r'>): string {
  const all = [header, ...rows]
  const width = header.map((_, c) => Math.max(3, ...all.map((r) => (r[c] ?? '').length)))
  const line = (r: string[]) => `| ${r.map((cell, c) => (align[c] === 'r' ? cell.padStart(width[c]!) : cell.padEnd(width[c]!))).join(' | ')} |`
  const rule = `|${width.map((w, c) => (align[c] === 'r' ? `${'-'.repeat(w + 1)}:` : `${'-'.repeat(w + 2)}`)).join('|')}|`
  return [line(header), rule, ...rows.map(line)].join('\n')
}

const notRun = (f: { status: string; reason?: string }): string | undefined => (f.status === 'ok' ? undefined : `**${f.status}**: ${f.reason ?? ''}`)

function addressesSection(f: AddressesFigure): string {
  const title = `### 1. ${int(f.count)} address additions and removals in one reconcile (linux-netlink vs iproute2 \`ip -batch\`)`
  const skipped = notRun(f)
  if (skipped || !f.ngrokd || !f.ip) return `${title}\n\n${skipped ?? '**error**: no result'}`
  const n = f.ngrokd
  const i = f.ip
  const ipCalls = i.sendmsg === null ? 'not counted (no strace)' : `${int(i.sendmsg)} sendmsg, ${int(i.recvmsg!)} recvmsg`
  return [
    title,
    '',
    table(
      ['', 'ngrokd linux-netlink (batched)', `ip -batch (${i.version})`, 'ip / ngrokd'],
      [
        [`add ${int(f.count)} /32 on one link`, ms(n.addMs), ms(i.addMs), times(f.ratio?.add)],
        [`remove ${int(f.count)}`, ms(n.removeMs), ms(i.removeMs), times(f.ratio?.remove)],
        ['netlink sends, add + remove', `${int(n.sends)} sends (${int(n.waits)} waits)`, ipCalls, '—'],
        ['link kind', n.kind, i.kind, ''],
      ],
      ['l', 'r', 'r', 'r'],
    ),
    '',
    `Subnet ${f.subnet}; median of ${f.runs} run(s), the two side by side in each run. \`ip -batch\` times include starting the \`ip\` process; its calls are counted once, untimed, with \`strace -c\` (one request and one ACK per line).`,
  ].join('\n')
}

function endpointsSection(f: EndpointsFigure): string {
  const title = `### 2. From an API page of ${int(f.endpoints)} endpoints (${int(Math.ceil(f.endpoints / 100))} pages) to all of them listening and resolvable (${f.driver}, ${f.subnet})`
  const skipped = notRun(f)
  if (skipped || !f.first || !f.restart) return `${title}\n\n${skipped ?? '**error**: no result'}`
  const row = (label: string, pick: (s: StartSample) => string): string[] => [label, pick(f.first!), pick(f.restart!)]
  return [
    title,
    '',
    table(
      ['', 'first start (registers, no cache)', 'restart (same state dir)'],
      [
        row('spawn → first poll done (all pages fetched and reconciled)', (s) => ms(s.firstPollMs)),
        row(`spawn → all ${int(f.endpoints)} addresses, names and listeners in place`, (s) => ms(s.allServingMs)),
        row(`spawn → all ${int(f.endpoints)} names in /etc/hosts (seen by the bench)`, (s) => ms(s.namesMs)),
        row('the reconcile that put them in place (daemon\'s own time)', (s) => ms(s.reconcileMs)),
        row('the first poll\'s reconcile (daemon\'s own time)', (s) => ms(s.pollReconcileMs)),
        row('bound-endpoint page requests', (s) => int(s.pageRequests)),
        row('serving (control API) / addresses on the link / names in /etc/hosts', (s) => `${int(s.serving)} / ${int(s.kernelAddresses)} / ${int(s.hostsNames)}`),
        row('sampled hostnames answering (dns.lookup + HTTP)', (s) => `${s.sampleOk}/${s.sampleTotal}`),
        row('daemon RSS at that point (peak)', (s) => `${mib(s.rssMiB)} (${mib(s.peakRssMiB)})`),
        row(`daemon RSS settled, ${settledAfterMs(f.endpoints) / 1000} s after the first poll's reconcile`, (s) => mib(s.settledRssMiB)),
      ],
      ['l', 'r', 'r'],
    ),
    '',
    `Clean stop of the first start (SIGTERM → exit: drain, unpublish, remove ${int(f.endpoints)} addresses): ${ms(f.stopMs)}. ` +
      `Median of ${f.runs} run(s). The times come from the daemon's log (its own clock, read every 20 ms), then are checked from outside through the control API, \`ip addr\`, /etc/hosts and real requests. ` +
      'On restart the daemon serves its cached endpoint list before it re-registers and polls.',
  ].join('\n')
}

/** A figure of the forwarding table: how to read it from a row, how to print it, the Go daemon's bar. */
interface Metric {
  label: string
  pick: (r: RowFigures) => number | null | undefined
  fmt: (n: number) => string
  /** The bar quoted from another machine, shown when the Go daemon is not measured here. */
  go?: string
  /** Which way is better; set on the figures compared with the Go daemon. */
  better?: 'higher' | 'lower'
}

const fixed = (digits: number) => (n: number) => n.toFixed(digits)
const msCell = (n: number) => ms(n)

function forwardingMetrics(f: ForwardingFigure): Metric[] {
  const MiB = 1024 * 1024
  const size = (b: number) => (b >= 1024 * MiB ? `${int(b / (1024 * MiB))} GiB` : `${int(b / MiB)} MiB`)
  return [
    { label: 'start to first answer, empty state dir (registers)', pick: (r) => r.startFreshMs, fmt: msCell, better: 'lower' },
    { label: 'start to first answer, saved state', pick: (r) => r.startSavedMs, fmt: msCell, better: 'lower' },
    { label: `download ${size(f.downloadBytes)}, one connection (MB/s)`, pick: (r) => r.downloadMBps, fmt: int, go: '~790', better: 'higher' },
    { label: `upload ${size(f.uploadBytes)}, one connection (MB/s)`, pick: (r) => r.uploadMBps, fmt: int, better: 'higher' },
    { label: `8 parallel downloads, ${size(f.parallelBytes)} in all (MB/s)`, pick: (r) => r.parallel8MBps, fmt: int },
    { label: `64 parallel downloads, ${size(f.parallelBytes)} in all (MB/s)`, pick: (r) => r.parallel64MBps, fmt: int },
    { label: 'keep-alive HTTP (req/s)', pick: (r) => r.keepAlive?.rps, fmt: int, go: '~19,800', better: 'higher' },
    { label: 'keep-alive HTTP p50', pick: (r) => r.keepAlive?.p50Ms, fmt: msCell },
    { label: 'keep-alive HTTP p99', pick: (r) => r.keepAlive?.p99Ms, fmt: msCell },
    { label: 'new connection per request (req/s)', pick: (r) => r.newConnection?.rps, fmt: int, better: 'higher' },
    { label: 'new connection per request p50', pick: (r) => r.newConnection?.p50Ms, fmt: msCell },
    { label: 'new connection per request p99', pick: (r) => r.newConnection?.p99Ms, fmt: msCell },
    { label: 'fresh-connection TTFB p50', pick: (r) => r.ttfbP50Ms, fmt: msCell, go: '2.7 ms (direct 0.18 ms)', better: 'lower' },
    { label: 'fresh-connection TTFB p99', pick: (r) => r.ttfbP99Ms, fmt: msCell },
    { label: 'daemon CPU-s per GiB down', pick: (r) => r.cpuSecPerGiBDown, fmt: fixed(2), go: '0.82', better: 'lower' },
    { label: 'daemon CPU-s per GiB up', pick: (r) => r.cpuSecPerGiBUp, fmt: fixed(2), go: '1.44', better: 'lower' },
    { label: 'daemon CPU-µs per keep-alive request', pick: (r) => r.keepAlive?.cpuUsPerRequest, fmt: int, go: '29', better: 'lower' },
    { label: 'daemon CPU-µs per new-connection request', pick: (r) => r.newConnection?.cpuUsPerRequest, fmt: int, go: '~950', better: 'lower' },
    { label: 'daemon RSS idle, 3 s after it serves (MiB)', pick: (r) => r.readyRssMiB, fmt: int, better: 'lower' },
    { label: 'daemon peak RSS (VmHWM, MiB)', pick: (r) => r.peakRssMiB, fmt: int, go: '~23 MB', better: 'lower' },
    { label: `daemon RSS with ${int(f.idleConnections)} idle connections (MiB)`, pick: (r) => r.idleRssMiB, fmt: int, better: 'lower' },
  ]
}

const SHORT: Record<RowName, string> = { direct: 'direct', mtls: 'mTLS client', workers0: 'workers 0', workers1: 'workers 1', workers2: 'workers 2', workersAuto: 'workers auto', goPeer: 'Go daemon' }

/** ngrokd with its defaults over the Go daemon, each figure turned so that above 1 is ngrokd better. */
function peerSection(f: ForwardingFigure, metrics: Metric[], value: (row: RowName, m: Metric) => number | null): string {
  const compared = metrics.filter((m) => m.better)
  const cell = (row: RowName, m: Metric) => {
    const v = value(row, m)
    return v === null ? (f.rows?.[row] ? '—' : f.rowProblems[row]?.startsWith('error') ? 'error' : 'skipped') : m.fmt(v)
  }
  const better = (m: Metric) => {
    const r = ratio(value(DEFAULT_ROW, m), value('goPeer', m))
    return times(r === null ? null : m.better === 'higher' ? r : 1 / r)
  }
  const commit = f.peer?.commit ? ` at ${f.peer.commit.slice(0, 12)}` : ''
  return [
    `ngrokd beside the Go daemon (ishanj12/ngrokd${commit}, unmodified), same run, same simulator, same clients; ratio above 1 = ngrokd better:`,
    '',
    table(
      ['figure', 'Go daemon', `ngrokd (${SHORT[DEFAULT_ROW]}, ${f.predial ? `ingress.predial ${f.predial}` : 'defaults'})`, 'ngrokd vs Go'],
      compared.map((m) => [m.label, cell('goPeer', m), cell(DEFAULT_ROW, m), better(m)]),
      ['l', 'r', 'r', 'r'],
    ),
  ].join('\n')
}

function forwardingSection(f: ForwardingFigure): string {
  const MiB = 1024 * 1024
  const title = `### 3. Forwarding on loopback: direct, the mTLS limit and ngrokd by \`forwarder.workers\`${f.peer ? ', beside the Go daemon' : ''} (${int(f.downloadBytes / MiB)} MiB download, ${int(f.uploadBytes / MiB)} MiB upload)`
  const skipped = notRun(f)
  if (skipped || !f.rows) return `${title}\n\n${skipped ?? '**error**: no result'}`
  const rows = f.rows
  const metrics = forwardingMetrics(f)
  const value = (row: RowName, m: Metric): number | null => {
    const r = rows[row]
    const v = r ? m.pick(r) : null
    return v == null ? null : v
  }
  const cell = (row: RowName, m: Metric): string => {
    if (!rows[row]) return f.rowProblems[row]?.startsWith('error') ? 'error' : 'skipped'
    const v = value(row, m)
    return v === null ? '—' : m.fmt(v)
  }
  // the Go daemon measured here, or else the bar quoted from another machine
  const shown = ROWS.filter((r) => r !== 'goPeer' || f.peer)
  const quoted = f.peer ? [] : ['Go daemon (another machine)']
  const main = table(
    ['figure', ...shown.map((r) => SHORT[r]), ...quoted],
    metrics.map((m) => [m.label, ...shown.map((r) => cell(r, m)), ...(f.peer ? [] : [m.go ?? ''])]),
    ['l', ...shown.map(() => 'r' as const), ...quoted.map(() => 'r' as const)],
  )
  const ratioCell = (row: RowName, ref: RowName, m: Metric): string => times(ratio(value(row, m), value(ref, m)))
  const vsMtls: RowName[] = [...DAEMON_ROWS, ...(f.peer ? (['goPeer'] as const) : [])]
  const vsInThread: RowName[] = DAEMON_ROWS.filter((r) => r !== 'workers0')
  const ratios = table(
    ['figure', ...vsMtls.map((r) => `${SHORT[r]} / mTLS`), ...vsInThread.map((r) => `${SHORT[r]} / workers 0`)],
    metrics.map((m) => [m.label, ...vsMtls.map((r) => ratioCell(r, 'mtls', m)), ...vsInThread.map((r) => ratioCell(r, 'workers0', m))]),
    ['l', ...vsMtls.map(() => 'r' as const), ...vsInThread.map(() => 'r' as const)],
  )
  const problems = shown.filter((r) => f.rowProblems[r]).map((r) => `- ${ROW_LABELS[r]}: ${f.rowProblems[r]!.split('\n')[0]}`)
  const w = f.wrk
  const predialNote = f.predial ? ', but `ingress.predial` ' + String(f.predial) + ' in every ngrokd daemon' : ''
  return [
    title,
    '',
    main,
    '',
    ...(f.peer ? [peerSection(f, metrics, value), ''] : []),
    'Ratios (a row over its reference; above 1 is more throughput, or more time, CPU or memory):',
    '',
    ratios,
    ...(problems.length > 0 ? ['', ...problems] : []),
    '',
    `Rows: ${shown.map((r) => `**${SHORT[r]}** = ${ROW_LABELS[r]}`).join('; ')}; the daemon rows differ only in \`forwarder.workers\` (every other key at its default, \`ingress.*\` and the other \`forwarder.*\` keys included${predialNote}), a fresh daemon process per row and run. ` +
      'MB/s = 10⁶ bytes/s, counted from before connect to the last byte (upload: to the backend\'s count and hash). ' +
      `HTTP: wrk -t${w.threads} -c${w.connections} -d${w.seconds}s --latency to the \`http-echo\` backend (by hostname through ngrokd), keep-alive and with \`Connection: close\` (a new connection per request); wrk cannot speak ConnRequest, so the mTLS row has none` +
      (w.status === 'ok' ? '. ' : ` (**${w.status}**: ${w.reason ?? ''}). `) +
      `TTFB: \`GET 1\` to the bulk backend on a new connection, connect → first byte, p50/p99 of ${int(f.latencyRequests)}. ` +
      'CPU: the daemon process\'s utime+stime (/proc/<pid>/stat, all threads) across that figure; RSS from /proc/<pid>/status 3 s after it serves (idle, before the row\'s first connection) and after the row\'s run (the peak, VmHWM), and VmRSS while the idle connections are open end to end (one echoed byte each, to a `tcp-echo` endpoint). ' +
      `The simulator runs in its own process (its ingress sets TCP_NODELAY, as ngrok's Go ingress does); the clients in the bench process. Median of ${f.runs} run(s), every row in each run. ` +
      'Start to first answer: spawn → the first `GET 1` answered through the bulk endpoint, at the address read from the hosts file the daemon writes (probed every 2 ms), with an empty state dir (it registers: key, CSR, certificate) and again on the state it saved; ngrokd with its defaults and the Go daemon only, in processes of their own before the row\'s. ' +
      (f.peer
        ? 'The Go daemon is the unmodified build of ishanj12/ngrokd (test/scripts/build-go-peer.sh), a fresh process and state dir per run, on a link and subnet of its own; it always calls https://api.ngrok.com, which its own mount namespace maps to the simulator\'s HTTPS API (same simulator, same endpoints), and it verifies the ingress with the simulator\'s CA; wrk reaches it by address (its names are in its own hosts file; it rewrites the Host header of the first request of each connection anyway); it logs two lines per connection to a file. Its settling between figures waits for its socket count (/proc/<pid>/fd) to fall back.'
        : 'The Go daemon column holds the figures quoted in the hot-path issue, measured on another machine: for orientation only, not comparable in absolute terms; `--peer PATH` measures it here instead.'),
  ].join('\n')
}

/** The results as Markdown: printed to stdout and written into BENCHMARKS.md. */
export function renderResults(r: BenchResults): string {
  const m = r.machine
  return [
    `Measured ${r.generatedAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')} (${r.mode}, median of ${r.runs} run${r.runs === 1 ? '' : 's'}) on: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}, Linux ${m.kernel} (${m.platform}), load average ${m.loadAverage} at the start; ${r.environment}.`,
    '',
    addressesSection(r.figures.addresses),
    '',
    endpointsSection(r.figures.endpoints),
    '',
    forwardingSection(r.figures.forwarding),
  ].join('\n')
}

export const RESULTS_BEGIN = '<!-- bench:results:begin (written by npm run bench) -->'
export const RESULTS_END = '<!-- bench:results:end -->'

/** BENCHMARKS.md with its results block replaced (appended when the markers are missing). */
export function replaceResultsBlock(markdown: string, rendered: string): string {
  const block = `${RESULTS_BEGIN}\n${rendered}\n${RESULTS_END}`
  const begin = markdown.indexOf(RESULTS_BEGIN)
  const end = markdown.indexOf(RESULTS_END)
  if (begin < 0 || end < begin) return `${markdown.trimEnd()}\n\n${block}\n`
  return `${markdown.slice(0, begin)}${block}${markdown.slice(end + RESULTS_END.length)}`
}
