// Kept apart from api-key-file.ts, which every CLI command loads: this one brings the API client, loaded by the
// daemon and by `set-api-key` when no daemon runs.
import { NgrokdError, formatError } from '../errors/ngrokd-error.js'
import type { Logger } from '../contracts/logger.js'
import { NgrokApiClient } from '../api/ngrok-api-client.js'
import { isNgrokApiError } from '../api/ngrok-api-error.js'
import { USER_AGENT } from '../version.js'
import { apiKeyCheckTimeoutMs } from './api-key-file.js'

/**
 * Shows `key` to the ngrok API at `api.url` once (one attempt, at most {@link apiKeyCheckTimeoutMs}): throws when the API
 * refuses it (401/403: not to be saved), resolves undefined when it accepted it, or why it could not be asked (down,
 * out of reach: the caller saves it and says it is unverified). What `set-api-key` does before a key is saved, through
 * the running daemon or, with none running, itself.
 */
export async function askApiAboutKey(key: string, api: { url: string; timeoutMs: number }, logger: Logger, signal?: AbortSignal): Promise<string | undefined> {
  const probe = new NgrokApiClient({ baseUrl: api.url, apiKey: key, logger, userAgent: USER_AGENT, timeoutMs: apiKeyCheckTimeoutMs(api.timeoutMs), maxRetries: 0, ...(signal ? { signal } : {}) })
  try {
    await probe.listOperators()
    return undefined
  } catch (e) {
    if (isNgrokApiError(e, 401) || isNgrokApiError(e, 403)) {
      throw new NgrokdError('NGROKD_ERR_API', `the ngrok API refused this key (HTTP ${e.status}): it was not saved`, { cause: e, ...(e.hint ? { hint: e.hint } : {}) })
    }
    return formatError(e).split('\n')[0]
  }
}
