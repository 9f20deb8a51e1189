import type { Check } from '../contracts/check.js'
import type { Logger } from '../contracts/logger.js'
import type { NameRecord, NameResolver, NameResolverHealth } from '../contracts/name-resolver.js'
import { formatError, isNgrokdError } from '../errors/ngrokd-error.js'
import { within } from '../util/within.js'

/**
 * How long a call to a plugin's name resolver may still take once the daemon stops (one pending then, or one the stop
 * makes): with the plugins' 5 s of `onStop`, within the 10 s `ngrokd run` gives a stop beyond its drains.
 */
export const PLUGIN_NAMES_STOP_TIMEOUT_MS = 3_000

export interface PluginNameResolverOptions {
  /** The plugin's resolver, opened. */
  own: NameResolver
  /** `<resolver> of plugin <plugin>`, for the errors. */
  what: string
  /** How long one call may take (the hook timeout). */
  timeoutMs: number
  /** The daemon's stop: a call pending then, or made after, has {@link PLUGIN_NAMES_STOP_TIMEOUT_MS} at most. */
  signal?: AbortSignal
  /** Reports the plugin degraded: its resolver threw or hung (said once; not called again). */
  failed(e: unknown): void
  /** The resolver the names go to from then on (the hosts file), opened. */
  fallback(): Promise<NameResolver>
  logger: Logger
}

/**
 * A plugin's name resolver as the daemon uses it. Every call is bounded as its `open()` was (a call still pending
 * after the hook timeout counts as a throw), and the first call that throws or hangs ends its use: the plugin is
 * reported degraded, its resolver is closed once its calls have settled, and that call and every later one go to the
 * fallback (the hosts file), as when its `open()` fails. `NGROKD_ERR_NAMES_FROZEN` is the contract's own refusal
 * (names published stay), and a call the caller aborts is the caller's: neither is a failure.
 */
export class PluginNameResolver implements NameResolver {
  #failed = false
  #replacement?: NameResolver
  #switching?: Promise<NameResolver>
  /** Calls to the plugin's resolver not settled yet: it is closed after them. */
  readonly #pending = new Set<Promise<unknown>>()

  constructor(private readonly options: PluginNameResolverOptions) {}

  get resolver(): string {
    return this.#replacement?.resolver ?? this.options.own.resolver
  }

  /** Opened by the plugin host before it is handed out (the fallback opens itself): again only while in use. */
  async open(options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.#call('open()', (own, signal) => own.open({ signal }), async () => {}, options.signal)
  }

  publish({ records, signal }: { records: readonly NameRecord[]; signal?: AbortSignal }): Promise<{ changed: boolean }> {
    return this.#call('publish()', (own, bound) => own.publish({ records, signal: bound }), (r) => r.publish({ records, ...(signal ? { signal } : {}) }), signal)
  }

  list(): Promise<NameRecord[]> {
    return this.#call('list()', (own) => own.list(), (r) => r.list())
  }

  /** Closes what is in use; a close() of the plugin's that throws or hangs is reported, and the stop goes on. */
  async close(): Promise<void> {
    if (this.#failed) {
      await (await this.#switching?.catch(() => undefined))?.close()
      return
    }
    this.#failed = true // nothing is called after close()
    try {
      await within(() => this.options.own.close(), this.options.timeoutMs, `close() of name resolver ${this.options.what}`, this.options.signal, { afterStopMs: PLUGIN_NAMES_STOP_TIMEOUT_MS })
    } catch (e) {
      this.options.failed(e)
    }
  }

  diagnose(): Promise<Check[]> {
    if (this.#failed) return this.#replacement?.diagnose() ?? Promise.resolve([])
    return within(() => this.options.own.diagnose(), this.options.timeoutMs, `diagnose() of name resolver ${this.options.what}`)
  }

  health(): NameResolverHealth {
    const inUse = this.#failed ? this.#replacement : this.options.own
    return inUse?.health?.() ?? { state: 'ok' }
  }

  /** `work` on the plugin's resolver, bounded; once it failed (now or before), `instead` on the fallback. */
  async #call<T>(what: string, work: (own: NameResolver, signal: AbortSignal) => Promise<T>, instead: (fallback: NameResolver) => Promise<T>, asked?: AbortSignal): Promise<T> {
    if (this.#failed) return instead(await this.#fallback())
    const abort = new AbortController()
    const passOn = () => abort.abort(asked?.reason)
    asked?.addEventListener('abort', passOn, { once: true })
    const call = Promise.resolve().then(() => work(this.options.own, abort.signal))
    this.#pending.add(call)
    const settled = () => void this.#pending.delete(call)
    call.then(settled, settled)
    try {
      return await within(() => call, this.options.timeoutMs, `${what} of name resolver ${this.options.what}`, this.options.signal, { afterStopMs: PLUGIN_NAMES_STOP_TIMEOUT_MS })
    } catch (e) {
      if (asked?.aborted || isNgrokdError(e, 'NGROKD_ERR_NAMES_FROZEN')) throw e
      abort.abort(e) // a hung call is told to give up
      this.#fail(e)
      return instead(await this.#fallback())
    } finally {
      asked?.removeEventListener('abort', passOn)
    }
  }

  /** Once: the plugin is reported, and its resolver closed once every call of its has settled, late or not. */
  #fail(e: unknown): void {
    if (this.#failed) return
    this.#failed = true
    this.options.failed(e)
    const own = this.options.own
    void Promise.allSettled([...this.#pending])
      .then(() => own.close())
      .catch((err: unknown) => this.options.logger.debug({ err }, `name resolver ${this.options.what}: close() after it failed failed too: ${formatError(err)}`))
  }

  /** The fallback, opened once; one that fails to open is tried again at the next call. */
  #fallback(): Promise<NameResolver> {
    this.#switching ??= this.options.fallback().then(
      (r) => (this.#replacement = r),
      (e: unknown) => {
        this.#switching = undefined
        throw e
      },
    )
    return this.#switching
  }
}
