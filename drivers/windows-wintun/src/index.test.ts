import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isDriverModule, isNgrokdError } from '@ngrokd/core/driver'
import driver from './index.js'

test('the skeleton is a valid driver module that refuses to create, with a coded error', async () => {
  assert.ok(isDriverModule(driver))
  assert.deepEqual(driver.platforms, ['win32'])
  await assert.rejects(
    driver.create({ logger: undefined as never, stateDir: '/nonexistent', platform: 'win32' }, {}),
    (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_DRIVER_UNSUPPORTED_PLATFORM') && /not implemented yet/.test((e as Error).message),
  )
})
