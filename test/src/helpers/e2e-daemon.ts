import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createRequire } from 'node:module'
import { DaemonProcess } from '@ngrokd/core'
import type { NetDriverCase } from './net-drivers.js'
import { deleteLink, linkExists } from './ip-link.js'

/** The CLI users install: the `ngrokd` package's bin (core's commands plus `demo` from the simulator). */
export const NGROKD_PACKAGE_BIN = join(dirname(createRequire(import.meta.url).resolve('ngrokd/package.json')), 'bin', 'ngrokd.js')

export interface E2eDaemonOptions {
  /** Short label for the temp dir and messages. */
  name: string
  /** The simulator's API and ingress: `apiUrl`, `apiKey`, `caCertPem`. */
  sim: { apiUrl: string; apiKey: string; caCertPem: string }
  net: NetDriverCase
  /** `bound_endpoints.poll_interval`. Default `1s`. */
  pollInterval?: string
  /** PEM written to `ingress.ca_file`. Default: the simulator's CA (its intermediate). `null`: no ca_file (the default trust). */
  ingressCaPem?: string | null
  /** `log.level`. Default `info`. */
  logLevel?: string
  /** More config, merged over the defaults above section by section (e.g. `{ metrics: { prometheus_listen } }`); a list (`plugins`) or a scalar (`instance`) is set as given. */
  extraConfig?: Record<string, Record<string, unknown> | unknown[] | string>
  /** More environment for the child (e.g. NODE_OPTIONS), over {@link E2eDaemon.childEnv}. */
  env?: Record<string, string>
  /** Where the config file goes (plugins and drivers named in it resolve from there). Default the daemon's temp dir. */
  configDir?: string
}

/** Safety net for a stop; a clean drain of idle listeners takes far less. */
const STOP_SAFETY_MS = 30_000

/** Keys the child must not inherit: every NGROKD_* variable overrides a config key (and NGROK_API_KEY the key). */
const INHERITED_ENV_BLOCKLIST = /^(NGROKD_|NGROK_)/

/**
 * One `ngrokd run` under test: its own temp dir holding the config file, state_dir, control socket
 * and log file, spawned as the built CLI through `DaemonProcess`. `restart()` starts a new process
 * with the same config and state_dir; the log file accumulates across restarts.
 *
 * ```ts
 * const d = await E2eDaemon.start({ name: 'proto', sim, net })
 * await d.waitReady()
 * ...
 * await d.dispose()
 * ```
 */
export class E2eDaemon {
  readonly dir: string
  readonly stateDir: string
  readonly socketPath: string
  readonly configFile: string
  readonly logFile: string
  readonly config: Record<string, any>
  process!: DaemonProcess

  private constructor(readonly options: E2eDaemonOptions) {
    this.dir = mkdtempSync(join(tmpdir(), `ngrokd-e2e-${options.name}-`))
    this.stateDir = join(this.dir, 'state')
    this.socketPath = join(this.dir, 'ctl.sock')
    this.configFile = join(options.configDir ?? this.dir, `ngrokd-${options.name}.json`)
    this.logFile = join(this.dir, 'daemon.log')
    const caFile = join(this.dir, 'ingress-ca.pem')
    if (options.ingressCaPem !== null) writeFileSync(caFile, options.ingressCaPem ?? options.sim.caCertPem)
    this.config = {
      api: { url: options.sim.apiUrl, key: options.sim.apiKey },
      ingress: options.ingressCaPem === null ? {} : { ca_file: caFile },
      bound_endpoints: { poll_interval: options.pollInterval ?? '1s' },
      net: {
        driver: options.net.driver,
        subnet: options.net.subnet,
        ...(options.net.interfaceName ? { interface_name: options.net.interfaceName } : {}),
      },
      names: { hosts_file: '/etc/hosts' },
      state_dir: this.stateDir,
      control: { socket: this.socketPath },
      log: { level: options.logLevel ?? 'info' },
    }
    for (const [section, values] of Object.entries(options.extraConfig ?? {})) {
      this.config[section] = typeof values !== 'object' || Array.isArray(values) ? values : { ...(this.config[section] ?? {}), ...values }
    }
    writeFileSync(this.configFile, `${JSON.stringify(this.config, null, 2)}\n`)
  }

  /** Writes the config and spawns the daemon (does not wait for it; see waitReady()). */
  static start(options: E2eDaemonOptions): E2eDaemon {
    const d = new E2eDaemon(options)
    d.spawn()
    return d
  }

  /** Writes the config without spawning, for a test to prepare the state dir first; `restart()` starts it. */
  static prepare(options: E2eDaemonOptions): E2eDaemon {
    return new E2eDaemon(options)
  }

