import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
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

test('state_dir, names.hosts_file, control.socket: a file where a folder must be, or a hosts file whose folder is missing, is what the start would stop on', { skip: process.platform === 'win32' && 'POSIX paths' }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ngrokd-start-checks-'))
  try {
    const file = join(dir, 'a-file')
    await writeFile(file, '')
    const config = (overrides: object) => resolveConfig(overrides, { env: {} }).config
    await START_CHECKS.state_dir(config({ state_dir: join(dir, 'state', 'deeper') }))
    await assert.rejects(START_CHECKS.state_dir(config({ state_dir: file })), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_STATE') && /is not a directory/.test(e.message))
    await assert.rejects(START_CHECKS.state_dir(config({ state_dir: join(file, 'state') })), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_STATE'))
    await START_CHECKS['names.hosts_file'](config({ names: { hosts_file: join(dir, 'hosts') } }))
    await assert.rejects(START_CHECKS['names.hosts_file'](config({ names: { hosts_file: join(dir, 'missing', 'hosts') } })), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_HOSTS_FILE') && e.message.includes(`its folder ${join(dir, 'missing')} does not exist`))
    await START_CHECKS['control.socket'](config({ control: { socket: join(dir, 'run', 'ngrokd.sock') } }))
    await assert.rejects(START_CHECKS['control.socket'](config({ control: { socket: join(file, 'x.sock') } })), (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'), String(e))
      assert.equal(e.message, `control.socket ${join(file, 'x.sock')}: its folder cannot be made, as ${file} is not a directory`)
      assert.match(e.hint ?? '', /set control\.socket to a path in a folder of its own/)
      return true
    })
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
