import { NgrokdError } from '../errors/ngrokd-error.js'

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** Longest delay setTimeout honours: a larger one fires at once (Node docs, timers: "delay ... 2147483647"). */
export const MAX_DURATION_MS = 2 ** 31 - 1

export const DURATION_EXPECTED = 'a duration such as 10s, 500ms, 2m, 1h or 1m30s, or a number of seconds'

const SECONDS = /^\d+(?:\.\d+)?$/
const WHOLE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g

/** Either milliseconds or why `value` is not a duration (the phrase after the value). @internal */
export function checkDuration(value: unknown): { ms: number } | { problem: string } {
  let ms: number
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) return { problem: 'is not a duration' }
    ms = value * 1000
  } else if (typeof value === 'string') {
    const text = value.trim()
    if (SECONDS.test(text)) ms = Number(text) * 1000
    else if (WHOLE.test(text)) {
      ms = 0
      for (const [, amount, unit] of text.matchAll(PART)) ms += Number(amount) * UNIT_MS[unit!]!
    } else return { problem: 'is not a duration' }
  } else return { problem: 'is not a duration' }
  ms = Math.round(ms)
  if (ms > MAX_DURATION_MS) return { problem: 'is too long (at most 596h)' }
  return { ms }
}

/**
 * Parses a duration into milliseconds: `500ms`, `10s`, `2m`, `1h`, combinations such as `1m30s`, or a
 * bare number (or numeric string) of seconds. Fractions are allowed (`1.5s`); the result is rounded to
 * whole milliseconds. `key` names the setting in the error.
 *
 * ```ts
 * parseDuration('1m30s') // 90000
 * parseDuration(10)      // 10000
 * ```
 * @throws NgrokdError `NGROKD_ERR_CONFIG_INVALID` naming the key, the value and the expected form.
 */
export function parseDuration(value: string | number, options: { key?: string } = {}): number {
  const checked = checkDuration(value)
  if ('ms' in checked) return checked.ms
  const prefix = options.key ? `${options.key}: ` : ''
  throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `${prefix}${JSON.stringify(value)} ${checked.problem}; expected ${DURATION_EXPECTED}`, {
    hint: 'write it like 10s, 500ms, 2m or 1m30s',
  })
}
