import { access, constants } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { Check } from '../contracts/check.js'
import type { Logger } from '../contracts/logger.js'
import { pathExists, type StateFileLocation } from '../util/atomic-file.js'
import { JsonStateFile, renderEntries } from '../util/json-state-file.js'
import { isIpv4 } from '../util/ipv4.js'
import { MemoryAllocator, type AllocatorState } from './memory-allocator.js'

/** `stateDir` puts the file at `<stateDir>/allocations.json`. */
export type PersistentAllocatorOptions = StateFileLocation & { logger?: Logger }

/** File name used when only a state directory is given. */
export const ALLOCATIONS_FILE = 'allocations.json'

/**
 * {@link MemoryAllocator} whose state survives restarts: the same hostname gets the same address
 * back. The state file is replaced atomically and fsync'd once per changing batch. A file that
 * cannot be parsed is moved aside to `<stateFile>.corrupt-<time>` with a warning, and allocation
 * starts afresh.
 *
 * ```ts
 * const alloc = new PersistentAllocator({ stateFile: '/var/lib/ngrokd/allocations.json', logger })
 * await alloc.open({ subnet: '10.107.0.0/16', reserved: ['10.107.0.1'] })
 * const results = await alloc.allocate({ hostnames: ['api.prod', 'db.prod'] }) // one write
 * ```
 */
export class PersistentAllocator extends MemoryAllocator {
  override readonly allocator: string = 'persistent'
  readonly stateFile: string
  private readonly file: JsonStateFile<AllocatorState>

  constructor(options: PersistentAllocatorOptions) {
    super({ logger: options.logger })
    this.stateFile = options.stateFile ?? join(options.stateDir, ALLOCATIONS_FILE)
    this.file = new JsonStateFile({ path: this.stateFile, what: 'allocator', check: checkState, consequence: 'hostnames will get new addresses', logger: this.logger })
  }

  override async close(): Promise<void> {
    await this.file.settled()
    await super.close()
  }

  override async diagnose(): Promise<Check[]> {
    const checks = await super.diagnose()
    // The directory is created on the first write: check the nearest one that exists.
    let dir = dirname(this.stateFile)
    while (dirname(dir) !== dir && !(await pathExists(dir))) dir = dirname(dir)
    try {
      await access(dir, constants.W_OK)
      checks.push({ id: 'allocator.state-file', status: 'ok', summary: `allocations are kept in ${this.stateFile}` })
    } catch (e) {
      checks.push({
        id: 'allocator.state-file',
        status: 'fail',
        summary: `cannot write ${dir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
        hint: 'run ngrokd as root or point state_dir at a writable directory',
        code: 'NGROKD_ERR_STATE',
      })
    }
    return checks
  }

  protected override persist(): Promise<void> {
    return this.file.write(() => {
      const { version, subnet, entries } = this.snapshot()
      return renderEntries({ version, subnet }, entries)
    })
  }

  protected override hasUnsavedChanges(): boolean {
    return this.file.unsaved
  }

  protected override loadState(): Promise<AllocatorState | undefined> {
    return this.file.read()
  }
}

/** Why `v` is not an {@link AllocatorState}, or undefined. */
function checkState(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null) return 'not an object'
  const s = v as Record<string, unknown>
  if (s.version !== 1) return `unknown version ${JSON.stringify(s.version)}`
  if (typeof s.subnet !== 'string') return 'no subnet'
  if (!Array.isArray(s.entries)) return 'no entries'
  const hosts = new Set<string>()
  const addrs = new Set<string>()
  for (const [i, e] of s.entries.entries()) {
    if (typeof e !== 'object' || e === null) return `entry ${i} is not an object`
    const { hostname, address, active, released } = e as Record<string, unknown>
    if (typeof hostname !== 'string' || hostname === '') return `entry ${i} has no hostname`
    if (typeof address !== 'string' || !isIpv4(address)) return `entry ${i} has no ipv4 address`
    if (typeof active !== 'boolean') return `entry ${i} has no active flag`
    if (released !== undefined && (typeof released !== 'number' || !Number.isFinite(released))) return `entry ${i} has a bad released order`
    if (hosts.has(hostname)) return `hostname ${hostname} appears twice`
    if (addrs.has(address)) return `address ${address} appears twice`
    hosts.add(hostname)
    addrs.add(address)
  }
  return undefined
}
