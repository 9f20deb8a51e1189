import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isDriverModule, isNgrokdError } from '@ngrokd/core/driver'
import { silentLogger } from '@ngrokd/core/driver'
import driver from './index.js'

test('windows-wintun is a win32 interface driver; off Windows create() says why with a coded error', async () => {
  assert.ok(isDriverModule(driver))
  assert.deepEqual(driver.platforms, ['win32'])
  assert.deepEqual(driver.provides, ['interface'])
  const skip = process.platform === 'win32'
  if (skip) return
  await assert.rejects(
    driver.create({ logger: silentLogger, stateDir: '/nonexistent', platform: 'win32' }, {}),
    (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_DRIVER_LIBRARY') && /cannot load iphlpapi\.dll/.test((e as Error).message),
  )
  await assert.rejects(
    driver.create({ logger: silentLogger, stateDir: '/nonexistent', platform: 'win32' }, { wintun_dll: 'wintun.dll' }),
    (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'),
  )
})
