import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { MAX_DURATION_MS, parseDuration } from './parse-duration.js'

describe('parseDuration', () => {
  const good: Array<[string | number, number]> = [
    ['10s', 10_000],
    ['500ms', 500],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['1m30s', 90_000],
    ['1h2m3s4ms', 3_723_004],
    ['1.5s', 1500],
    [' 10s ', 10_000],
    ['10', 10_000],
    ['0.25', 250],
    [10, 10_000],
    [0, 0],
    [1.5, 1500],
    ['0.0004s', 0],
  ]
  for (const [input, ms] of good) {
    it(`${JSON.stringify(input)} is ${ms} ms`, () => assert.equal(parseDuration(input), ms))
  }

  const bad: Array<string | number> = ['', 'abc', '10 s', '10sec', '-1s', '1d', 's', '1m30', '10S', '1..5s', -1, Number.NaN, Infinity]
  for (const input of bad) {
    it(`rejects ${JSON.stringify(input)} naming the key, the value and the expected form`, () => {
      assert.throws(
        () => parseDuration(input, { key: 'api.timeout' }),
        (e: unknown) => {
          assert.ok(isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'))
          assert.match(e.message, /^api\.timeout: /)
          assert.ok(e.message.includes(JSON.stringify(input)), e.message)
          assert.match(e.message, /expected a duration such as 10s, 500ms/)
          return true
        },
      )
    })
  }

  it('rejects what setTimeout cannot wait for', () => {
    assert.equal(parseDuration(`${MAX_DURATION_MS}ms`), MAX_DURATION_MS)
    assert.throws(() => parseDuration('600h'), /too long/)
  })
})
