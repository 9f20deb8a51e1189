import { join } from 'node:path'
import { silentLogger, type Logger } from '../contracts/logger.js'
import { NgrokdError } from '../errors/ngrokd-error.js'
import type { StateFileLocation } from '../util/atomic-file.js'
import { JsonStateFile, renderEntries } from '../util/json-state-file.js'
import { Lifecycle } from '../util/lifecycle.js'
import { StableAssignments } from '../util/stable-assignments.js'

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

/**
 * Network mode's stable ports: each service (hostname + endpoint port) gets one port counted from
 * `net.network.start_port`, and keeps it across restarts. The rules are the allocator's, for ports
 * (one home: {@link StableAssignments}):
 *
 * - The same key gets the same port back as long as the port is still ≥ `startPort` (state file in
 *   `state_dir`, replaced atomically, written once per changing batch).
 * - A released port is not given to another key while never-used ports remain; when the range up to
 *   65535 is used up, the oldest released port is recycled.
 * - Ports in `avoid` (the endpoints' own ports, which a wildcard listen address would collide with) are
 *   skipped; a key that held one moves to another, said in a warning.
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
  private readonly file: JsonStateFile<NetworkPortsState>
  private startPort = 0
  private slots = new StableAssignments(1, 0)
  private readonly lifecycle = new Lifecycle('network ports')

  constructor(options: NetworkPortsOptions) {
    this.stateFile = options.stateFile ?? join(options.stateDir, NETWORK_PORTS_FILE)
    this.logger = options.logger ?? silentLogger
    this.file = new JsonStateFile({ path: this.stateFile, what: 'network ports', check: checkState, consequence: 'services will get new network ports', logger: this.logger })
  }

  /** Loads the state file (missing = empty). A second `open()` reloads it, as a restart would. */
  async open({ startPort }: { startPort: number }): Promise<void> {
    if (!Number.isInteger(startPort) || startPort < 1 || startPort > MAX_PORT) {
      throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `network ports: net.network.start_port ${startPort} is not a port`, { hint: 'set net.network.start_port to 1–65535, e.g. 20000' })
    }
    const state = await this.file.read()
    this.startPort = startPort
    this.slots = new StableAssignments(startPort, MAX_PORT)
    const dropped = this.slots.restore((state?.entries ?? []).map(({ port, ...rest }) => ({ slot: port, ...rest })))
    this.lifecycle.open()
    if (dropped.length > 0) {
      this.logger.warn({ dropped, startPort }, `network ports: dropped ${dropped.length} earlier ports (below net.network.start_port ${startPort}, or duplicated); those services get new ports`)
      await this.persist()
    }
  }

  /** One port per key, one state write per batch that changed something. */
  async assign({ keys, avoid = [] }: { keys: readonly string[]; avoid?: Iterable<number> }): Promise<PortAssignment[]> {
    this.lifecycle.assertOpen('assign()')
    const { results, changed } = this.slots.assign(keys, new Set(avoid))
    const out = results.map((r): PortAssignment => {
      if ('exhausted' in r) {
        return {
          key: r.key,
          error: new NgrokdError('NGROKD_ERR_ADDRESS_EXHAUSTED', `network ports: no free port from ${this.startPort} to ${MAX_PORT} for ${r.key}`, {
            hint: 'lower net.network.start_port or remove endpoints you do not need',
          }),
        }
      }
      if (r.recycledFrom !== undefined) this.logger.info({ key: r.recycledFrom, port: r.slot }, `network ports: range full, recycling port ${r.slot} of released ${r.recycledFrom}`)
      if (r.movedFrom !== undefined) this.logger.warn({ service: r.key, from: r.movedFrom, port: r.slot }, `network ports: ${r.key} moves from port ${r.movedFrom} to ${r.slot}: an endpoint now uses ${r.movedFrom} itself, which the wildcard net.network.listen would collide with`)
      return { key: r.key, port: r.slot }
    })
    if (changed || this.file.unsaved) await this.persist()
    return out
  }

  /** Marks keys unused; their ports stay theirs until the range is exhausted. */
  async release({ keys }: { keys: readonly string[] }): Promise<void> {
    this.lifecycle.assertOpen('release()')
    if (this.slots.release(keys) || this.file.unsaved) await this.persist()
  }

  /** The port of a key, active or not. */
  lookup(key: string): number | undefined {
    return this.slots.lookup(key)
  }

  list(): NetworkPortEntry[] {
    return this.slots.entries().map(({ key, slot, active }) => ({ key, port: slot, active }))
  }

  async close(): Promise<void> {
    await this.file.settled()
    this.lifecycle.close()
  }

  /** Writes the state file again, changed or not (it was removed under the daemon). */
  async save(): Promise<void> {
    this.lifecycle.assertOpen('save()')
    await this.persist()
  }

  private persist(): Promise<void> {
    return this.file.write(() => renderEntries({ version: 1, startPort: this.startPort }, this.slots.entries().map(({ key, slot, ...rest }) => ({ key, port: slot, ...rest }))))
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
