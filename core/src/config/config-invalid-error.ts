import { NgrokdError, type NgrokdErrorOptions } from '../errors/ngrokd-error.js'

/** One problem with one key. */
export interface ConfigIssue {
  /** The key as the user wrote it: `net.subnet`, or a legacy name such as `server.log_level`. */
  key: string
  /** What is wrong and what is expected, starting with the value: `"10.107.0.1/16" has host bits set; expected …`. */
  message: string
  /** The file the value came from. */
  file?: string
  /** The environment variable the value came from. */
  env?: string
}

/** Where a key's value was written: the key as the user wrote it, and the file or environment variable it came from. */
export type ConfigOrigin = Omit<ConfigIssue, 'message'>

function describeIssue(issue: ConfigIssue): string {
  return issue.env ? `environment variable ${issue.env} (${issue.key}): ${issue.message}` : `${issue.key}: ${issue.message}`
}

/**
 * The configuration has one or more bad values. The message names where they came from and lists every
 * issue, one a line; `issues` holds them for programs (`ngrokd doctor`). A plugin's options found bad keep the
 * plugin's code (`code: 'NGROKD_ERR_PLUGIN_INVALID'`, docs/errors.md), said in the same shape.
 */
export class ConfigInvalidError<C extends 'NGROKD_ERR_CONFIG_INVALID' | 'NGROKD_ERR_PLUGIN_INVALID' = 'NGROKD_ERR_CONFIG_INVALID'> extends NgrokdError<C> {
  override name = 'ConfigInvalidError'
  readonly issues: readonly ConfigIssue[]

  constructor(issues: ConfigIssue[], { code, ...options }: NgrokdErrorOptions & { code?: C } = {}) {
    const files = [...new Set(issues.flatMap((i) => (i.file && !i.env ? [i.file] : [])))]
    const places = [...files, ...(issues.some((i) => i.env) ? ['the environment'] : [])]
    const header = `invalid configuration${places.length ? ` in ${places.join(' and ')}` : ''}`
    super(code ?? ('NGROKD_ERR_CONFIG_INVALID' as C), [`${header}:`, ...issues.map((i) => `  ${describeIssue(i)}`)].join('\n'), {
      hint: 'fix the keys listed; every key, its default and its form are documented in config.schema.json of @ngrokd/core',
      ...options,
    })
    this.issues = issues
  }
}
