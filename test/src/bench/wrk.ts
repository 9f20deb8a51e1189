import { spawnSync } from 'node:child_process'

/** Keep-alive HTTP load: wrk's defaults for one machine of 2 cores — one client thread leaves a core to the servers. */
export const WRK_THREADS = 1
export const WRK_CONNECTIONS = 16

const which = (cmd: string): string | null => {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' })
  return r.status === 0 ? r.stdout.trim() : null
}

/** The wrk binary, or why there is none. */
export function findWrk(): { path: string } | { reason: string } {
  const path = which('wrk')
  return path ? { path } : { reason: 'wrk is not installed (apt-get install wrk)' }
}

/**
 * Installs wrk from the distribution's packages when it is missing and we are root (before the bench
 * enters its network namespace, which has no route to a package mirror). Never fails the bench.
 */
export function ensureWrk(log: (line: string) => void): void {
  if (which('wrk')) return
  if (process.getuid?.() !== 0 || !which('apt-get')) {
    log('wrk: not installed and cannot install it here (needs root and apt-get); the keep-alive HTTP figures will be skipped')
    return
  }
  log('wrk: not installed; apt-get install -y wrk ...')
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  const install = () => spawnSync('apt-get', ['install', '-y', '-qq', 'wrk'], { encoding: 'utf8', env, timeout: 300_000 })
  let r = install()
  if (r.status !== 0) {
    // a machine whose package lists were never fetched knows no wrk yet
    spawnSync('apt-get', ['update', '-qq'], { encoding: 'utf8', env, timeout: 300_000 })
    r = install()
  }
  log(r.status === 0 && which('wrk') ? 'wrk: installed' : `wrk: install failed (${(r.stderr || r.error?.message || '').trim().split('\n').pop()}); the keep-alive HTTP figures will be skipped`)
}

export interface WrkResult {
  requestsPerSec: number
  requests: number
  /** Socket errors (connect/read/write/timeout) and non-2xx/3xx answers wrk reported. */
  errors: number
  /** Latency percentiles from `--latency` (wrk's HdrHistogram), milliseconds. */
  p50Ms: number
  p99Ms: number
}

/** `12.5us`, `1.20ms`, `2.00s` → milliseconds. */
function wrkMs(value: string, unit: string): number {
  const n = Number(value)
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : n
}

/**
 * `wrk -t1 -c16 -d<seconds>s --latency <url>`; `newConnections` adds `Connection: close`, so wrk opens
 * a new connection for every request. Throws when wrk fails or prints no Requests/sec.
 */
export function runWrk(path: string, url: string, seconds: number, newConnections = false): WrkResult {
  const args = [`-t${WRK_THREADS}`, `-c${WRK_CONNECTIONS}`, `-d${seconds}s`, '--latency', ...(newConnections ? ['-H', 'Connection: close'] : []), url]
  const r = spawnSync(path, args, { encoding: 'utf8', timeout: (seconds + 30) * 1000 })
  if (r.status !== 0) throw new Error(`wrk ${url}: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`)
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout)
  const total = /(\d+) requests in/.exec(r.stdout)
  const p50 = /^\s+50%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(r.stdout)
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(r.stdout)
  if (!rps || !total || !p50 || !p99) throw new Error(`wrk ${url}: no Requests/sec or latency distribution in its output:\n${r.stdout}`)
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(r.stdout)
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(r.stdout)
  const errors = (socket ? socket.slice(1).reduce((n, v) => n + Number(v), 0) : 0) + (non2xx ? Number(non2xx[1]) : 0)
  return { requestsPerSec: Number(rps[1]), requests: Number(total[1]), errors, p50Ms: wrkMs(p50[1]!, p50[2]!), p99Ms: wrkMs(p99[1]!, p99[2]!) }
}
