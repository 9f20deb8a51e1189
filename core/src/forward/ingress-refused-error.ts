import { NgrokdError } from '../errors/ngrokd-error.js'

/**
 * The binding ingress answered a ConnRequest with a non-empty `error_code` or `error_message`
 * (PROTOCOL.md §4.3). `ngrokCode` is ngrok's code (`ERR_NGROK_<n>`), possibly empty.
 */
export class IngressRefusedError extends NgrokdError<'NGROKD_ERR_INGRESS_REFUSED'> {
  override name = 'IngressRefusedError'
  constructor(
    readonly hostname: string,
    readonly port: number,
    readonly ngrokCode: string,
    readonly ngrokMessage: string,
  ) {
    const what = [ngrokCode, ngrokMessage].filter(Boolean).join(': ')
    const page = /^ERR_NGROK_\d+$/i.test(ngrokCode) ? `https://ngrok.com/docs/errors/${ngrokCode.toLowerCase()}` : undefined
    super('NGROKD_ERR_INGRESS_REFUSED', `binding ingress refused ${hostname}:${port}: ${what || 'no reason given'}`, {
      hint: page
        ? `see ${page}`
        : 'check that the endpoint still exists and is bound to this operator (ngrokd status)',
    })
  }
}
