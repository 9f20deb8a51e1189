// The conformance kit against the driver on a strict fake of the Windows calls, in both modes, on any OS.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { NgrokdError } from '@ngrokd/core/driver'
import { TestFramework, testInterfaceDriver } from '@ngrokd/core/testing'
import { WindowsWintunInterface } from './windows-wintun-interface.js'
import { FakeWindows } from './testing/fake-windows.test-helper.js'

TestFramework.use({ describe, it, beforeAll: before, afterAll: after })

describe('windows-wintun, Wintun adapter (fake Windows calls)', () => {
  const windows = new FakeWindows()
  testInterfaceDriver({
    driver: () => new WindowsWintunInterface({ net: windows, loadWintun: () => windows, wintunDllPath: windows.path }),
    options: { name: 'ngrokd0', subnet: '10.107.0.0/16' },
    inspect: ({ info }) => [...([...windows.interfaces.values()].find((i) => i.alias === info.name)?.addresses.keys() ?? [])],
    additionalTests({ withInterface }) {
      it('is a Wintun adapter named after net.interface_name, needing Administrator', async () => {
        await withInterface(async ({ iface, info }) => {
          assert.equal(info.name, 'ngrokd0')
          assert.equal(info.kind, 'wintun')
          assert.equal(iface.capabilities.requiresPrivileges, 'administrator')
        })
      })
      it('left nothing behind and misused no handle', () => {
        assert.deepEqual(windows.misuses, [])
        assert.deepEqual([...windows.sessions.values()].filter((s) => !s.ended), [], 'every session ended')
        assert.deepEqual([...windows.adapters.keys()], [], 'every adapter the suite made was removed')
        assert.ok(windows.calls.filter((c) => c.call === 'CreateUnicastIpAddressEntry').length > 40, 'the suite went through the calls')
        assert.deepEqual(windows.addressesOn(windows.loopbackLuid), ['127.0.0.1'], 'the loopback interface was not touched')
      })
    },
  })
})

describe('windows-wintun without wintun.dll: loopback pseudo-interface (fake Windows calls)', () => {
  const windows = new FakeWindows()
  const missing = () => {
    throw new NgrokdError('NGROKD_ERR_DRIVER_LIBRARY', 'windows-wintun: cannot load C:\\Program Files\\ngrokd\\wintun.dll: not found')
  }
  testInterfaceDriver({
    driver: () => new WindowsWintunInterface({ net: windows, loadWintun: missing, wintunDllPath: windows.path }),
    options: { name: 'ngrokd0', subnet: '10.107.0.0/16' },
    inspect: ({ info }) => [...([...windows.interfaces.values()].find((i) => i.alias === info.name)?.addresses.keys() ?? [])],
    skip: {
      // the loopback pseudo-interface is Windows' own: there is nothing to delete but our addresses, and a new
      // open() finds none of them, so `removeInterface` holds; `reopen` holds through the addresses left on it
    },
    additionalTests({ withInterface }) {
      it('says why it is on the loopback interface', async () => {
        await withInterface(async ({ info }) => {
          assert.equal(info.kind, 'loopback pseudo-interface')
          assert.match(info.notes.join('\n'), /wintun\.dll not loaded .*cannot load C:\\Program Files\\ngrokd\\wintun\.dll/)
        })
      })
      it('kept 127.0.0.1 and the other interfaces as they were', () => {
        assert.deepEqual(windows.addressesOn(windows.loopbackLuid), ['127.0.0.1'])
        assert.deepEqual([...windows.interfaces.values()].find((i) => i.alias === 'Ethernet')!.addresses.size, 2)
        assert.deepEqual(windows.misuses, [])
      })
    },
  })
})
