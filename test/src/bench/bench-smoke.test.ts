// Keeps `npm run bench` from rotting: the harness runs with --quick in a child process and must print
// every table and write valid JSON in which every figure is present. No time value is checked.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { benchPlace } from './bench-namespace.js'
import type { BenchResults } from './bench-report.js'
import { QUICK_SCALE } from './bench-options.js'
import { DAEMON_ROWS } from './forwarding-bench.js'
import { siblingScript } from './sibling-script.js'

/** Safety net for a hung harness; the quick run takes seconds. Not a performance bound. */
const SAFETY_MS = 180_000
const BENCHMARKS_MD = resolve(dirname(fileURLToPath(import.meta.url)), '../../../BENCHMARKS.md')

function runQuick(out: string, extra: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { args } = siblingScript(import.meta.url, 'run-bench')
  // the harness makes a namespace of its own (nested inside the test one, if any)
  const child = spawn(process.execPath, [...args, '--quick', '--out', out, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')))
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')))
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), SAFETY_MS)
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

const isNumber = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v)

test('npm run bench -- --quick prints every table and writes JSON with every figure', { timeout: SAFETY_MS + 10_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ngrokd-bench-smoke-'))
  const mdBefore = statSync(BENCHMARKS_MD).mtimeMs
  try {
    const out = join(dir, 'quick.json')
    const r = await runQuick(out)
    assert.equal(r.code, 0, `the harness exits 0\n--- stderr ---\n${r.stderr}`)
    assert.equal(statSync(BENCHMARKS_MD).mtimeMs, mdBefore, '--quick leaves BENCHMARKS.md alone')

    // the table: a heading and a header row per figure
    assert.match(r.stdout, /^### 1\. 500 address additions and removals in one reconcile/m)
    assert.match(r.stdout, /^### 2\. From an API page of 300 endpoints \(3 pages\)/m)
    assert.match(r.stdout, /^### 3\. Forwarding on loopback: direct, the mTLS limit and ngrokd by `forwarder\.workers`/m)
    assert.match(r.stdout, /^\| figure +\| +direct \| +mTLS client \| +workers 0 \| +workers 1 \| +workers 2 \| +workers auto \| +Go daemon \(another machine\) \|$/m)
    assert.match(r.stdout, /^\| figure +\| +workers 0 \/ mTLS \|.*\| +workers auto \/ workers 0 \|$/m, 'the ratio table')
    assert.doesNotMatch(r.stdout, /ngrokd beside the Go daemon/, 'no Go daemon table without --peer')

    const results = JSON.parse(readFileSync(out, 'utf8')) as BenchResults
    assert.equal(results.schema, 'ngrokd-bench/1')
    assert.equal(results.mode, 'quick')
    assert.equal(results.runs, 1)
    for (const key of ['cpu', 'cores', 'node', 'kernel'] as const) assert.ok(results.machine[key], `machine.${key} is recorded`)
    const { addresses, endpoints, forwarding } = results.figures

    // the daemon-free forwarding rows need no privilege: always measured
    assert.equal(forwarding.status, 'ok', forwarding.reason)
    assert.equal(forwarding.downloadBytes, QUICK_SCALE.downloadBytes)
    assert.equal(forwarding.uploadBytes, QUICK_SCALE.uploadBytes)
    const rows = forwarding.rows!
    for (const name of ['direct', 'mtls'] as const) {
      const row = rows[name]
      assert.ok(row, `the ${name} row was measured: ${forwarding.rowProblems[name]}`)
      for (const v of [row.downloadMBps, row.uploadMBps, row.parallel8MBps, row.parallel64MBps, row.ttfbP50Ms, row.ttfbP99Ms]) assert.ok(isNumber(v) && v > 0)
      assert.equal(row.cpuSecPerGiBDown, null, 'no daemon, no daemon CPU')
    }
    assert.equal(rows.mtls!.keepAlive, null, 'wrk cannot reach the ingress: no HTTP figures on the mTLS row')
    assert.equal(forwarding.peer, null)
    assert.equal(rows.goPeer, null, 'no Go daemon row without --peer')
    assert.ok(forwarding.wrk.status === 'ok' || forwarding.wrk.reason, `wrk ran or says why not: ${forwarding.wrk.reason}`)
    if (forwarding.wrk.status === 'ok') for (const v of [rows.direct!.keepAlive?.rps, rows.direct!.newConnection?.rps]) assert.ok(isNumber(v) && v! > 0)

    if (benchPlace().kind === 'unprivileged') {
      for (const f of [addresses, endpoints]) assert.ok(f.status === 'skipped' && f.reason, 'a privileged figure is skipped with a reason')
      for (const name of DAEMON_ROWS) assert.ok(rows[name] === null && forwarding.rowProblems[name]?.startsWith('skipped'), `${name} is skipped with a reason`)
      return
    }
    assert.equal(addresses.status, 'ok', addresses.reason)
    assert.equal(addresses.count, QUICK_SCALE.addresses)
    for (const v of [addresses.ngrokd?.addMs, addresses.ngrokd?.removeMs, addresses.ip?.addMs, addresses.ip?.removeMs, addresses.ratio?.add, addresses.ratio?.remove]) {
      assert.ok(isNumber(v), 'figure 1 has ngrokd, ip -batch and ratio figures')
    }
    assert.ok(addresses.ngrokd!.sends >= 1)

    assert.equal(endpoints.status, 'ok', endpoints.reason)
    assert.equal(endpoints.endpoints, QUICK_SCALE.endpoints)
    for (const phase of [endpoints.first!, endpoints.restart!]) {
      for (const v of [phase.firstPollMs, phase.allServingMs, phase.namesMs, phase.reconcileMs, phase.pollReconcileMs, phase.rssMiB, phase.settledRssMiB]) assert.ok(isNumber(v))
      assert.equal(phase.serving, QUICK_SCALE.endpoints)
      assert.equal(phase.pageRequests, 3, 'each start fetched 3 pages of 100')
      assert.equal(phase.kernelAddresses, QUICK_SCALE.endpoints)
      assert.equal(phase.hostsNames, QUICK_SCALE.endpoints)
      assert.equal(phase.sampleOk, phase.sampleTotal)
    }
    for (const name of DAEMON_ROWS) {
      const row = rows[name]
      assert.ok(row, `the ${name} row was measured: ${forwarding.rowProblems[name]}`)
      for (const v of [row.downloadMBps, row.uploadMBps, row.parallel8MBps, row.parallel64MBps, row.ttfbP50Ms, row.cpuSecPerGiBDown, row.cpuSecPerGiBUp, row.readyRssMiB, row.peakRssMiB, row.idleRssMiB]) {
        assert.ok(isNumber(v), `${name}: every daemon figure is a number`)
      }
      // VmHWM and VmRSS come from the kernel's per-CPU RSS counters, read approximately (mm/percpu_counter):
      // a peak read after the idle connections closed may trail their VmRSS by a batch of pages per counter
      const counterDriftMiB = 1
      assert.ok(row.idleRssMiB! > 0 && row.peakRssMiB! >= row.idleRssMiB! - counterDriftMiB, `${name}: the peak RSS is at least the RSS with idle connections (${row.peakRssMiB} vs ${row.idleRssMiB} MiB)`)
      if (forwarding.wrk.status === 'ok') assert.ok(isNumber(row.keepAlive?.cpuUsPerRequest) && isNumber(row.newConnection?.rps), `${name}: HTTP figures`)
    }
    assert.ok(isNumber(rows.workersAuto!.startFreshMs) && isNumber(rows.workersAuto!.startSavedMs), 'start to first answer of ngrokd with its defaults')
    assert.equal(rows.workers0!.startFreshMs, null, 'start figures only for the default row')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

/** A built Go daemon (test/scripts/build-go-peer.sh) to check the `--peer` row with; the test is skipped without one. */
const GO_PEER = process.env.NGROKD_BENCH_GO_PEER

test(
  'npm run bench -- --quick --peer PATH measures the Go daemon beside ngrokd',
  { timeout: SAFETY_MS + 10_000, skip: !GO_PEER ? 'set NGROKD_BENCH_GO_PEER to a built Go daemon (test/scripts/build-go-peer.sh)' : benchPlace().kind === 'unprivileged' ? 'needs root for the namespaces' : false },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ngrokd-bench-smoke-peer-'))
    try {
      const out = join(dir, 'quick.json')
      const r = await runQuick(out, ['--only', 'forwarding', '--peer', GO_PEER!])
      assert.equal(r.code, 0, `the harness exits 0\n--- stderr ---\n${r.stderr}`)
      assert.match(r.stdout, /^\| figure +\| +direct \|.*\| +workers auto \| +Go daemon \|$/m, 'the Go daemon is a column of the main table')
      assert.match(r.stdout, /^\| figure +\| +Go daemon \| +ngrokd \(workers auto, defaults\) \| +ngrokd vs Go \|$/m, 'the side-by-side table')
      const { forwarding } = (JSON.parse(readFileSync(out, 'utf8')) as BenchResults).figures
      assert.equal(forwarding.peer?.path, GO_PEER)
      const peer = forwarding.rows!.goPeer
      assert.ok(peer, `the Go daemon row was measured: ${forwarding.rowProblems.goPeer}`)
      for (const v of [peer.downloadMBps, peer.uploadMBps, peer.ttfbP50Ms, peer.cpuSecPerGiBDown, peer.readyRssMiB, peer.peakRssMiB, peer.idleRssMiB, peer.startFreshMs, peer.startSavedMs]) {
        assert.ok(isNumber(v), 'every Go daemon figure is a number')
      }
      if (forwarding.wrk.status === 'ok') assert.ok(isNumber(peer.keepAlive?.rps) && isNumber(peer.newConnection?.cpuUsPerRequest), 'HTTP figures through the Go daemon')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  },
)
