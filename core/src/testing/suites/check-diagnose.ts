import assert from 'node:assert/strict'
import type { Check } from '../../contracts/check.js'
import { errorCodes } from '../../errors/codes.js'
import { CHECK_STATUSES } from '../../contracts/check-shape.js'

const CHECK_ID = /^[a-z][a-z0-9-]*(\.[a-z0-9-]+)+$/

/** Asserts `diagnose()` resolves to well-formed `Check`s (see `contracts/check.ts`). */
export async function checkDiagnose(diagnose: () => Promise<Check[]>, what: string): Promise<Check[]> {
  const checks = await diagnose()
  assert.ok(Array.isArray(checks), `${what} must resolve to an array`)
  for (const c of checks) {
    assert.match(c.id, CHECK_ID, `${what}: check id ${JSON.stringify(c.id)} must be <area>.<what>`)
    assert.ok(CHECK_STATUSES.has(c.status), `${what}: check ${c.id} has status ${JSON.stringify(c.status)}`)
    assert.ok(typeof c.summary === 'string' && c.summary.length > 0, `${what}: check ${c.id} has no summary`)
    if (c.hint !== undefined) assert.equal(typeof c.hint, 'string', `${what}: check ${c.id} hint`)
    if (c.code !== undefined) assert.ok(Object.hasOwn(errorCodes, c.code), `${what}: check ${c.id} names code ${c.code}, which is not in errorCodes`)
  }
  const ids = checks.map((c) => c.id)
  assert.equal(new Set(ids).size, ids.length, `${what}: check ids repeat: ${ids.join(', ')}`)
  return checks
}
