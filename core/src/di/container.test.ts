import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDaemonScope } from './container.js'
import { resolveConfig } from '../config/resolve-config.js'
import { silentLogger } from '../contracts/logger.js'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { FakeInterface } from '../testing/fakes/fake-interface.js'
import { LoopbackForwarder } from '../testing/fakes/loopback-forwarder.js'

/**
 * A name-resolver driver by path, whose create() does what `options.mode` says: throw, return a resolver without its
 * methods, one whose open() throws, or a working one that keeps the options it was given.
 */
const RESOLVER_DRIVER = `
import { defineDriver } from ${JSON.stringify(new URL('../driver/define-driver.js', import.meta.url).href)}
export default defineDriver({
  name: 'test-names', provides: ['name-resolver'], platforms: [process.platform], ngrokd: '^1.0.0',
  async create(_ctx, options) {
    globalThis.testNamesOptions = options
    if (options.mode === 'throw') throw new Error('cannot reach the name server')
    const names = { resolver: 'test-names', open: async () => {}, publish: async () => ({ changed: false }), list: async () => [], close: async () => {}, diagnose: async () => [] }
    if (options.mode === 'shape') return { nameResolver: { resolver: 'test-names', open: async () => {} } }
    if (options.mode === 'nothing') return {}
    if (options.mode === 'open') return { nameResolver: { ...names, open: async () => { throw new Error('EACCES on names db') } } }
    return { nameResolver: names }
  },
})
`

test('a name-resolver driver gets names.driver_options, and its failures name the driver, what failed and the contract', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ngrokd-scope-'))
  try {
    const driver = join(dir, 'names-driver.mjs')
    await writeFile(driver, RESOLVER_DRIVER)
    const scopeWith = (mode: string) => {
      const config = resolveConfig({ names: { resolver: driver, driver_options: { mode, server: '10.0.0.53' } }, state_dir: join(dir, 'state') }, { env: {} }).config
      return createDaemonScope({ config, logger: silentLogger, forwarder: new LoopbackForwarder({ upstream: { host: '127.0.0.1', port: 9 } }), overrides: { interface: new FakeInterface() } })
    }
    const scope = await scopeWith('ok')
    assert.deepEqual((globalThis as { testNamesOptions?: unknown }).testNamesOptions, { mode: 'ok', server: '10.0.0.53' })
    await scope.close()
    const refused = (code: string, message: string | RegExp, hint?: RegExp) => (e: unknown) => {
      assert.ok(isNgrokdError(e, code as never), String(e))
      if (typeof message === 'string') assert.equal(e.message, message)
      else assert.match(e.message, message)
      if (hint) assert.match(e.hint ?? '', hint)
      return true
    }
    await assert.rejects(scopeWith('throw'), refused('NGROKD_ERR_DRIVER_FAILED', `name-resolver driver ${driver}: create() failed: cannot reach the name server`))
    await assert.rejects(scopeWith('open'), refused('NGROKD_ERR_DRIVER_FAILED', `name-resolver driver ${driver}: open() failed: EACCES on names db`))
    await assert.rejects(scopeWith('shape'), refused('NGROKD_ERR_DRIVER_INVALID', `driver "${driver}": the name resolver its create() returned has no publish(), list(), close(), diagnose()`, /NameResolver contract/))
    await assert.rejects(scopeWith('nothing'), refused('NGROKD_ERR_DRIVER_INVALID', /created no name resolver/, /create\(\) must resolve to \{ nameResolver \}/))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('a subnet inside 127.0.0.0/8 is served only by a driver that declares capabilities.loopbackOnly: a third-party one is judged once made', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ngrokd-scope-loop-'))
  try {
    const driver = join(dir, 'loop-driver.mjs')
    await writeFile(
      driver,
      `import { defineDriver } from ${JSON.stringify(new URL('../driver/define-driver.js', import.meta.url).href)}
import { FakeInterface } from ${JSON.stringify(new URL('../testing/fakes/fake-interface.js', import.meta.url).href)}
export default defineDriver({
  name: 'test-loop', provides: ['interface'], platforms: [process.platform], ngrokd: '^1.0.0',
  async create(_ctx, options) { return { interface: new FakeInterface({ capabilities: { loopbackOnly: options.loopbackOnly === true } }) } },
})
`,
    )
    const scopeWith = (loopbackOnly: boolean) => {
      const config = resolveConfig({ net: { driver, subnet: '127.109.0.0/16', driver_options: { loopbackOnly } }, state_dir: join(dir, 'state') }, { env: {} }).config
      return createDaemonScope({ config, logger: silentLogger, forwarder: new LoopbackForwarder({ upstream: { host: '127.0.0.1', port: 9 } }) })
    }
    const scope = await scopeWith(true)
    assert.equal(scope.subnet, '127.109.0.0/16')
    await scope.close()
    await assert.rejects(scopeWith(false), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID') && /^net\.subnet 127\.109\.0\.0\/16 overlaps 127\.0\.0\.0\/8, loopback, and net\.driver .*loop-driver\.mjs does not serve loopback/.test(e.message))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
