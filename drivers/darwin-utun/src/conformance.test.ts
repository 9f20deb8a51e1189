// The conformance kit of @ngrokd/core/testing against the whole driver, on a fake of the macOS
// kernel that checks every byte it is handed (so this runs on any OS, in CI).
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { TestFramework, testInterfaceDriver } from '@ngrokd/core/testing'
import { DarwinUtunInterface } from './darwin-utun-interface.js'
import { FakeUtunKernel } from './testing/fake-utun-kernel.test-helper.js'

TestFramework.use({ describe, it, beforeAll: before, afterAll: after })

describe('darwin-utun on a fake macOS kernel', () => {
  const kernel = new FakeUtunKernel()
  testInterfaceDriver({
    driver: ({ logger }) => new DarwinUtunInterface({ logger, syscalls: kernel }),
    options: { name: 'ngrokd0', subnet: '10.107.0.0/16' },
    inspect: ({ info }) => [...(kernel.interfaces.get(info.name)?.addresses.keys() ?? [])],
    skip: {
      // A utun lives exactly as long as the control socket that made it: nothing a first instance
      // made can be found by a second one (nor after a crash, when the kernel removes it). After a
      // restart the daemon re-adds the addresses to a new utun; see README.md, "Restarts".
      reopen: true,
    },
    additionalTests({ withInterface }) {
      it('reports the name macOS gave (utun2: utun0 and utun1 belong to other programs) and says the configured one was a wish', async () => {
        await withInterface(async ({ iface, info }) => {
          assert.equal(info.name, 'utun2')
          assert.equal(info.kind, 'utun')
          assert.deepEqual(info.notes, ['macOS names utun interfaces itself: net.interface_name ngrokd0 is utun2'])
          assert.deepEqual(iface.capabilities, { loopbackOnly: false, ipv6: false, requiresPrivileges: 'root', batching: false })
        })
      })

      it('puts each address on the utun as a /32 with itself as destination, with a host route', async () => {
        await withInterface(async ({ iface, info, addresses }) => {
          await iface.addAddress({ address: addresses[0]! })
          const utun = kernel.interfaces.get(info.name)!
          assert.deepEqual(utun.addresses.get(addresses[0]!), { mask: '255.255.255.255', dst: addresses[0]! })
          assert.ok(kernel.routes.some((r) => r.index === utun.index && r.dst === addresses[0] && r.prefix === 32))
          assert.equal(utun.mtu, 16384)
        })
      })

      it('left nothing behind: no descriptor, no watch, no utun of ours; 127.0.0.1 untouched; no watch starved', () => {
        assert.deepEqual([...kernel.openFds], [])
        assert.equal(kernel.activeWatches, 0)
        assert.deepEqual([...kernel.interfaces.keys()].filter((n) => n.startsWith('utun')), ['utun0', 'utun1'])
        assert.ok(kernel.routes.every((r) => !r.dst.startsWith('10.107.')), 'the kernel removed the host routes with the utun')
        assert.equal(kernel.deletedSystemAddress, false)
        assert.equal(kernel.starvedWatches, 0)
        assert.ok(kernel.calls.filter((c) => c.call === 'connect').length > 10, 'the suite made utuns')
      })
    },
  })
})
