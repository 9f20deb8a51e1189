import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import type { SimHostInfo, SimHostSpec } from './sim-host.js'
import { siblingScript } from './sibling-script.js'

/** Safety net for the simulator child to come up (10,000 generated endpoints take seconds). Not a figure. */
const READY_SAFETY_MS = 120_000

/**
 * The cloud simulator in a child process ({@link ./sim-host.ts}), so the measuring process never
 * shares an event loop with the server side it measures.
 *
 * ```ts
 * const sim = await SimHost.start({ endpoints: [{ url: 'tcp://bulk.bench:9000', backend: 'bulk' }], direct: true })
 * // sim.info.apiUrl, sim.info.direct!.bulk, ...
 * await sim.stop()
 * ```
 */
export class SimHost {
  private constructor(
    readonly child: ChildProcess,
    readonly info: SimHostInfo,
  ) {}

  static async start(spec: SimHostSpec): Promise<SimHost> {
    const { args } = siblingScript(import.meta.url, 'sim-host')
    const child = spawn(process.execPath, [...args, JSON.stringify(spec)], { stdio: ['pipe', 'pipe', 'pipe'] } /* stdin: closes with us, see sim-host.ts */)
    let stderr = ''
    child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString('utf8')).slice(-4000)))
    const lines = createInterface({ input: child.stdout! })
    let timer: NodeJS.Timeout | undefined
    try {
      const first = await Promise.race([
        once(lines, 'line').then(([line]) => line as string),
        once(child, 'exit').then(([code]) => Promise.reject(new Error(`sim-host exited (${code}) before it was ready: ${stderr.trim()}`))),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`sim-host not ready within ${READY_SAFETY_MS} ms`)), READY_SAFETY_MS))),
      ])
      return new SimHost(child, JSON.parse(first) as SimHostInfo)
    } catch (e) {
      child.kill('SIGKILL')
      throw e
    } finally {
      clearTimeout(timer)
      lines.close()
    }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    const exited = once(this.child, 'exit')
    this.child.kill('SIGTERM')
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(timer)
  }
}
