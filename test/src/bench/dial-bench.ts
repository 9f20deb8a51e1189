import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { IngressDialer, NgrokdError, silentLogger, type IngressCredentials } from '@ngrokd/core'
import { siblingScript } from './sibling-script.js'

/** A binding ingress to measure against, and a request it accepts. */
export interface BenchDialTarget {
  /** `host:port` of the ingress. */
  endpoint: string
  /** PEM trust roots for its certificate. */
  ca: string
  credentials: IngressCredentials
  /** The ConnRequest each connection sends; the ingress must accept it. */
  hostname: string
  port: number
}

export interface BenchDialOptions {
  /** Measured connections, one after another. */
  connections: number
  /** `sessionResumption` of the dialer. */
  resumption: boolean
  /** `predial` of the dialer (0 = off). */
  predial: number
  /** Default: an ingress of our own in a child process (so this process's CPU time is the client's alone). */
  target?: BenchDialTarget
  /** Unmeasured connections first (JIT, the first session, the first pool fill). Default min(50, connections). */
  warmup?: number
  /**
   * Pause after each connection, unmeasured: how far apart connections arrive. A pool refills in it, as
   * it would between real connections. Default 5 ms, for every mode alike so that figures compare.
   */
  gapMs?: number
}

export interface BenchDialResult {
  /** `dial()` called → accepting ConnResponse read (DNS, TCP, TLS, ConnRequest round trip). */
  p50Ms: number
  p99Ms: number
  /** This process's CPU time (user + system) over the measured connections, per connection, µs: dials ahead included. */
  cpuUsPerConn: number
  connections: number
  /** Measured connections whose TLS session was resumed. */
  resumed: number
  /** Measured connections that were dialled ahead. */
  predialled: number
}

/** Nearest-rank percentile of ascending `sorted`. */
function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1]!
}

/**
 * Measures fresh connections to a binding ingress through {@link IngressDialer}: time to the
 * ConnResponse and CPU per connection, with session resumption and dialling ahead on or off.
 *
 * ```ts
 * const full = await benchDial({ connections: 500, resumption: false, predial: 0 })
 * const resumed = await benchDial({ connections: 500, resumption: true, predial: 0 })
 * const ahead = await benchDial({ connections: 500, resumption: true, predial: 2 })
 * console.log(full.p50Ms, resumed.p50Ms, ahead.p50Ms, full.cpuUsPerConn, resumed.cpuUsPerConn)
 * ```
 */
export async function benchDial(options: BenchDialOptions): Promise<BenchDialResult> {
  const { connections, resumption, predial } = options
  const warmup = options.warmup ?? Math.min(50, connections)
  const gapMs = options.gapMs ?? 5
  if (!Number.isInteger(connections) || connections < 1 || !Number.isInteger(warmup) || warmup < 0 || !(gapMs >= 0)) {
    throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `dial-bench: connections ${connections}, warmup ${warmup}, gapMs ${gapMs}: need integers ≥ 1, ≥ 0 and a gap ≥ 0`)
  }
  const host = options.target ? undefined : await startBenchIngress()
  const target = options.target ?? host!.target
  const dialer = new IngressDialer({
    logger: silentLogger,
    credentials: () => target.credentials,
    endpoint: () => target.endpoint,
    ca: target.ca,
    sessionResumption: resumption,
    predial,
  })
  try {
    const request = { hostname: target.hostname, port: target.port }
    const one = async (): Promise<{ ms: number; resumed: boolean; predialled: boolean }> => {
      const started = performance.now()
      const { socket, predialled } = await dialer.dial(request)
      const ms = performance.now() - started
      const resumed = socket.isSessionReused()
      socket.destroy()
      if (gapMs > 0) await sleep(gapMs)
      return { ms, resumed, predialled: predialled === true }
    }
    for (let i = 0; i < warmup; i++) await one()
    const times: number[] = []
    let resumed = 0
    let predialled = 0
    const cpu = process.cpuUsage()
    for (let i = 0; i < connections; i++) {
      const r = await one()
      times.push(r.ms)
      if (r.resumed) resumed++
      if (r.predialled) predialled++
    }
    const used = process.cpuUsage(cpu)
    times.sort((a, b) => a - b)
    return {
      p50Ms: percentile(times, 50),
      p99Ms: percentile(times, 99),
      cpuUsPerConn: (used.user + used.system) / connections,
      connections,
      resumed,
      predialled,
    }
  } finally {
    await dialer.close()
    await host?.stop()
  }
}

/** Starts dial-bench-ingress-host in a child process. */
async function startBenchIngress(): Promise<{ target: BenchDialTarget; stop(): Promise<void> }> {
  const child = spawn(process.execPath, siblingScript(import.meta.url, 'dial-bench-ingress-host').args, { stdio: ['pipe', 'pipe', 'inherit'] })
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    child.stdin!.end() // the host exits when its stdin closes (also if this process dies)
    await exited
  }
  const lines = createInterface({ input: child.stdout! })
  try {
    const [line] = (await Promise.race([
      once(lines, 'line'),
      once(child, 'exit').then(([code]) => Promise.reject(new Error(`dial-bench: ingress host exited (${String(code)}) before it was ready`))),
    ])) as [string]
    return { target: JSON.parse(line) as BenchDialTarget, stop }
  } catch (e) {
    child.kill('SIGKILL')
    throw e
  } finally {
    lines.close()
  }
}
