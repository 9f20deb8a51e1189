import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { isNgrokdError, NgrokdError } from '../errors/ngrokd-error.js'
import { guardedDriver } from './guarded-driver.js'

/** A driver's interface whose calls are recorded; `hang` never settles, `fail` throws a plain error. */
class Recorded {
  readonly driver = 'sample'
  readonly #state = 'private to the class'
  signals: AbortSignal[] = []
  get state(): string {
    return this.#state
  }
  /** An optional method of a contract, not bounded: it still runs on the driver's own object. */
  health(): { state: string } {
    return { state: this.#state === 'private to the class' ? 'ok' : 'error' }
  }
  async listAddresses(options: { signal?: AbortSignal } = {}): Promise<string[]> {
    this.signals.push(options.signal!)
    return ['10.107.0.2']
  }
  applyAddresses(change: { add: string[]; remove: string[]; signal?: AbortSignal }): Promise<void> {
    this.signals.push(change.signal!)
    return new Promise(() => {}) // awaits what never comes
  }
  async removeAddress(): Promise<void> {
    throw new Error('EBUSY: the link is in use')
  }
  async addAddress(): Promise<void> {
    throw new NgrokdError('NGROKD_ERR_SYSCALL', 'RTM_NEWADDR: EEXIST')
  }
}

describe('guardedDriver', () => {
  const methods = ['listAddresses', 'applyAddresses', 'removeAddress', 'addAddress']

  it('a call that never settles fails after the bound, naming the driver and the call, and the signal it was given aborts', async () => {
    const made = new Recorded()
    const iface = guardedDriver(made, 'interface', 'sample', methods, 20)
    await assert.rejects(iface.applyAddresses({ add: ['10.107.0.2'], remove: [] }), (e: unknown) => {
      return isNgrokdError(e, 'NGROKD_ERR_DRIVER_FAILED') && /^interface driver sample: applyAddresses\(\) did not finish within 0\.02 s$/.test(e.message) && /its author wants this message/.test(e.hint ?? '')
    })
    assert.equal(made.signals.at(-1)!.aborted, true, 'the call is told to stop')
  })

  it('a plain error is said as the driver\'s, with its code; a coded one passes as it is', async () => {
    const iface = guardedDriver(new Recorded(), 'interface', 'sample', methods)
    await assert.rejects(iface.removeAddress(), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_DRIVER_FAILED') && e.message === 'interface driver sample: removeAddress() failed: EBUSY: the link is in use')
    await assert.rejects(iface.addAddress(), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_SYSCALL') && e.message === 'RTM_NEWADDR: EEXIST')
  })

  it('a call that settles is as it was; a signal the caller gave reaches the driver with the bound\'s; the rest is read as it is', async () => {
    const made = new Recorded()
    const iface = guardedDriver(made, 'interface', 'sample', methods)
    assert.deepEqual(await iface.listAddresses(), ['10.107.0.2'])
    assert.equal(made.signals.at(-1)!.aborted, false)
    const stop = new AbortController()
    await iface.listAddresses({ signal: stop.signal })
    const given = made.signals.at(-1)!
    stop.abort()
    assert.equal(given.aborted, true, "the caller's signal still aborts the call")
    assert.equal(iface.driver, 'sample')
    assert.equal(iface.state, 'private to the class', 'getters run on the driver itself')
    assert.deepEqual(iface.health(), { state: 'ok' }, 'and so do methods that are not bounded')
  })
})
