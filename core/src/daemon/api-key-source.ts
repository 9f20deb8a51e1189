import type { Logger } from '../contracts/logger.js'
import { formatError } from '../errors/ngrokd-error.js'
import { apiKeyFilePath, checkApiKey, readApiKeyFile, saveApiKeyFile } from './api-key-file.js'

/**
 * What to do when the API refused the key from `source` (an `ApiKeySource.source`): a configured key
 * wins at every start, so it must be corrected where it is set; `set-api-key` replaces it until then.
 */
export function refusedKeyHint(source: string, setKeyCommand = 'ngrokd set-api-key'): string {
  const handOver = `hand the running daemon a valid one with \`${setKeyCommand}\``
  const configured = source.startsWith('environment variable ') || source.startsWith('api.key')
  return configured ? `correct the key in ${source} (it wins at every start) and restart, or ${handOver} until then` : handOver
}

/**
 * Where the daemon's ngrok API key comes from: a key handed over the control socket, else `api.key`
 * (config or NGROK_API_KEY), else `state_dir/api-key`. `get()` waits while there is none; `set()`
 * saves a new one (0600) and wakes the waiter; `forget()` drops a key the API refused so the next
 * `get()` waits for a new one.
 */
export class ApiKeySource {
  private override?: string
  private waiter?: (key: string) => void
  /** Where the key last handed out came from, for `status`. */
  source: string
  /** The key last handed out (trimmed): a reload that sets `api.key` to it changes nothing. */
  inUse?: string
  /** The configured key hides a different saved one, and the log said so. */
  private shadowWarned = false
  /** What `state_dir/api-key` holds as far as this daemon knows (it read it, or set() wrote it), to write it again. */
  private savedKey?: string

  constructor(
    private readonly options: {
      configured?: string
      /** Where `configured` came from (`environment variable NGROK_API_KEY`, `api.key in FILE`). */
      configuredOrigin?: string
      stateDir: string
      logger: Logger
      signal: AbortSignal
      /** The command that hands this daemon a key (`ngrokd set-api-key --instance work`): for the hints. */
      setKeyCommand?: string
    },
  ) {
    this.source = `none yet: run \`${this.setKeyCommand}\``
  }

  /** The command that hands this daemon a key, with what it takes to reach this daemon. */
  get setKeyCommand(): string {
    return this.options.setKeyCommand ?? 'ngrokd set-api-key'
  }

  /** The key to use; waits (logging once) until one is set. Resolves '' when the daemon stops first. */
  async get(onWaiting: () => void): Promise<string> {
    const { configured, configuredOrigin, stateDir, logger } = this.options
    let key = this.override ?? configured
    let source = this.override !== undefined ? 'ngrokd set-api-key' : (configuredOrigin ?? 'api.key')
    if (key === undefined) {
      try {
        const saved = await readApiKeyFile(stateDir, { tighten: true, onTightened: (path, mode) => logger.warn({ path, mode: mode.toString(8) }, `the API key file ${path} was readable by others (mode ${mode.toString(8)}); set it to 0600`) })
        key = saved === undefined ? undefined : checkApiKey(saved, `the key in ${apiKeyFilePath(stateDir)}`)
        this.savedKey = key
        source = `${stateDir}/api-key (saved by ngrokd set-api-key)`
      } catch (e) {
        logger.error({ err: e }, `the saved API key is not usable: ${formatError(e)}`)
      }
    }
    if (this.override === undefined && configured?.trim()) {
      // a key of no API key's shape is never sent: the API would refuse it every 5 minutes
      try {
        checkApiKey(configured, `the API key from ${source}`, this.setKeyCommand)
      } catch (e) {
        onWaiting()
        this.source = `${source}, which is not an API key: waiting for \`${this.setKeyCommand}\``
        logger.error({ err: e }, `${formatError(e)}; waiting for a key from \`${this.setKeyCommand}\` (or fix ${source} and restart)`)
        return this.wait()
      }
    }
    if (key !== undefined && this.override === undefined && !this.shadowWarned) {
      // NGROK_API_KEY (or api.key) beats a key saved by set-api-key: say so, not silently
      const saved = await readApiKeyFile(stateDir, { tighten: true }).catch(() => undefined)
      if (saved !== undefined && saved.trim() !== key.trim()) {
        this.shadowWarned = true
        logger.warn(`using the API key from ${source}; the one saved by \`ngrokd set-api-key\` in ${stateDir} is not used while that is set`)
      }
    }
    if (key?.trim()) {
      this.source = source
      this.inUse = key.trim()
      return this.inUse
    }
    onWaiting()
    logger.warn(`no ngrok API key configured: waiting for one. Run \`${this.setKeyCommand}\` (or set NGROK_API_KEY / api.key)`)
    return this.wait()
  }

  /**
   * Drops the key handed over the socket (the API refused it) and waits for a new one; after `retryMs`, resolves
   * with the configured or saved key again (a refusal may pass: a key just made, an API fault), unless there is none.
   */
  forgetAndWait(retryMs: number): Promise<string> {
    this.override = undefined
    const { signal } = this.options
    return new Promise<string>((resolve) => {
      const settle = (key: string | Promise<string>): void => {
        clearTimeout(timer)
        signal.removeEventListener('abort', stopped) // one wait per refusal: nothing of it stays on the signal
        this.waiter = undefined
        resolve(key)
      }
      const stopped = (): void => settle('')
      // a key handed over while the saved one is read wins over what the read found
      const timer = setTimeout(() => settle(this.get(() => {}).then((key) => this.override ?? key)), retryMs)
      this.waiter = settle
      signal.addEventListener('abort', stopped, { once: true })
    })
  }

  /** Validates, saves (0600) and uses `key`; wakes a waiting registration. */
  async set(key: unknown): Promise<{ ok: true; saved: string }> {
    const checked = checkApiKey(key)
    const path = await saveApiKeyFile(this.options.stateDir, checked)
    this.savedKey = checked
    this.override = checked
    this.source = 'ngrokd set-api-key'
    this.inUse = checked
    this.options.logger.info({ file: path }, 'API key saved')
    const waiter = this.waiter
    this.waiter = undefined
    waiter?.(checked)
    return { ok: true, saved: path }
  }

  /** Writes the saved key again (the state dir was removed under the daemon); false when none was saved. */
  async saveAgain(): Promise<boolean> {
    if (this.savedKey === undefined) return false
    await saveApiKeyFile(this.options.stateDir, this.savedKey)
    return true
  }

  private wait(): Promise<string> {
    return new Promise<string>((resolve) => {
      this.waiter = resolve
      this.options.signal.addEventListener('abort', () => resolve(''), { once: true })
    })
  }
}
