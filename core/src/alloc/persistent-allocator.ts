import { readFile, rename, access, constants } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { Check } from '../contracts/check.js'
import type { Logger } from '../contracts/logger.js'
import { NgrokdError } from '../errors/ngrokd-error.js'
import { pathExists, writeFileAtomic, type StateFileLocation } from '../util/atomic-file.js'
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
  /** Serialises writes; each write takes the state as it is when its turn comes. */
  private writing: Promise<void> = Promise.resolve()
  /** A write failed: the next batch writes even if it changes nothing. */
  private unsaved = false

  constructor(options: PersistentAllocatorOptions) {
    super({ logger: options.logger })
    this.stateFile = options.stateFile ?? join(options.stateDir, ALLOCATIONS_FILE)
  }

  override async close(): Promise<void> {
    await this.writing.catch(() => {})
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

  protected override async persist(): Promise<void> {
    const turn = this.writing.catch(() => {}).then(async () => {
      try {
        await writeFileAtomic(this.stateFile, renderState(this.snapshot()), { mode: 0o600 })
        this.unsaved = false
      } catch (cause) {
        this.unsaved = true
        throw new NgrokdError('NGROKD_ERR_STATE', `allocator: cannot write ${this.stateFile}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`, {
          cause,
          hint: 'check that the state directory exists, is writable by ngrokd and its disk is not full',
        })
      }
    })
    this.writing = turn
    await turn
  }

  protected override hasUnsavedChanges(): boolean {
    return this.unsaved
  }

  protected override async loadState(): Promise<AllocatorState | undefined> {
    let text: string
    try {
      text = await readFile(this.stateFile, 'utf8')
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw new NgrokdError('NGROKD_ERR_STATE', `allocator: cannot read ${this.stateFile}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`, {
        cause,
        hint: 'check the permissions of the state directory',
      })
    }
    let reason: string | undefined
    let state: AllocatorState | undefined
    try {
      const parsed: unknown = JSON.parse(text)
      reason = checkState(parsed)
      if (reason === undefined) state = parsed as AllocatorState
    } catch (e) {
      reason = `not json (${(e as Error).message})`
    }
    if (state) return state
    const aside = `${this.stateFile}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`
    try {
      await rename(this.stateFile, aside)
    } catch (cause) {
      throw new NgrokdError('NGROKD_ERR_STATE', `allocator: ${this.stateFile} is corrupt (${reason}) and cannot be moved aside`, {
        cause,
        hint: `delete ${this.stateFile}; hostnames will get new addresses`,
      })
    }
    this.logger.warn({ stateFile: this.stateFile, movedTo: aside, reason }, `allocator: ${this.stateFile} is corrupt (${reason}); moved it to ${aside} and starting afresh`)
    return undefined
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

/** One entry per line, so the file diffs and greps well. */
function renderState(state: AllocatorState): string {
  const entries = state.entries.map((e) => `    ${JSON.stringify(e)}`).join(',\n')
  return `{\n  "version": ${state.version},\n  "subnet": ${JSON.stringify(state.subnet)},\n  "entries": [${entries ? `\n${entries}\n  ` : ''}]\n}\n`
}
