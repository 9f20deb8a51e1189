// The whole macOS code path, run on any OS against a strict fake of the kernel's lo0 ioctls.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isNgrokdError } from '@ngrokd/core/driver'
import { TestFramework, testInterfaceDriver } from '@ngrokd/core/testing'
import { DarwinLoopbackAliasInterface } from '../darwin-loopback-alias-interface.js'
import { FakeDarwinKernel } from './testing/fake-darwin-kernel.js'

TestFramework.use({ describe, it, beforeAll: before, afterAll: after })

describe('loopback-alias on macOS (fake syscalls)', () => {
  const kernel = new FakeDarwinKernel()
  testInterfaceDriver({
    driver: ({ stateDir }) => new DarwinLoopbackAliasInterface({ stateDir, syscalls: kernel }),
    options: { name: 'ngrokd0', subnet: '10.107.0.0/16' },
    inspect: ({ info }) => kernel.addressesOf(info.name),
    additionalTests({ withInterface }) {
      it('uses 127.107.0.0/16 on lo0 and needs root', async () => {
        await withInterface(async ({ iface, info }) => {
          assert.equal(info.name, 'lo0')
          assert.equal(info.kind, 'lo0 aliases')
          assert.equal(info.subnet, '127.107.0.0/16')
          assert.deepEqual(iface.capabilities, { loopbackOnly: true, ipv6: false, requiresPrivileges: 'root', batching: false })
        })
      })

      it('never closed a descriptor twice, leaks none, never touched 127.0.0.1', () => {
        assert.deepEqual([...kernel.openFds], [])
        assert.equal(kernel.deletedSystemAddress, false)
        assert.ok(kernel.ioctls.length > 50, 'the suite went through the ioctls')
        assert.ok(kernel.addressesOf('lo0').includes('127.0.0.1'))
      })
    },
  })
})

describe('loopback-alias macOS ioctls', () => {
  let stateDir: string
  before(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'loopback-alias-darwin-'))
  })
  after(() => rm(stateDir, { recursive: true, force: true }))

  it('sends SIOCAIFADDR with a /32 ifaliasreq and SIOCDIFADDR with an ifreq, byte for byte', async () => {
    const kernel = new FakeDarwinKernel()
    const iface = new DarwinLoopbackAliasInterface({ stateDir, syscalls: kernel })
    await iface.open({ name: 'bytes0', subnet: '127.107.0.0/16' })
    await iface.addAddress({ address: '127.107.0.2' })
    await iface.removeAddress({ address: '127.107.0.2' })
    assert.deepEqual(
      kernel.ioctls.map(({ request, hex }) => [request.toString(16), hex]),
      [
        ['8040691a', '6c6f3000000000000000000000000000' + '100200007f6b00020000000000000000' + '00000000000000000000000000000000' + '10020000ffffffff0000000000000000'],
        ['80206919', '6c6f3000000000000000000000000000' + '100200007f6b00020000000000000000'],
      ],
    )
    await iface.close({ removeInterface: true })
  })

  it('lists only lo0 IPv4 aliases inside the subnet', async () => {
    const kernel = new FakeDarwinKernel()
    kernel.addAddress('lo0', '127.0.0.5') // someone else's alias, outside our subnet
    kernel.addAddress('lo0', '127.107.3.4') // a leftover of ours
    const iface = new DarwinLoopbackAliasInterface({ stateDir, syscalls: kernel })
    const info = await iface.open({ name: 'list0', subnet: '10.107.0.0/16' })
    assert.equal(info.adopted, true, 'an alias in the subnet is a leftover to adopt')
    assert.deepEqual(await iface.listAddresses(), ['127.107.3.4'])
    await iface.close({ removeInterface: true })
    assert.deepEqual(kernel.addressesOf('lo0'), ['127.0.0.1', '127.0.0.5'], 'removeInterface removes our aliases only')
  })

  it('turns EPERM into NGROKD_ERR_PERMISSION with a sudo hint', async () => {
    const kernel = new FakeDarwinKernel({ uid: 501 })
    const iface = new DarwinLoopbackAliasInterface({ stateDir, syscalls: kernel })
    await iface.open({ name: 'perm0', subnet: '127.107.0.0/16' })
    const error = await iface.addAddress({ address: '127.107.0.2' }).catch((e: unknown) => e)
    assert.ok(isNgrokdError(error, 'NGROKD_ERR_PERMISSION'), String(error))
    assert.match(error.message, /ioctl\(SIOCAIFADDR\) 127\.107\.0\.2 on lo0 refused: EPERM \(1\)/)
    assert.match(String(error.hint), /sudo/)
    assert.deepEqual([...kernel.openFds], [], 'the socket is closed after a failure too')
    await iface.close({ removeInterface: true })
  })

  it('reports other errnos as NGROKD_ERR_SYSCALL naming the address', async () => {
    const kernel = new FakeDarwinKernel()
    kernel.ioctl = () => 6 // ENXIO
    const iface = new DarwinLoopbackAliasInterface({ stateDir, syscalls: kernel })
    await iface.open({ name: 'nxio0', subnet: '127.107.0.0/16' })
    const error = await iface.addAddress({ address: '127.107.0.2' }).catch((e: unknown) => e)
    assert.ok(isNgrokdError(error, 'NGROKD_ERR_SYSCALL'), String(error))
    assert.equal(error.message, 'ioctl(SIOCAIFADDR) 127.107.0.2 on lo0 failed: ENXIO (6)')
  })
})
