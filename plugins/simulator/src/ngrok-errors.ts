import { IdGenerator } from './ids.js'

/**
 * ngrok error codes the simulator answers with. The ones PROTOCOL.md or ngrok's public error
 * pages name are marked `documented`; the others are the simulator's own pick for a case ngrok
 * does not document, chosen so clients must handle codes generically.
 */
export const NGROK_ERRORS = {
  /** documented: no Authorization header. */
  authMissing: { code: 200, status: 401 },
  /** documented: Authorization header not `Bearer <key>` / `Basic …`. */
  authMalformed: { code: 201, status: 401 },
  /** documented: well-formed but unknown API key. */
  authInvalid: { code: 203, status: 401 },
  /** documented: Ngrok-Version header missing. */
  versionMissing: { code: 218, status: 400 },
  /** documented: Ngrok-Version names a version that does not exist. */
  versionInvalid: { code: 217, status: 400 },
  /** documented (PROTOCOL.md §2): rate limit. */
  rateLimited: { code: 226, status: 429 },
  /** documented (PROTOCOL.md §2): account not enabled for bindings / operator validation failed (bad CSR too). */
  operatorInvalid: { code: 19002, status: 400 },
  /** documented (PROTOCOL.md §2): a binding names an operator that does not exist (ingress refusal). */
  operatorNotFound: { code: 15010, status: 404 },
  /** documented (PROTOCOL.md §2): `host` of the binding upgrade carries a `:port`. */
  badBindingHost: { code: 706, status: 400 },
  /** documented (ngrok error page): the endpoint is offline / not found (ingress refusal). */
  endpointOffline: { code: 3200, status: 404 },
  /** simulator's pick: unknown id or path. */
  notFound: { code: 404, status: 404 },
  /** simulator's pick: method not allowed on a known path. */
  methodNotAllowed: { code: 405, status: 405 },
  /** simulator's pick: a malformed parameter or body. */
  badRequest: { code: 400, status: 400 },
  /** simulator's pick: injected server failure. */
  internal: { code: 500, status: 500 },
} as const

export type NgrokErrorKind = keyof typeof NGROK_ERRORS

export interface ErrorReplyBody {
  error_code: string
  status_code: number
  msg: string
  details: { operation_id: string }
}

/** An API error, rendered as ngrok's error body by the API server. */
export class ApiErrorReply extends Error {
  override name = 'ApiErrorReply'
  readonly status: number
  readonly errorCode: string
  readonly headers: Record<string, string>
  constructor(kind: NgrokErrorKind | { code: number; status: number }, message: string, headers: Record<string, string> = {}) {
    super(message)
    const e = typeof kind === 'string' ? NGROK_ERRORS[kind] : kind
    this.status = e.status
    this.errorCode = `ERR_NGROK_${e.code}`
    this.headers = headers
  }

  body(): ErrorReplyBody {
    return {
      error_code: this.errorCode,
      status_code: this.status,
      msg: this.message,
      details: { operation_id: operationId() },
    }
  }
}

const operationIds = new IdGenerator()

/** `op_` + 27 base62 characters, like ngrok's operation ids. */
export function operationId(): string {
  return operationIds.next('op')
}
