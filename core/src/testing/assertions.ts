import assert from 'node:assert/strict'
import { errorCodes, type NgrokdErrorCode } from '../errors/codes.js'
import { isNgrokdError } from '../errors/ngrokd-error.js'

export interface CodedRejectionOptions {
  /** The code expected; without it any documented code passes. */
  code?: NgrokdErrorCode
  /** Also accept an abort: a DOMException `AbortError` or an NgrokdError `NGROKD_ERR_ABORTED`. */
  abort?: boolean
}

/**
 * Asserts that `action` rejects with an NgrokdError whose code is in `errorCodes` (the contracts'
 * "failures are NgrokdErrors with a documented code"). Returns the error for further checks.
 *
 * ```ts
 * await assertRejectsCoded(() => iface.addAddress({ address: 'x' }), 'addAddress(x)')
 * ```
 */
export async function assertRejectsCoded(action: Promise<unknown> | (() => Promise<unknown>), what: string, options: CodedRejectionOptions = {}): Promise<unknown> {
  let error: unknown
  try {
    await (typeof action === 'function' ? action() : action)
  } catch (e) {
    error = e
  }
  assert.ok(error !== undefined, `${what} resolved; it must reject`)
  if (options.abort && isAbortError(error)) return error
  assert.ok(isNgrokdError(error), `${what} rejected with ${describeError(error)}; it must reject with an NgrokdError (use a code from errorCodes)`)
  assert.ok(Object.hasOwn(errorCodes, error.code), `${what} rejected with code ${JSON.stringify(error.code)}, which is not in errorCodes`)
  if (options.code !== undefined) assert.equal(error.code, options.code, `${what} rejected with ${error.code}; expected ${options.code}`)
  return error
}

/** A DOMException `AbortError` (what `signal.throwIfAborted()` throws) or `NGROKD_ERR_ABORTED`. */
export function isAbortError(e: unknown): boolean {
  return isNgrokdError(e, 'NGROKD_ERR_ABORTED') || (e instanceof Error && e.name === 'AbortError')
}

/** Asserts `actual` has no duplicates and the same members as `expected`, in any order. */
export function assertSameSet(actual: readonly string[], expected: readonly string[], what: string): void {
  const sorted = [...actual].sort()
  const duplicates = sorted.filter((v, i) => i > 0 && sorted[i - 1] === v)
  assert.deepEqual(duplicates, [], `${what} lists duplicates: ${duplicates.join(', ')}`)
  assert.deepEqual(sorted, [...new Set(expected)].sort(), `${what}: expected exactly [${[...expected].sort().join(', ')}], got [${sorted.join(', ')}]`)
}

function describeError(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`
  return typeof e === 'string' ? JSON.stringify(e) : String(e)
}
