import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from '../contracts/logger.js'
import { NgrokdError } from '../errors/ngrokd-error.js'
import { writeFileAtomic } from '../util/atomic-file.js'

/** The file in `state_dir` that `set-api-key` writes (0600). */
export const API_KEY_FILE = 'api-key'

/** What an ngrok API key looks like (the dashboard's keys, and test keys of the simulator). */
const API_KEY_SHAPE = /^[A-Za-z0-9_\-]{8,512}$/

/**
 * Where the daemon's ngrok API key comes from: a key handed over the control socket, else `api.key`
 * (config or NGROK_API_KEY), else `state_dir/api-key`. `get()` waits while there is none; `set()`
 * saves a new one (0600) and wakes the waiter; `forget()` drops a key the API refused so the next
 * `get()` waits for a new one.
 */
export class ApiKeySource {
  private override?: string
  private waiter?: (key: string) => void

  constructor(
    private readonly options: { configured?: string; stateDir: string; logger: Logger; signal: AbortSignal },
  ) {}

  /** The key to use; waits (logging once) until one is set. Resolves '' when the daemon stops first. */
  async get(onWaiting: () => void): Promise<string> {
    const { configured, stateDir, logger } = this.options
    const key = this.override ?? configured ?? (await readFile(join(stateDir, API_KEY_FILE), 'utf8').catch(() => ''))
    if (key.trim()) return key.trim()
    onWaiting()
    logger.warn('no ngrok API key configured: waiting for one. Run `ngrokd set-api-key` (or set NGROK_API_KEY / api.key)')
    return this.wait()
  }

  /** Drops the key handed over the socket (the API refused it) and waits for a new one. */
  forgetAndWait(): Promise<string> {
    this.override = undefined
    return this.wait()
  }

  /** Validates, saves (0600) and uses `key`; wakes a waiting registration. */
  async set(key: unknown): Promise<{ ok: true; saved: string }> {
    if (typeof key !== 'string' || !API_KEY_SHAPE.test(key.trim())) {
      throw new NgrokdError('NGROKD_ERR_API_KEY_MISSING', 'that does not look like an ngrok API key', { hint: 'copy the key from the ngrok dashboard (API Keys)' })
    }
    const path = join(this.options.stateDir, API_KEY_FILE)
    await writeFileAtomic(path, `${key.trim()}\n`, { mode: 0o600 })
    this.override = key.trim()
    this.options.logger.info({ file: path }, 'API key saved')
    const waiter = this.waiter
    this.waiter = undefined
    waiter?.(key.trim())
    return { ok: true, saved: path }
  }

  private wait(): Promise<string> {
    return new Promise<string>((resolve) => {
      this.waiter = resolve
      this.options.signal.addEventListener('abort', () => resolve(''), { once: true })
    })
  }
}
