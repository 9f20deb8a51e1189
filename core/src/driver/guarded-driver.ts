import { NgrokdError, isNgrokdError } from '../errors/ngrokd-error.js'
import { within } from '../util/within.js'

/**
 * How long one call of a driver's may take before the daemon fails it: far above any real one (10,000 addresses in
 * one `applyAddresses()` take about a second with linux-netlink, BENCHMARKS.md figure 1), so only a call that awaits
 * what never comes meets it.
 */
export const DRIVER_CALL_TIMEOUT_MS = 60_000

/** The methods whose first argument is an options object that may carry `signal` (contracts/interface.ts, contracts/name-resolver.ts). */
const TAKES_SIGNAL: ReadonlySet<string> = new Set(['open', 'addAddress', 'removeAddress', 'applyAddresses', 'listAddresses', 'repair', 'publish'])

export type DriverKind = 'interface' | 'name-resolver'

/** A driver's call whose failure carries no code is said as the driver's, with NGROKD_ERR_DRIVER_FAILED; coded ones pass as they are. */
export async function driverCall<T>(kind: DriverKind, driver: string, call: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (e) {
    if (isNgrokdError(e)) throw e
    throw new NgrokdError('NGROKD_ERR_DRIVER_FAILED', `${kind} driver ${driver}: ${call} failed: ${e instanceof Error ? e.message : String(e)}`, {
      cause: e,
      hint: 'ngrokd doctor runs the driver\'s checks; a third-party driver\'s author wants this message',
    })
  }
}

/**
 * `made` (what a driver's `create()` returned) with each of `methods` bounded: a call that has not settled after
 * `timeoutMs` fails with NGROKD_ERR_DRIVER_FAILED naming the driver and the call (the reconcile then puts the services
 * it was for in error, and the next one tries again), and the `signal` the call was given aborts, for a driver that
 * heeds it to stop. A failure without a code is said as the driver's ({@link driverCall}). What is not a listed method
 * (`driver`, `health()`) is read from `made` as it is, a method bound to it.
 */
export function guardedDriver<T extends object>(made: T, kind: DriverKind, driver: string, methods: readonly string[], timeoutMs: number = DRIVER_CALL_TIMEOUT_MS): T {
  const guarded = new Map<PropertyKey, unknown>()
  for (const method of methods) {
    const fn = (made as Record<string, unknown>)[method]
    if (typeof fn !== 'function') continue
    guarded.set(method, (...args: unknown[]) => {
      const deadline = new AbortController()
      if (TAKES_SIGNAL.has(method)) {
        const options = (args[0] ?? {}) as { signal?: AbortSignal }
        args[0] = { ...options, signal: options.signal ? AbortSignal.any([options.signal, deadline.signal]) : deadline.signal }
      }
      const what = `${kind} driver ${driver}: ${method}()`
      const hint = `the driver awaits something that does not come (its author wants this message); ngrokd doctor runs its checks`
      return driverCall(kind, driver, `${method}()`, () => within(() => (fn as (...a: unknown[]) => Promise<unknown>).apply(made, args), timeoutMs, what, undefined, { code: 'NGROKD_ERR_DRIVER_FAILED', hint })).catch((e: unknown) => {
        deadline.abort(e)
        throw e
      })
    })
  }
  return new Proxy(made, {
    get: (target, property) => {
      if (guarded.has(property)) return guarded.get(property)
      // any other method (an optional health()) runs on the driver's own object: its #private fields are there
      const value: unknown = Reflect.get(target, property, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}
