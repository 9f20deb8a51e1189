import { NgrokdError } from '../errors/ngrokd-error.js'

/**
 * The binding ingress answered a ConnRequest with a non-empty `error_code` or `error_message`
 * (PROTOCOL.md §4.3). `ngrokCode` is ngrok's code (`ERR_NGROK_<n>`), possibly empty.
 */
export class IngressRefusedError extends NgrokdError<'NGROKD_ERR_INGRESS_REFUSED'> {
  override name = 'IngressRefusedError'
  /** ngrok's code, cut to {@link MAX_CODE_CHARS}. */
  readonly ngrokCode: string
  /** ngrok's message, cut to {@link MAX_MESSAGE_CHARS}. */
  readonly ngrokMessage: string
  constructor(
    readonly hostname: string,
    readonly port: number,
    ngrokCode: string,
    ngrokMessage: string,
  ) {
    // what the ingress sends is kept (last error, log line) only this long: a ConnResponse may carry 64 KiB
    ngrokCode = cut(ngrokCode, MAX_CODE_CHARS)
    ngrokMessage = cut(ngrokMessage, MAX_MESSAGE_CHARS)
    const what = [ngrokCode, ngrokMessage].filter(Boolean).join(': ')
    const page = /^ERR_NGROK_\d+$/i.test(ngrokCode) ? `https://ngrok.com/docs/errors/${ngrokCode.toLowerCase()}` : undefined
    super('NGROKD_ERR_INGRESS_REFUSED', `binding ingress refused ${hostname}:${port}: ${what || 'no reason given'}`, {
      hint: page
        ? `see ${page}`
        : 'check that the endpoint still exists and is bound to this operator (ngrokd status)',
    })
    this.ngrokCode = ngrokCode
    this.ngrokMessage = ngrokMessage
  }
}

/** ngrok's codes are `ERR_NGROK_` and a few digits. */
const MAX_CODE_CHARS = 64
const MAX_MESSAGE_CHARS = 1024

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`
}

/** Whether `code` has the form of ngrok's error codes (`ERR_NGROK_3200`): only such a code is a key of the error counts. */
export function isNgrokErrorCode(code: string): boolean {
  return /^ERR_NGROK_\d{1,6}$/.test(code)
}
