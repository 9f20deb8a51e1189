import { constants } from 'node:fs'
import { open, rename } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { Logger } from '../contracts/logger.js'
import { NgrokdError, isNgrokdError } from '../errors/ngrokd-error.js'
import { writeStateFile } from './state-dir-guard.js'
import { notAFileError, notAFileKind, stateDirProblem } from './state-dir-problem.js'

export interface JsonStateFileOptions {
  path: string
  /** Names the owner in messages: `allocator`, `network ports`. */
  what: string
  /** Why a parsed value is not a valid state, or undefined when it is. */
  check: (value: unknown) => string | undefined
  /** What is lost when a corrupt file is dropped: `hostnames will get new addresses`. */
  consequence: string
  logger: Logger
}

/**
 * A JSON state file in `state_dir` (allocations, network ports): read once at open, replaced
 * atomically (0600, fsync'd) once per changing batch. Writes are serialised; a failed write is
 * remembered (`unsaved`) so the next batch writes even if it changes nothing. A file that cannot be
 * parsed is moved aside to `<path>.corrupt-<time>` with a warning, and the owner starts afresh.
 */
export class JsonStateFile<T> {
  private writing: Promise<void> = Promise.resolve()
  /** A write failed: the next batch must write. */
  unsaved = false

  constructor(private readonly options: JsonStateFileOptions) {}

  get path(): string {
    return this.options.path
  }

  /** The saved state; undefined when there is none or it was corrupt (then moved aside). */
  async read(): Promise<T | undefined> {
    const { path, what, check, consequence, logger } = this.options
    const cannotRead = (cause: unknown) => {
      const problem = stateDirProblem(dirname(path), cause)
      return new NgrokdError('NGROKD_ERR_STATE', `${what}: cannot read ${path}: ${problem?.why ?? (cause as NodeJS.ErrnoException).code ?? String(cause)}`, {
        cause,
        hint: problem?.hint ?? 'check the permissions of the state directory',
      })
    }
    let handle
    try {
      // O_NONBLOCK: a FIFO there is not waited on for a writer (Windows has no such flag)
      handle = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0))
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code
      if (code === 'ENOENT') return undefined
      throw code === 'EISDIR' ? this.notAFile('a directory', cause) : cannotRead(cause)
    }
    let text: string
    try {
      const st = await handle.stat()
      if (!st.isFile()) throw this.notAFile(notAFileKind(st))
      text = await handle.readFile('utf8')
    } catch (cause) {
      throw isNgrokdError(cause) ? cause : cannotRead(cause)
    } finally {
      await handle.close()
    }
    let reason: string | undefined
    try {
      const parsed: unknown = JSON.parse(text)
      reason = check(parsed)
      if (reason === undefined) return parsed as T
    } catch (e) {
      reason = `not json (${(e as Error).message})`
    }
    const aside = `${path}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`
    try {
      await rename(path, aside)
    } catch (cause) {
      throw new NgrokdError('NGROKD_ERR_STATE', `${what}: ${path} is corrupt (${reason}) and cannot be moved aside`, {
        cause,
        hint: `delete ${path}; ${consequence}`,
      })
    }
    logger.warn({ stateFile: path, movedTo: aside, reason }, `${what}: ${path} is corrupt (${reason}); moved it to ${aside} and starting afresh`)
    return undefined
  }

  /** Replaces the file with `render()`'s text, taken when this write's turn comes. */
  async write(render: () => string): Promise<void> {
    const { path, what } = this.options
    const turn = this.writing
      .catch(() => {})
      .then(async () => {
        try {
          await writeStateFile(path, render())
          this.unsaved = false
        } catch (cause) {
          this.unsaved = true
          // a folder where the file goes: the rename over it fails, and removing it is the fix
          if ((cause as NodeJS.ErrnoException).code === 'EISDIR') throw this.notAFile('a directory', cause)
          // a full or read-only disk named, with its fix (the state dir's rule: the file's folder is the state dir)
          const problem = stateDirProblem(dirname(path), cause)
          throw new NgrokdError('NGROKD_ERR_STATE', `${what}: cannot write ${path}: ${problem?.why ?? (cause as NodeJS.ErrnoException).code ?? String(cause)}`, {
            cause,
            hint: problem?.hint ?? 'check that the state directory exists, is writable by ngrokd and its disk is not full',
          })
        }
      })
    this.writing = turn
    await turn
  }

  /** A folder or a device where the file goes (`kind`, notAFileKind): not ngrokd's, and no permission fixes it; removing it does. */
  private notAFile(kind: string, cause?: unknown): NgrokdError {
    return notAFileError(this.options.what, this.options.path, kind, `ngrokd writes it anew (${this.options.consequence})`, cause)
  }

  /** Resolves when no write is in flight. */
  async settled(): Promise<void> {
    await this.writing.catch(() => {})
  }
}

/** One entry per line, so a state file diffs and greps well: `{ header…, "entries": [ one per line ] }`. */
export function renderEntries(header: Record<string, unknown>, entries: readonly unknown[]): string {
  const head = Object.entries(header).map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)},\n`).join('')
  const lines = entries.map((e) => `    ${JSON.stringify(e)}`).join(',\n')
  return `{\n${head}  "entries": [${lines ? `\n${lines}\n  ` : ''}]\n}\n`
}
