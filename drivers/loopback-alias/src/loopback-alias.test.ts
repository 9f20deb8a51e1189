import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createServer } from 'node:net'
import { isDriverModule, isNgrokdError, silentLogger } from '@ngrokd/core/driver'
import { requires, TestFramework, testInterfaceDriver } from '@ngrokd/core/testing'
import driver, { LinuxLoopbackAliasInterface } from './index.js'

TestFramework.use({ describe, it, beforeAll: before, afterAll: after })

describe('loopback-alias driver module', () => {
  it('declares itself for linux and darwin', () => {
    assert.ok(isDriverModule(driver))
    assert.equal(driver.name, 'loopback-alias')
    assert.deepEqual(driver.provides, ['interface'])
    assert.deepEqual(driver.platforms, ['linux', 'darwin'])
  })

  it('refuses another platform with a coded error', async () => {
    await assert.rejects(
      driver.create({ logger: silentLogger, stateDir: '/nonexistent', platform: 'win32' }, { name: 'x', subnet: '127.107.0.0/16' }),
      (e) => isNgrokdError(e, 'NGROKD_ERR_DRIVER_UNSUPPORTED_PLATFORM'),
    )
  })
})

// Linux: no privilege and no OS change, so the real path runs everywhere Linux does.
describe('loopback-alias on Linux', { skip: requires.linux() }, () => {
  testInterfaceDriver({
    driver,
    options: { name: 'ngrkt-lo', subnet: '127.107.0.0/16' },
    // Linux routes all of 127.0.0.0/8 to lo: no address is put on it, so the system has none to show (the
    // driver's own test below binds to each address it holds instead)
    skip: { systemView: true },
    additionalTests({ withInterface }) {
      it('reports the loopback kind and needs no privilege', async () => {
        await withInterface(async ({ iface, info }) => {
          assert.equal(info.kind, 'loopback (127.0.0.0/8 needs no alias on Linux)')
          assert.equal(info.name, 'lo')
          assert.equal(info.subnet, undefined, 'a loopback net.subnet is used as is')
          assert.equal(iface.capabilities.requiresPrivileges, 'none')
          assert.equal(iface.capabilities.batching, true)
        })
      })

      it('every address it holds can really be listened on', async () => {
        await withInterface(async ({ iface, addresses }) => {
          for (const address of addresses.slice(0, 4)) await iface.addAddress({ address })
          for (const host of await iface.listAddresses()) {
            const server = createServer()
            await new Promise<void>((resolve, reject) => server.once('error', reject).listen({ host, port: 0 }, resolve))
            await new Promise((resolve) => server.close(resolve))
          }
        })
      })

      it('keeps the held addresses in a state file named after the interface', async () => {
        await withInterface(async ({ iface, env }) => {
          await iface.applyAddresses({ add: ['127.107.0.9', '127.107.0.3', '127.107.1.2'], remove: [] })
          const state = JSON.parse(await readFile(join(env.stateDir, 'loopback-alias-ngrkt-lo.json'), 'utf8'))
          assert.deepEqual(state, { version: 1, driver: 'loopback-alias', name: 'ngrkt-lo', subnet: '127.107.0.0/16', addresses: ['127.107.0.3', '127.107.0.9', '127.107.1.2'] })
        })
      })

      it('refuses addresses outside its subnet and 127.0.0.1', async () => {
        await withInterface(async ({ iface }) => {
          for (const address of ['127.108.0.2', '10.107.0.2', '127.0.0.1']) {
            await assert.rejects(iface.addAddress({ address }), (e) => isNgrokdError(e, 'NGROKD_ERR_DRIVER_MISUSE'), address)
          }
        })
      })

      it('recovers from an unreadable state file and from temp files of an interrupted write', async () => {
        await withInterface(async ({ iface, env, create, open }) => {
          await iface.addAddress({ address: '127.107.0.5' })
          await writeFile(join(env.stateDir, 'loopback-alias-ngrkt-lo.json'), '{"version":1,"driv')
          await writeFile(join(env.stateDir, '.loopback-alias-ngrkt-lo.json.123.abcd.tmp'), 'partial')
          const next = await create()
          const info = await open(next)
          assert.equal(info.adopted, true)
          assert.ok(info.notes.some((n) => n.includes('unreadable')), info.notes.join('; '))
          assert.ok(info.notes.some((n) => n.includes('temporary state file')), info.notes.join('; '))
          assert.deepEqual(await next.listAddresses(), [])
          assert.deepEqual((await readdir(env.stateDir)).filter((n) => n.endsWith('.tmp')), [])
          await next.addAddress({ address: '127.107.0.6' })
          assert.deepEqual(await next.listAddresses(), ['127.107.0.6'])
        })
      })

      it('diagnose() finds 127.0.0.0/8 bindable and the state folder writable', async () => {
        await withInterface(async ({ iface }) => {
          const checks = await iface.diagnose()
          assert.deepEqual(
            checks.map((c) => [c.id, c.status]),
            [
              ['loopback-alias.state-dir', 'ok'],
              ['loopback-alias.bind', 'ok'],
            ],
          )
        })
      })
    },
  })

  // The daemon's default subnet is not loopback: the driver substitutes its loopback subnet.
  testInterfaceDriver({
    title: 'loopback-alias with a non-loopback net.subnet: interface driver conformance',
    driver,
    options: { name: 'ngrkt-lo2', subnet: '10.107.0.0/16', loopbackSubnet: '127.108.0.0/24' },
    skip: { systemView: true }, // as above
    additionalTests({ withInterface }) {
      it('returns loopbackSubnet as InterfaceInfo.subnet and says why', async () => {
        await withInterface(async ({ info }) => {
          assert.equal(info.subnet, '127.108.0.0/24')
          assert.deepEqual(info.notes, ['net.subnet 10.107.0.0/16 is not loopback; using 127.108.0.0/24'])
        })
      })
    },
  })

  it('refuses a loopbackSubnet outside 127.0.0.0/8', async () => {
    const iface = new LinuxLoopbackAliasInterface({ stateDir: '/nonexistent-ngrokd-state', loopbackSubnet: '10.1.0.0/16' })
    await assert.rejects(iface.open({ name: 'x', subnet: '10.107.0.0/16' }), (e) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'))
  })
})
