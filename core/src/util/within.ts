import { NgrokdError } from '../errors/ngrokd-error.js'

const seconds = (ms: number): number => +(ms / 1000).toFixed(2)

export interface WithinOptions {
  /** With a stop (`signal`), the call has at most this long left, not none. */
  afterStopMs?: number
  /** The code and hint of the timeout's error. Default a plugin's: NGROKD_ERR_PLUGIN_FAILED. */
  code?: 'NGROKD_ERR_PLUGIN_FAILED' | 'NGROKD_ERR_DRIVER_FAILED'
  hint?: string
}

/**
 * Resolves or rejects as `work` does, or rejects with NGROKD_ERR_PLUGIN_FAILED (`code`) once `ms` have passed, or with
 * NGROKD_ERR_ABORTED when `signal` aborts (the daemon stops). With `afterStopMs`, an abort does not end the wait at
 * once: the call then has at most that long left (what the daemon's stop still needs of it, such as a name resolver
 * removing its names).
 */
export function within<T>(work: () => T | Promise<T>, ms: number, what: string, signal?: AbortSignal, { afterStopMs, code = 'NGROKD_ERR_PLUGIN_FAILED', hint = 'the plugin awaits something that does not come; see its documentation' }: WithinOptions = {}): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  let onAbort: (() => void) | undefined
  const timedOut = new Promise<never>((_, reject) => {
    const fail = (after: number, of = '') => reject(new NgrokdError(code, `${what} did not finish within ${seconds(after)} s${of}`, { hint }))
    const deadline = performance.now() + ms
    // kept referenced: a plugin awaiting what never comes must not let the process exit as if all were done
    timer = setTimeout(() => fail(ms), ms)
    onAbort =
      afterStopMs === undefined
        ? () => reject(new NgrokdError('NGROKD_ERR_ABORTED', `${what}: not waited for, the daemon is stopping`))
        : () => {
            if (deadline - performance.now() <= afterStopMs) return // its own bound comes first
            clearTimeout(timer)
            timer = setTimeout(() => fail(afterStopMs, ' of the daemon\'s stop'), afterStopMs)
          }
    if (signal?.aborted) onAbort()
    else signal?.addEventListener('abort', onAbort, { once: true })
  })
  return Promise.race([Promise.resolve().then(work), timedOut]).finally(() => {
    clearTimeout(timer)
    signal?.removeEventListener('abort', onAbort!)
  })
}
