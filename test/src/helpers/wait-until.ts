export interface WaitUntilOptions {
  /** What is awaited, for the error message. */
  what: string
  /** A safety net against hanging forever, not a performance assertion. Default 30 s. */
  timeoutMs?: number
  /** Pause between attempts. Default 50 ms. */
  intervalMs?: number
}

/**
 * Calls `probe` until it returns something other than `undefined`/`false` and returns that value.
 * A probe that throws counts as "not yet"; the last error is reported if the safety timeout passes.
 *
 * ```ts
 * const line = await waitUntil(() => readHostsBlock().get('api.e2e'), { what: 'api.e2e in /etc/hosts' })
 * ```
 */
export async function waitUntil<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, options: WaitUntilOptions): Promise<T> {
  const { what, timeoutMs = 30_000, intervalMs = 50 } = options
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const value = await probe()
      if (value !== undefined && value !== false) return value
    } catch (e) {
      lastError = e
    }
    if (Date.now() >= deadline) {
      const detail = lastError instanceof Error ? `; last error: ${lastError.message}` : ''
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`)
    }
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}
