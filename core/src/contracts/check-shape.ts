import type { Check } from './check.js'
import type { NgrokdErrorCode } from '../errors/codes.js'

/** The statuses a {@link Check} may have (contracts/check.ts). */
export const CHECK_STATUSES: ReadonlySet<string> = new Set(['ok', 'warn', 'fail', 'skip'])

/**
 * What is wrong with a check a plugin or driver handed over, or undefined when it has a {@link Check}'s shape: a
 * non-empty string id and summary, a known status, and a hint and code that are strings when given. The doctor
 * prints only checks of this shape (the conformance kit asks more of them).
 */
export function checkShapeProblem(c: unknown): string | undefined {
  if (typeof c !== 'object' || c === null || Array.isArray(c)) return `${describe(c)} is not a check object`
  const { id, status, summary, hint, code } = c as Partial<Record<keyof Check, unknown>>
  if (typeof id !== 'string' || id === '') return `a check without a string id (${describe(c)})`
  if (typeof status !== 'string' || !CHECK_STATUSES.has(status)) return `check ${id} has status ${describe(status)}, not ok, warn, fail or skip`
  if (typeof summary !== 'string' || summary === '') return `check ${id} has no summary`
  if (hint !== undefined && typeof hint !== 'string') return `check ${id} has a hint that is not a string`
  if (code !== undefined && typeof code !== 'string') return `check ${id} has a code that is not a string`
  return undefined
}

/**
 * The checks `from` handed over, each that is not a {@link Check} replaced by a failing one of `id` saying what is
 * wrong: the doctor prints every line it gets, and one without an id or summary would stop it.
 */
export function wellFormedChecks(checks: unknown, id: string, from: string, code: NgrokdErrorCode = 'NGROKD_ERR_PLUGIN_FAILED'): Check[] {
  const hint = "its author's to fix: a check is { id, status: ok | warn | fail | skip, summary, hint?, code? }"
  if (!Array.isArray(checks)) return [{ id, status: 'fail', summary: `${from} gave ${describe(checks)}, not an array of checks`, code, hint }]
  return checks.map((c: unknown) => {
    const problem = checkShapeProblem(c)
    return problem === undefined ? (c as Check) : { id, status: 'fail', summary: `${from} gave a malformed check: ${problem}`, code, hint }
  })
}

function describe(value: unknown): string {
  try {
    return (JSON.stringify(value) ?? String(value)).slice(0, 80)
  } catch {
    return String(value).slice(0, 80)
  }
}
