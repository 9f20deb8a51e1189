import { readFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { silentLogger, type Logger } from '../contracts/logger.js'
import { NgrokdError } from '../errors/ngrokd-error.js'
import { pathExists, writeFileAtomic, type StateFileLocation } from '../util/atomic-file.js'

/** File name used when only a state directory is given. */
export const NETWORK_PORTS_FILE = 'network-ports.json'
/** The last TCP port. */
const MAX_PORT = 65535

/** The key a service's network port is kept under: its hostname and endpoint port (`api.prod:80`). */
export function networkPortKey(hostname: string, port: number): string {
  return `${hostname}:${port}`
}

/** What is persisted, one entry per key ever assigned (kept when released, for stability). */
export interface NetworkPortsState {
  version: 1
  /** `net.network.start_port` the entries were made with (informational; entries below a new one are dropped). */
  startPort: number
  /** Sorted by port. `released` orders inactive entries: the smallest is recycled first. */
  entries: Array<{ key: string; port: number; active: boolean; released?: number }>
}

export type PortAssignment = { key: string; port: number } | { key: string; error: NgrokdError }

export interface NetworkPortEntry {
  key: string
  port: number
  /** False once released: the mapping is kept so the key gets the same port back. */
  active: boolean
}

/** `stateDir` puts the file at `<stateDir>/network-ports.json`. */
export type NetworkPortsOptions = StateFileLocation & { logger?: Logger }

interface Mapping {
  port: number
  active: boolean
}

/**
 * Network mode's stable ports: each service (hostname + endpoint port) gets one port counted from
 * `net.network.start_port`, and keeps it across restarts. The rules are the allocator's, for ports:
 *
 * - The same key gets the same port back as long as the port is still ≥ `startPort` (state file in
 *   `state_dir`, replaced atomically, written once per changing batch).
 * - A released port is not given to another key while never-used ports remain; when the range up to
 *   65535 is used up, the oldest released port is recycled.
 * - Ports in `avoid` (e.g. the endpoints' own ports, which a wildcard listen address would collide
 *   with) are skipped for new assignments.
 * - Exhaustion fails only the keys that got no port, with `NGROKD_ERR_ADDRESS_EXHAUSTED`.
 * - A state file that cannot be parsed is moved aside to `<file>.corrupt-<time>` with a warning.
 *
 * ```ts
 * const ports = new NetworkPorts({ stateDir: '/var/lib/ngrokd', logger })
 * await ports.open({ startPort: 20000 })
 * const [a] = await ports.assign({ keys: [networkPortKey('api.prod', 80)] }) // { key: 'api.prod:80', port: 20000 }
 * ```
 */
export class NetworkPorts {
  readonly stateFile: string
  private readonly logger: Logger
  private startPort = 0
  private readonly byKey = new Map<string, Mapping>()
  private readonly byPort = new Map<number, string>()
  /** Inactive keys in release order (Map keeps insertion order): the first is the oldest. */
  private readonly released = new Map<string, number>()
  private releaseSeq = 0
  private cursor = 0
  private opened = false
  private writing: Promise<void> = Promise.resolve()
  private unsaved = false

  constructor(options: NetworkPortsOptions) {
    this.stateFile = options.stateFile ?? join(options.stateDir, NETWORK_PORTS_FILE)
    this.logger = options.logger ?? silentLogger
  }

  /** Loads the state file (missing = empty). A second `open()` reloads it, as a restart would. */
  async open({ startPort }: { startPort: number }): Promise<void> {
    if (!Number.isInteger(startPort) || startPort < 1 || startPort > MAX_PORT) {
      throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `network ports: net.network.start_port ${startPort} is not a port`, { hint: 'set net.network.start_port to 1–65535, e.g. 20000' })
    }
    const state = await this.load()
    this.startPort = startPort
    this.byKey.clear()
    this.byPort.clear()
    this.released.clear()
    this.releaseSeq = 0
    this.cursor = startPort
    const dropped: string[] = []
    const inactive: Array<{ key: string; seq: number }> = []
    for (const e of state?.entries ?? []) {
      if (e.port < startPort || this.byKey.has(e.key) || this.byPort.has(e.port)) {
        dropped.push(e.key)
        continue
      }
      this.byKey.set(e.key, { port: e.port, active: e.active })
      this.byPort.set(e.port, e.key)
      if (!e.active) inactive.push({ key: e.key, seq: e.released ?? 0 })
    }
    inactive.sort((a, b) => a.seq - b.seq)
    for (const { key } of inactive) this.released.set(key, ++this.releaseSeq)
    this.opened = true
    if (dropped.length > 0) {
      this.logger.warn({ dropped, startPort }, `network ports: dropped ${dropped.length} earlier ports (below net.network.start_port ${startPort}, or duplicated); those services get new ports`)
      await this.persist()
    }
  }

  /** One port per key, one state write per batch that changed something. */
  async assign({ keys, avoid = [] }: { keys: readonly string[]; avoid?: Iterable<number> }): Promise<PortAssignment[]> {
    this.assertOpen()
    const skip = new Set(avoid)
    const results: PortAssignment[] = []
    let changed = false
    for (const key of keys) {
      const known = this.byKey.get(key)
      if (known) {
        if (!known.active) {
          known.active = true
          this.released.delete(key)
          changed = true
        }
        results.push({ key, port: known.port })
        continue
      }
      const port = this.takeNeverUsed(skip) ?? this.takeOldestReleased(skip)
      if (port === undefined) {
        results.push({
          key,
          error: new NgrokdError('NGROKD_ERR_ADDRESS_EXHAUSTED', `network ports: no free port from ${this.startPort} to ${MAX_PORT} for ${key}`, {
            hint: 'lower net.network.start_port or remove endpoints you do not need',
          }),
        })
        continue
      }
      this.byKey.set(key, { port, active: true })
      this.byPort.set(port, key)
      changed = true
      results.push({ key, port })
    }
    if (changed || this.unsaved) await this.persist()
    return results
  }

  /** Marks keys unused; their ports stay theirs until the range is exhausted. */
  async release({ keys }: { keys: readonly string[] }): Promise<void> {
    this.assertOpen()
    let changed = false
    for (const key of keys) {
      const known = this.byKey.get(key)
      if (!known || !known.active) continue
      known.active = false
      this.released.set(key, ++this.releaseSeq)
      changed = true
    }
    if (changed || this.unsaved) await this.persist()
  }

  /** The port of a key, active or not. */
  lookup(key: string): number | undefined {
    return this.byKey.get(key)?.port
  }

  list(): NetworkPortEntry[] {
    return [...this.byKey.entries()].sort((a, b) => a[1].port - b[1].port).map(([key, m]) => ({ key, port: m.port, active: m.active }))
  }

  async close(): Promise<void> {
    await this.writing.catch(() => {})
    this.opened = false
  }

  private takeNeverUsed(skip: Set<number>): number | undefined {
    while (this.cursor <= MAX_PORT) {
      const p = this.cursor++
      if (!this.byPort.has(p) && !skip.has(p)) return p
    }
    return undefined
  }

  private takeOldestReleased(skip: Set<number>): number | undefined {
    for (const key of this.released.keys()) {
      const m = this.byKey.get(key)!
      if (skip.has(m.port)) continue
      this.released.delete(key)
      this.byKey.delete(key)
      this.byPort.delete(m.port)
      this.logger.info({ key, port: m.port }, `network ports: range full, recycling port ${m.port} of released ${key}`)
      return m.port
    }
    return undefined
  }

  private snapshot(): NetworkPortsState {
    return {
      version: 1,
      startPort: this.startPort,
      entries: this.list().map((e) => {
        const seq = this.released.get(e.key)
        return seq === undefined ? e : { ...e, released: seq }
      }),
    }
  }

  private async persist(): Promise<void> {
    const turn = this.writing.catch(() => {}).then(async () => {
      try {
        await writeFileAtomic(this.stateFile, render(this.snapshot()), { mode: 0o600 })
        this.unsaved = false
      } catch (cause) {
        this.unsaved = true
        throw new NgrokdError('NGROKD_ERR_STATE', `network ports: cannot write ${this.stateFile}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`, {
          cause,
          hint: 'check that the state directory exists, is writable by ngrokd and its disk is not full',
        })
      }
    })
    this.writing = turn
    await turn
  }

  private async load(): Promise<NetworkPortsState | undefined> {
    let text: string
    try {
      text = await readFile(this.stateFile, 'utf8')
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw new NgrokdError('NGROKD_ERR_STATE', `network ports: cannot read ${this.stateFile}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`, {
        cause,
        hint: 'check the permissions of the state directory',
      })
    }
    let reason: string | undefined
    try {
      const parsed: unknown = JSON.parse(text)
      reason = checkState(parsed)
      if (reason === undefined) return parsed as NetworkPortsState
    } catch (e) {
      reason = `not json (${(e as Error).message})`
    }
    const aside = `${this.stateFile}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`
    try {
      await rename(this.stateFile, aside)
    } catch (cause) {
      throw new NgrokdError('NGROKD_ERR_STATE', `network ports: ${this.stateFile} is corrupt (${reason}) and cannot be moved aside`, {
        cause,
        hint: `delete ${this.stateFile}; services will get new network ports`,
      })
    }
    this.logger.warn({ stateFile: this.stateFile, movedTo: aside, reason }, `network ports: ${this.stateFile} is corrupt (${reason}); moved it to ${aside} and starting afresh`)
    return undefined
  }

  private assertOpen(): void {
    if (!this.opened) throw new NgrokdError('NGROKD_ERR_DRIVER_MISUSE', 'network ports: called before open() or after close()', { hint: 'await open() first' })
  }
}

/** Why `v` is not a {@link NetworkPortsState}, or undefined. */
function checkState(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null) return 'not an object'
  const s = v as Record<string, unknown>
  if (s.version !== 1) return `unknown version ${JSON.stringify(s.version)}`
  if (!Array.isArray(s.entries)) return 'no entries'
  for (const [i, e] of s.entries.entries()) {
    if (typeof e !== 'object' || e === null) return `entry ${i} is not an object`
    const { key, port, active, released } = e as Record<string, unknown>
    if (typeof key !== 'string' || key === '') return `entry ${i} has no key`
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > MAX_PORT) return `entry ${i} has no port`
    if (typeof active !== 'boolean') return `entry ${i} has no active flag`
    if (released !== undefined && (typeof released !== 'number' || !Number.isFinite(released))) return `entry ${i} has a bad released order`
  }
  return undefined
}

/** One entry per line, so the file diffs and greps well. */
function render(state: NetworkPortsState): string {
  const entries = state.entries.map((e) => `    ${JSON.stringify(e)}`).join(',\n')
  return `{\n  "version": ${state.version},\n  "startPort": ${state.startPort},\n  "entries": [${entries ? `\n${entries}\n  ` : ''}]\n}\n`
}
