import { NgrokdError, type NgrokdErrorOptions } from '../errors/index.js'

export interface NgrokApiErrorInit {
  method: string
  /** Path and query of the request, e.g. `/kubernetes_operators/k8sop_…`. */
  path: string
  status: number
  /** `ERR_NGROK_226`; absent when ngrok sent none (unrouted 404, a proxy's HTML page). */
  ngrokCode?: string
  /** ngrok's `msg`, or a short excerpt of a body that was not ngrok JSON. Already redacted. */
  ngrokMessage: string
  operationId?: string
  /** From a `Retry-After` header, when the reply had one. */
  retryAfterMs?: number
}

/** `https://ngrok.com/docs/errors/err_ngrok_<n>` (PROTOCOL.md §2). */
export function ngrokDocsUrl(ngrokCode: string): string | undefined {
  return /^ERR_NGROK_\d+$/i.test(ngrokCode) ? `https://ngrok.com/docs/errors/${ngrokCode.toLowerCase()}` : undefined
}

function hintFor(init: NgrokApiErrorInit, docsUrl: string | undefined): string | undefined {
  const docs = docsUrl ? `; see ${docsUrl}` : ''
  if (init.status === 401 || init.status === 403) {
    return `check the ngrok API key: it must be an API key (not an agent authtoken) of the account that owns the endpoints, from https://dashboard.ngrok.com/api-keys${docs}`
  }
  if (init.status === 429 || init.ngrokCode === 'ERR_NGROK_226') {
    return `the account's API rate limit (120 requests a minute) is shared with every tool using it; poll less often or stop other API clients${docs}`
  }
  if (init.ngrokCode === 'ERR_NGROK_19002') {
    return `the account must be enabled for kubernetes bindings; check the account's plan and the operator registration${docs}`
  }
  if (init.ngrokCode === 'ERR_NGROK_15010') return `the operator registration is gone; ngrokd registers again at its next poll${docs}`
  return docsUrl ? `see ${docsUrl}` : undefined
}

/**
 * The ngrok API answered with an error status. `status` is the HTTP status, `ngrokCode` ngrok's
 * `error_code`, `ngrokMessage` its `msg` (with the API key redacted: ngrok quotes a rejected key back).
 */
export class NgrokApiError extends NgrokdError<'NGROKD_ERR_API'> {
  override name = 'NgrokApiError'
  readonly method: string
  readonly path: string
  readonly status: number
  readonly ngrokCode?: string
  readonly ngrokMessage: string
  readonly operationId?: string
  readonly docsUrl?: string
  readonly retryAfterMs?: number

  constructor(init: NgrokApiErrorInit, options: NgrokdErrorOptions = {}) {
    const docsUrl = init.ngrokCode ? ngrokDocsUrl(init.ngrokCode) : undefined
    const tag = [init.ngrokCode, `HTTP ${init.status}`].filter(Boolean).join(', ')
    super('NGROKD_ERR_API', `ngrok api: ${init.method} ${init.path}: ${init.ngrokMessage} (${tag})`, {
      hint: hintFor(init, docsUrl),
      ...options,
    })
    this.method = init.method
    this.path = init.path
    this.status = init.status
    if (init.ngrokCode) this.ngrokCode = init.ngrokCode
    this.ngrokMessage = init.ngrokMessage
    if (init.operationId) this.operationId = init.operationId
    if (docsUrl) this.docsUrl = docsUrl
    if (init.retryAfterMs !== undefined) this.retryAfterMs = init.retryAfterMs
  }
}

/** True for an {@link NgrokApiError} (checked by code and fields, so it works across copies of core). */
export function isNgrokApiError(e: unknown, status?: number): e is NgrokApiError {
  return (
    e instanceof Error &&
    (e as { code?: unknown }).code === 'NGROKD_ERR_API' &&
    typeof (e as { status?: unknown }).status === 'number' &&
    (status === undefined || (e as unknown as { status: number }).status === status)
  )
}
