import { test } from 'node:test'
import assert from 'node:assert/strict'
import { resolveConfig } from '../config/resolve-config.js'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { START_CHECKS } from './start-checks.js'

test("names.resolver: the hosts file and a listed plugin's resolver pass; a name nothing could offer is what the start would stop on", async () => {
  const check = START_CHECKS['names.resolver']
  await check(resolveConfig({}, { env: {} }).config)
  await check(resolveConfig({ plugins: ['dns'], names: { resolver: 'dns' } }, { env: {} }).config)
  // a plugin named by path may offer a resolver under a name of its own: only a start, which registers it, can tell
  await check(resolveConfig({ plugins: ['./my-resolver.mjs'], names: { resolver: 'myres' } }, { env: {} }).config)
  await assert.rejects(check(resolveConfig({ names: { resolver: 'myres' } }, { env: {} }).config), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_DRIVER_NOT_FOUND'))
  await assert.rejects(check(resolveConfig({ plugins: ['dns', 'prometheus'], names: { resolver: 'dnss' } }, { env: {} }).config), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_DRIVER_NOT_FOUND'), 'the built-in plugins offer no other name')
})

test('control.group: a group that does not exist is what the start would stop on', { skip: process.platform !== 'linux' && 'getent on Linux' }, async () => {
  await START_CHECKS['control.group'](resolveConfig({ control: { group: 'root' } }, { env: {} }).config)
  await assert.rejects(START_CHECKS['control.group'](resolveConfig({ control: { group: 'nosuchgroup-ngrokd' } }, { env: {} }).config), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONTROL'))
})
