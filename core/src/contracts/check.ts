/**
 * One line of `ngrokd doctor`. Every contract's `diagnose()` returns these.
 * `fail` means ngrokd cannot work as configured; `warn` means it works with a caveat.
 */
export interface Check {
  /** Stable id, `<area>.<what>`, e.g. `linux-netlink.dummy-kind`. */
  id: string
  status: 'ok' | 'warn' | 'fail' | 'skip'
  summary: string
  /** How to fix it, when status is `warn` or `fail`. */
  hint?: string
  /** The NgrokdError code behind a failure, if any. */
  code?: string
}
