#!/usr/bin/env node
/**
 * `npm run bench`: the reconcile-at-scale and forwarding figures, each the median of several runs,
 * printed side by side with their references and ratios. Never asserts a time.
 *
 * As root it re-runs itself inside a private network + mount namespace of its own (test/scripts/in-netns.sh:
 * lo up, a private /etc/hosts), so nothing touches the machine's interfaces or hosts file. Not root:
 * it says why and runs only the unprivileged parts. Output: the tables on stdout (progress on
 * stderr), JSON in bench-results/latest.json, and in a full run the results block of BENCHMARKS.md.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runAddressesFigure, type AddressesFigure } from './address-bench.js'
import { benchPlace, rerunInNamespace } from './bench-namespace.js'
import { parseBenchArgs, REDUCED_SCALE, UsageError, USAGE, type BenchOptions, type FigureName } from './bench-options.js'
import { renderResults, replaceResultsBlock, type BenchResults } from './bench-report.js'
import { runEndpointsFigure, type EndpointsFigure } from './endpoints-bench.js'
import { ROWS, rowFailed, runForwardingFigure, type ForwardingFigure } from './forwarding-bench.js'
import { machineInfo } from './machine-info.js'
import { ensureWrk, WRK_CONNECTIONS, WRK_THREADS } from './wrk.js'

/** The repository root, from test/{src,dist}/bench/. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')

const log = (line: string): void => {
  process.stderr.write(`${line}\n`)
}

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e))

async function figure<F extends { status: string; reason?: string }>(name: FigureName, options: BenchOptions, skipReason: string | undefined, empty: () => F, run: () => Promise<F>): Promise<F> {
  if (!options.only.includes(name)) return { ...empty(), status: 'skipped', reason: 'not selected (--only)' }
  if (skipReason) {
    log(`${name}: skipped: ${skipReason}`)
    return { ...empty(), status: 'skipped', reason: skipReason }
  }
  log(`${name}: running (${options.runs} run${options.runs === 1 ? '' : 's'})`)
  const t0 = performance.now()
  try {
    const f = await run()
    log(`${name}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
    return f
  } catch (e) {
    log(`${name}: ERROR: ${e instanceof Error ? e.stack : String(e)}`)
    return { ...empty(), status: 'error', reason: errorText(e) }
  }
}

async function main(argv: string[]): Promise<number> {
  let options: BenchOptions | 'help'
  try {
    options = parseBenchArgs(argv)
  } catch (e) {
    if (!(e instanceof UsageError)) throw e
    process.stderr.write(`bench: ${e.message}\n\n${USAGE}`)
    return 2
  }
  if (options === 'help') {
    process.stdout.write(USAGE)
    return 0
  }
  const place = benchPlace()
  if (place.kind === 'outer') {
    // the namespace has no route to a package mirror: install first
    if (options.installWrk && options.only.includes('forwarding')) ensureWrk(log)
    return rerunInNamespace(argv)
  }
  const privileged = place.kind === 'namespace' ? undefined : place.reason
  if (privileged) log(`bench: not privileged: ${privileged}; the privileged parts are skipped`)
  const { scale, runs } = options
  const machine = machineInfo() // before the runs: its load average is the machine's, not ours

  const addresses = await figure<AddressesFigure>(
    'addresses',
    options,
    privileged,
    () => ({ status: 'ok', count: scale.addresses, runs, subnet: '10.107.0.0/16', samples: { ngrokd: [], ip: [] } }),
    () => runAddressesFigure({ count: scale.addresses, runs, hostNetns: (place as { hostNetns: string }).hostNetns, log }),
  )
  const endpoints = await figure<EndpointsFigure>(
    'endpoints',
    options,
    privileged,
    () => ({ status: 'ok', endpoints: scale.endpoints, runs, driver: 'linux-netlink', subnet: '10.107.0.0/16', samples: { first: [], restart: [], stopMs: [] } }),
    () => runEndpointsFigure({ count: scale.endpoints, sample: scale.sample, runs, log }),
  )
  const forwarding = await figure<ForwardingFigure>(
    'forwarding',
    options,
    undefined, // the direct paths need no privilege; the daemon part is skipped inside when unprivileged
    () => ({
      status: 'ok',
      runs,
      downloadBytes: scale.downloadBytes,
      uploadBytes: scale.uploadBytes,
      parallelBytes: scale.parallelBytes,
      idleConnections: scale.idleConnections,
      latencyRequests: scale.latencyRequests,
      rowProblems: {},
      wrk: { status: 'skipped', seconds: scale.wrkSeconds, threads: WRK_THREADS, connections: WRK_CONNECTIONS },
      peer: null,
      samples: {},
    }),
    () =>
      runForwardingFigure({
        runs,
        downloadBytes: scale.downloadBytes,
        uploadBytes: scale.uploadBytes,
        parallelBytes: scale.parallelBytes,
        idleConnections: scale.idleConnections,
        latencyRequests: scale.latencyRequests,
        wrkSeconds: scale.wrkSeconds,
        daemonSkip: privileged,
        peer: options.peer,
        predial: options.predial,
        log,
      }),
  )

  const results: BenchResults = {
    schema: 'ngrokd-bench/1',
    generatedAt: new Date().toISOString(),
    mode: options.quick ? 'quick' : options.scale === REDUCED_SCALE ? 'reduced' : 'full',
    runs,
    machine,
    environment: privileged ? `unprivileged (${privileged})` : 'as root in a private network + mount namespace',
    figures: { addresses, endpoints, forwarding },
  }
  const rendered = renderResults(results)
  process.stdout.write(`\n${rendered}\n`)

  const out = resolve(options.out ?? join(ROOT, 'bench-results', options.quick ? 'quick.json' : 'latest.json'))
  mkdirSync(dirname(out), { recursive: true })
  writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`)
  log(`\nbench: wrote ${out}`)

  const failedRows = ROWS.filter((row) => rowFailed(forwarding, row))
  const complete = Object.values(results.figures).every((f) => f.status === 'ok') && failedRows.length === 0
  if (options.markdown) {
    const file = join(ROOT, 'BENCHMARKS.md')
    if (complete) {
      writeFileSync(file, replaceResultsBlock(readFileSync(file, 'utf8'), rendered))
      log(`bench: updated the results block of ${file}`)
    } else {
      const problems = Object.entries(results.figures).filter(([, f]) => f.status !== 'ok').map(([n, f]) => `${n} ${f.status}`)
      for (const row of failedRows) problems.push(`forwarding row ${row} error`)
      log(`bench: BENCHMARKS.md left as it was: not every figure ran (${problems.join(', ')})`)
    }
  }
  const failed = Object.values(results.figures).some((f) => f.status === 'error') || failedRows.length > 0
  return failed ? 1 : 0
}

main(process.argv.slice(2)).then(
  (code) => {
    // exit once stdout is flushed, without waiting on any handle a child or socket left behind
    process.stdout.write('', () => process.exit(code))
  },
  (e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? e.stack : String(e)}\n`)
    process.exitCode = 1
  },
)
