import { spawn, type ChildProcess } from 'node:child_process'
import { openSync, closeSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { callDaemon, type DaemonStatus, type PollStatus } from './control-api.js'
import type { ServiceView } from './reconciler.js'
import { NgrokdError } from '../errors/ngrokd-error.js'

/** The built CLI entry point of this package (package.json "imports"). */
export const NGROKD_BIN = fileURLToPath(import.meta.resolve('#bin'))

export interface DaemonProcessOptions {
  configFile: string
  socketPath: string
  /** File that receives the daemon's stdout and stderr; inherits the parent's when unset. */
  logFile?: string
  env?: NodeJS.ProcessEnv
  /**
   * Runs it in a process group of its own (POSIX): a terminal's Ctrl-C then reaches only the parent, which stops it
   * once (`ngrokd demo`), never twice (a second signal cuts its open connections). It is still ended when the parent
   * exits.
   */
  ownProcessGroup?: boolean
}

/**
 * A real `ngrokd run` child process, driven through its control socket. Used by `ngrokd demo`
 * and by the end-to-end tests.
 */
export class DaemonProcess {
  readonly child: ChildProcess
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>

  constructor(private readonly options: DaemonProcessOptions) {
    const out = options.logFile ? openSync(options.logFile, 'a') : 'inherit'
    this.child = spawn(process.execPath, [NGROKD_BIN, 'run', '--config', options.configFile], {
      stdio: ['ignore', out, out],
      env: options.env ?? process.env,
      ...(options.ownProcessGroup ? { detached: true } : {}),
    })
    if (typeof out === 'number') closeSync(out)
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })))
    if (options.ownProcessGroup) {
      // out of the parent's group, nothing else ends it with the parent
      const endWithParent = (): void => void this.stop('SIGTERM')
      process.once('exit', endWithParent)
      void this.exited.then(() => process.off('exit', endWithParent))
    }
  }

  get pid(): number {
    return this.child.pid ?? -1
  }

  /** Resolves when the process has exited. */
  waitExit(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.exited
  }

  status(): Promise<DaemonStatus> {
    return callDaemon(this.options.socketPath, 'GET /v1/status')
  }

  services(): Promise<ServiceView[]> {
    return callDaemon(this.options.socketPath, 'GET /v1/endpoints').then((r) => r.services)
  }

  /** Asks for an immediate poll and waits for it. */
  poll(): Promise<{ poll?: PollStatus }> {
    return callDaemon(this.options.socketPath, 'POST /v1/poll', {}, 120_000)
  }

  /**
   * Polls the control socket until `predicate(status)` holds. Rejects if the process exits first
   * or `timeoutMs` passes (a safety net, not a performance assertion).
   */
  async waitFor(predicate: (status: DaemonStatus) => boolean, { timeoutMs = 60_000, what = 'the daemon' } = {}): Promise<DaemonStatus> {
    const deadline = Date.now() + timeoutMs
    let exited = false
    void this.exited.then(() => (exited = true))
    let last: DaemonStatus | undefined
    while (Date.now() < deadline) {
      if (exited) throw new NgrokdError('NGROKD_ERR_CONTROL', `ngrokd exited while waiting for ${what}`)
      try {
        last = await this.status()
        if (last && predicate(last)) return last
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100))
    }
    throw new NgrokdError('NGROKD_ERR_CONTROL', `timed out waiting for ${what}; last status: ${JSON.stringify(last)}`)
  }

  /** SIGTERM (clean drain) or SIGKILL (crash), then waits for the exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal)
    return this.exited
  }
}