  /** The environment of the child: ours without NGROKD_* / NGROK_* so only the config file counts. */
  static childEnv(): NodeJS.ProcessEnv {
    return Object.fromEntries(Object.entries(process.env).filter(([k]) => !INHERITED_ENV_BLOCKLIST.test(k)))
  }

  private spawn(): void {
    this.process = new DaemonProcess({ configFile: this.configFile, socketPath: this.socketPath, logFile: this.logFile, env: { ...E2eDaemon.childEnv(), ...this.options.env } })
  }

  get running(): boolean {
    return this.process !== undefined && this.process.child.exitCode === null && this.process.child.signalCode === null
  }

  /** Starts a new process with the same config and state_dir (the first one, after `prepare()`); the previous one must have exited. */
  restart(): void {
    if (this.running) throw new Error(`${this.options.name}: restart() while the daemon still runs`)
    this.spawn()
  }

  /**
   * Waits until the daemon is registered and has finished a successful poll, plus `predicate`
   * on the status if given. The timeout is a safety net, not a performance assertion.
   */
  async waitReady(predicate: (status: Record<string, any>) => boolean = () => true): Promise<Record<string, any>> {
    return this.waitFor((s) => s.phase === 'running' && s.lastPoll?.ok === true && predicate(s), 'daemon ready')
  }

  /** Waits until the control API's status satisfies `predicate`; on a timeout, the error shows the log's tail. */
  async waitFor(predicate: (status: Record<string, any>) => boolean, what: string): Promise<Record<string, any>> {
    try {
      return await this.process.waitFor(predicate, { what: `${this.options.name}: ${what}`, timeoutMs: 60_000 })
    } catch (e) {
      throw new Error(`${(e as Error).message}\n--- daemon log (tail) ---\n${this.logTail(40)}`)
    }
  }

  status(): Promise<Record<string, any>> {
    return this.process.status()
  }

  services(): Promise<Array<Record<string, any>>> {
    return this.process.services()
  }

  /**
   * Runs a poll that started after this call (POST /v1/poll joins a poll already in flight, which
   * may have fetched before the caller's change) and returns its status.
   */
  async pollAfterNow(): Promise<Record<string, any>> {
    const since = Date.now()
    for (let i = 0; i < 3; i++) {
      const { poll } = (await this.process.poll()) as { poll?: Record<string, any> }
      if (poll && Date.parse(poll.at) >= since) return poll
    }
    throw new Error(`${this.options.name}: no poll started after the request in three tries`)
  }

  /** The whole log file (every process of this daemon so far). */
  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8')
    } catch {
      return ''
    }
  }

  /** The log's JSON lines (pino), skipping anything that is not JSON. */
  logRecords(): Array<Record<string, any>> {
    const out: Array<Record<string, any>> = []
    for (const line of this.log().split('\n')) {
      if (!line.startsWith('{')) continue
      try {
        out.push(JSON.parse(line) as Record<string, any>)
      } catch {
        // a line cut by SIGKILL
      }
    }
    return out
  }

  logTail(lines: number): string {
    return this.log().split('\n').slice(-lines - 1).join('\n')
  }

  /** SIGTERM (clean drain and cleanup) or SIGKILL (a crash); resolves with the exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const exit = this.process.stop(signal)
    // a daemon that ignores SIGTERM must not hang the suite: kill it and fail loudly
    let timer: NodeJS.Timeout | undefined
    const hung = new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), STOP_SAFETY_MS)))
    const first = await Promise.race([exit, hung])
    clearTimeout(timer)
    if (first !== 'hung') return first
    this.process.child.kill('SIGKILL')
    await exit
    throw new Error(`${this.options.name}: daemon did not exit within ${STOP_SAFETY_MS} ms of ${signal}\n${this.logTail(30)}`)
  }

  /**
   * Stops the daemon if it still runs (cleanly) and removes the temp dir unless NGROKD_E2E_KEEP=1.
   * A link left by a test that failed after a SIGKILL is deleted, so it cannot make the next file's
   * daemon refuse the same subnet as taken.
   */
  async dispose(): Promise<void> {
    if (this.process && this.running) await this.stop('SIGTERM')
    const { kernelLink, interfaceName } = this.options.net
    if (kernelLink && interfaceName && linkExists(interfaceName)) deleteLink(interfaceName)
    if (process.env.NGROKD_E2E_KEEP === '1') {
      console.error(`# ${this.options.name}: kept ${this.dir}`)
      return
    }
    rmSync(this.dir, { recursive: true, force: true })
  }
}
