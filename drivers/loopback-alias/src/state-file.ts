import { readdir, readFile, unlink } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { NgrokdError, PermissionError, writeFileAtomic } from '@ngrokd/core/driver'

/** What the driver keeps in `<stateDir>/loopback-alias-<name>.json`. */
export interface LoopbackAliasState {
  version: 1
  driver: 'loopback-alias'
  /** `net.interface_name`: one state file per name. */
  name: string
  /** The subnet the addresses come from (always inside 127.0.0.0/8). */
  subnet: string
  /** Linux: the addresses held. macOS: empty (lo0 itself is read instead). */
  addresses: string[]
}

export type StateRead = { kind: 'missing' } | { kind: 'ok'; state: LoopbackAliasState } | { kind: 'unreadable'; reason: string }

/**
 * The driver's state file. Its existence is what "the interface exists" means for this driver:
 * `open()` adopts it, `close({ removeInterface: true })` deletes it.
 */
export class StateFile {
  readonly path: string
  constructor(
    readonly stateDir: string,
    readonly name: string,
  ) {
    this.path = join(stateDir, `loopback-alias-${name}.json`)
  }

  async read(): Promise<StateRead> {
    let text: string
    try {
      text = await readFile(this.path, 'utf8')
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' }
      throw this.#error('read', e)
    }
    try {
      const state = JSON.parse(text) as Partial<LoopbackAliasState>
      if (state.version !== 1 || state.driver !== 'loopback-alias' || typeof state.subnet !== 'string' || !Array.isArray(state.addresses)) {
        return { kind: 'unreadable', reason: 'not a loopback-alias state file of version 1' }
      }
      return { kind: 'ok', state: state as LoopbackAliasState }
    } catch (e) {
      return { kind: 'unreadable', reason: (e as Error).message }
    }
  }

  async write(state: LoopbackAliasState): Promise<void> {
    try {
      await writeFileAtomic(this.path, `${JSON.stringify(state, null, 2)}\n`)
    } catch (e) {
      throw this.#error('write', e)
    }
  }

  async remove(): Promise<void> {
    try {
      await unlink(this.path)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw this.#error('remove', e)
    }
  }

  /** Deletes temp files a crash left between write and rename; returns how many. */
  async removeStaleTemps(): Promise<number> {
    const prefix = `.${basename(this.path)}.`
    let names: string[]
    try {
      names = await readdir(this.stateDir)
    } catch {
      return 0
    }
    const stale = names.filter((n) => n.startsWith(prefix) && n.endsWith('.tmp'))
    await Promise.all(stale.map((n) => unlink(join(this.stateDir, n)).catch(() => {})))
    return stale.length
  }

  #error(action: string, cause: unknown): NgrokdError {
    const code = (cause as NodeJS.ErrnoException).code
    const message = `loopback-alias: cannot ${action} ${this.path}: ${code ?? (cause as Error).message}`
    if (code === 'EACCES' || code === 'EPERM') return new PermissionError(message, { cause, hint: `make ${this.stateDir} writable by the user running ngrokd (state_dir)` })
    return new NgrokdError('NGROKD_ERR_STATE', message, { cause, hint: `check state_dir (${this.stateDir})` })
  }
}
