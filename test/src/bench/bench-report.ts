import type { AddressesFigure } from './address-bench.js'
import type { EndpointsFigure, StartSample } from './endpoints-bench.js'
import { PATH_LABELS, type ForwardingFigure, type PathName } from './forwarding-bench.js'
import type { MachineInfo } from './machine-info.js'

/** What one `npm run bench` produced: bench-results/latest.json. */
export interface BenchResults {
  schema: 'ngrokd-bench/1'
  generatedAt: string
  mode: 'full' | 'quick'
  runs: number
  machine: MachineInfo
  /** `namespace` (a private network + mount namespace of its own, as root) or why not. */
  environment: string
  figures: { addresses: AddressesFigure; endpoints: EndpointsFigure; forwarding: ForwardingFigure }
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US')
const ms = (n: number | null | undefined): string => (n == null ? '—' : n >= 100 ? `${int(n)} ms` : `${n.toFixed(n >= 10 ? 1 : 2)} ms`)
const times = (r: number | null | undefined): string => (r == null ? '—' : `${r.toFixed(2)}×`)
const plusMs = (n: number): string => `${n >= 0 ? '+' : '−'}${ms(Math.abs(n))}`
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
      ],
      ['l', 'r', 'r'],
    ),
    '',
    `Clean stop of the first start (SIGTERM → exit: drain, unpublish, remove ${int(f.endpoints)} addresses): ${ms(f.stopMs)}. ` +
      `Median of ${f.runs} run(s). The times come from the daemon's log (its own clock, read every 20 ms), then are checked from outside through the control API, \`ip addr\`, /etc/hosts and real requests. ` +
      'On restart the daemon serves its cached endpoint list before it re-registers and polls.',
  ].join('\n')
}

function forwardingSection(f: ForwardingFigure): string {
  const MiB = 1024 * 1024
  const title = `### 3. Forwarding baseline on loopback (${int(f.downloadBytes / MiB)} MiB download; ${int(f.latencyRequests)} fresh connections for latency)`
  const skipped = notRun(f)
  if (skipped || !f.paths) return `${title}\n\n${skipped ?? '**error**: no result'}`
  const rows: string[][] = []
  for (const name of ['direct', 'mtls', 'daemon'] as PathName[]) {
    const p = f.paths[name]
    if (!p) {
      rows.push([PATH_LABELS[name], 'skipped', '', '', '', ''])
      continue
    }
    const vs = name === 'direct' ? undefined : f.versusDirect?.[name]
    rows.push([PATH_LABELS[name], int(p.downloadMBps), vs ? times(vs.download) : '1.00×', ms(p.ttfbP50Ms), ms(p.ttfbP99Ms), vs ? plusMs(vs.ttfbP50ExtraMs) : '—'])
  }
  const w = f.wrk
  const wrkPart =
    w.status === 'ok' && w.directRps !== undefined && w.daemonRps !== undefined
      ? table(
          [`keep-alive HTTP, wrk -t${w.threads} -c${w.connections} -d${w.seconds}s`, 'req/s', 'vs direct'],
          [
            ['direct to the http-echo backend', int(w.directRps), '1.00×'],
            ['through ngrokd (by hostname)', int(w.daemonRps), times(w.ratio)],
          ],
          ['l', 'r', 'r'],
        )
      : `Keep-alive HTTP (wrk): **${w.status}**: ${w.reason ?? ''}`
  return [
    title,
    '',
    table(['path', 'download MB/s', 'vs direct', 'TTFB p50', 'TTFB p99', 'p50 vs direct'], rows, ['l', 'r', 'r', 'r', 'r', 'r']),
    '',
    wrkPart,
    '',
    `MB/s = 10⁶ bytes/s, one connection, counted from before connect to the last byte. TTFB: a new connection per request (\`GET 1\` to the bulk backend), connect → first byte. ` +
      `The simulator runs in its own process, the client in the bench process. Median of ${f.runs} run(s).` +
      (f.daemonSkipped ? ` Through ngrokd: skipped (${f.daemonSkipped}).` : ''),
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
