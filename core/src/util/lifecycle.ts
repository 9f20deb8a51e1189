import { NgrokdError } from '../errors/ngrokd-error.js'

/**
 * The open/closed state of a component with an `open()`…`close()` life (drivers, the allocator,
 * name resolvers, network ports): one guard, one error code, one message for "called before
 * `open()` or after `close()`" — a bug in the caller, `NGROKD_ERR_DRIVER_MISUSE`.
 *
 * ```ts
 * private readonly lifecycle = new Lifecycle('loopback-alias')
 * async open() { …; this.lifecycle.open() }
 * async addAddress() { this.lifecycle.assertOpen('addAddress()'); … }
 * ```
 */
export class Lifecycle {
  #open = false

  /** `component` names the component in the error (a function when the name is known only later). */
  constructor(private readonly component: string | (() => string)) {}

  get isOpen(): boolean {
    return this.#open
  }

  open(): void {
    this.#open = true
  }

  close(): void {
    this.#open = false
  }

  /** Throws NGROKD_ERR_DRIVER_MISUSE unless open. */
  assertOpen(method = 'called'): void {
    if (this.#open) return
    throw misuse(typeof this.component === 'function' ? this.component() : this.component, method)
  }
}

/**
 * The same guard for a component that keeps what `open()` made in one field (undefined while
 * closed): returns it, or throws NGROKD_ERR_DRIVER_MISUSE naming the component and method.
 *
 * ```ts
 * #requireOpen(method: string): OpenState { return requireOpen(this.#state, 'darwin-utun', method) }
 * ```
 */
export function requireOpen<T>(state: T | undefined, component: string, method = 'called'): T {
  if (state === undefined) throw misuse(component, method)
  return state
}

function misuse(component: string, method: string): NgrokdError {
  const what = method === 'called' ? 'called' : `${method} called`
  return new NgrokdError('NGROKD_ERR_DRIVER_MISUSE', `${component}: ${what} before open() or after close()`, { hint: 'await open() first' })
}
