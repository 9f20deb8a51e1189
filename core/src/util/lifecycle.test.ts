import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { Lifecycle, requireOpen } from './lifecycle.js'

const misuse = (message: RegExp) => (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_DRIVER_MISUSE') && message.test((e as Error).message) && /await open\(\) first/.test(String((e as { hint?: string }).hint))

test('Lifecycle: closed until open(), closed again after close(), one coded error naming component and method', () => {
  let name = 'early-name'
  const lifecycle = new Lifecycle(() => name)
  assert.equal(lifecycle.isOpen, false)
  assert.throws(() => lifecycle.assertOpen('publish()'), misuse(/^early-name: publish\(\) called before open\(\) or after close\(\)$/))
  lifecycle.open()
  name = 'late-name'
  assert.doesNotThrow(() => lifecycle.assertOpen('publish()'))
  lifecycle.close()
  assert.throws(() => lifecycle.assertOpen(), misuse(/^late-name: called before open\(\) or after close\(\)$/))
})

test('requireOpen returns what open() kept, and throws the same error when nothing is kept', () => {
  const state = { fd: 3 }
  assert.equal(requireOpen(state, 'darwin-utun', 'listAddresses()'), state)
  assert.throws(() => requireOpen(undefined, 'darwin-utun', 'listAddresses()'), misuse(/^darwin-utun: listAddresses\(\) called before open\(\) or after close\(\)$/))
  assert.throws(() => requireOpen(undefined, 'loopback-alias'), misuse(/^loopback-alias: called before/))
})
