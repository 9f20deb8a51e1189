import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { setImmediate as turn } from 'node:timers/promises'
import { isNgrokdError, NgrokdError } from '@ngrokd/core/driver'
import { ERROR_ACCESS_DENIED, ERROR_INVALID_PARAMETER, ERROR_NOT_FOUND, ERROR_OBJECT_ALREADY_EXISTS } from './abi/constants.js'
import { adapterGuid } from './abi/structs.js'
import { WindowsWintunInterface } from './windows-wintun-interface.js'
import type { WindowsWintunMode } from './diagnose.js'
import { FakeWindows } from './testing/fake-windows.test-helper.js'

const missing = () => {
  throw new Error('The specified module could not be found.')
}

function make(windows: FakeWindows, mode: WindowsWintunMode = 'auto', dll = true) {
  return new WindowsWintunInterface({ mode, net: windows, loadWintun: dll ? () => windows : missing, wintunDllPath: 'C:\\Program Files\\ngrokd\\wintun.dll' })
}

describe('windows-wintun calls, byte for byte', () => {
  it('creates the adapter with a stable GUID, then adds a /32 row on its LUID', async () => {
    const windows = new FakeWindows()
    const iface = make(windows)
    await iface.open({ name: 'ngrokd0', subnet: '10.107.0.0/16' })
    await iface.addAddress({ address: '10.107.0.2' })
    const calls = windows.calls.map((c) => c.call)
    // the address table is read for what a run in loopback mode left there
    assert.deepEqual(calls.slice(0, 6), ['WintunOpenAdapter', 'WintunCreateAdapter', 'WintunGetAdapterLUID', 'GetUnicastIpAddressTable', 'WintunStartSession', 'WintunGetReadWaitEvent'])
    const create = windows.calls.find((c) => c.call === 'WintunCreateAdapter')!
    assert.deepEqual(create.args, ['ngrokd0', 'ngrokd'])
    assert.equal(create.hex, adapterGuid('ngrokd0').toString('hex'))
    assert.deepEqual(windows.calls.find((c) => c.call === 'WintunStartSession')!.args!.slice(1), [0x20000], 'the smallest ring wintun.h allows')
    const luid = windows.adapterLuid('ngrokd0')!
    const luidHex = Buffer.from(new BigUint64Array([luid]).buffer).toString('hex')
    assert.equal(
      windows.calls.find((c) => c.call === 'CreateUnicastIpAddressEntry')!.hex,
      '0200' + '0000' + '0a6b0002' + '00'.repeat(20) + '00000000' + luidHex + '00000000' + '01000000' + '01000000' + 'ffffffff' + 'ffffffff' + '20' + '01' + '0000' + '04000000' + '00000000' + '0000000000000000',
    )
    assert.ok(calls.indexOf('InitializeUnicastIpAddressEntry') < calls.indexOf('CreateUnicastIpAddressEntry'), 'rows start from InitializeUnicastIpAddressEntry')
    await iface.close({ removeInterface: true })
    assert.deepEqual(windows.misuses, [])
    assert.equal(windows.adapters.size, 0)
  })

  it('ERROR_OBJECT_ALREADY_EXISTS on add and ERROR_NOT_FOUND on remove are success', async () => {
    const windows = new FakeWindows()
    const iface = make(windows, 'loopback')
    await iface.open({ name: 'ngrokd0', subnet: '10.107.0.0/16' })
    await iface.addAddress({ address: '10.107.0.2' })
    await iface.addAddress({ address: '10.107.0.2' })
    await iface.removeAddress({ address: '10.107.0.2' })
    await iface.removeAddress({ address: '10.107.0.2' })
    assert.deepEqual(
      windows.calls.filter((c) => c.call.endsWith('UnicastIpAddressEntry') && c.call !== 'InitializeUnicastIpAddressEntry').map((c) => [c.call, c.result]),
      [
        ['CreateUnicastIpAddressEntry', 0],
        ['CreateUnicastIpAddressEntry', ERROR_OBJECT_ALREADY_EXISTS],
        ['DeleteUnicastIpAddressEntry', 0],
        ['DeleteUnicastIpAddressEntry', ERROR_NOT_FOUND],
      ],
    )
  })

  it('ERROR_ACCESS_DENIED is NGROKD_ERR_PERMISSION with the Administrator hint, for addresses and adapters', async () => {
    const windows = new FakeWindows({ administrator: false })
    const loopback = make(windows, 'loopback')
    await loopback.open({ name: 'ngrokd0', subnet: '10.107.0.0/16' })
    const e = await loopback.addAddress({ address: '10.107.0.2' }).catch((x: unknown) => x)
    assert.ok(isNgrokdError(e, 'NGROKD_ERR_PERMISSION'), String(e))
    assert.equal(e.message, 'windows-wintun: CreateUnicastIpAddressEntry 10.107.0.2/32 on the loopback interface refused: ERROR_ACCESS_DENIED (5)')
    assert.match(String(e.hint), /Administrator/)
    const wintun = make(windows, 'wintun')
    const e2 = await wintun.open({ name: 'ngrokd0', subnet: '10.107.0.0/16' }).catch((x: unknown) => x)
    assert.ok(isNgrokdError(e2, 'NGROKD_ERR_PERMISSION'), String(e2))
    assert.match(e2.message, /WintunCreateAdapter ngrokd0 refused: ERROR_ACCESS_DENIED/)
    assert.equal(ERROR_ACCESS_DENIED, 5)
  })

  it('another Win32 error is NGROKD_ERR_SYSCALL naming the call, the address and the error', async () => {
    const windows = new FakeWindows()
    const iface = make(windows, 'loopback')
    await iface.open({ name: 'ngrokd0', subnet: '10.107.0.0/16' })
    windows.failNext.set('CreateUnicastIpAddressEntry', ERROR_INVALID_PARAMETER)
    const e = await iface.addAddress({ address: '10.107.0.2' }).catch((x: unknown) => x)
    assert.ok(isNgrokdError(e, 'NGROKD_ERR_SYSCALL'), String(e))
    assert.equal(e.message, 'CreateUnicastIpAddressEntry 10.107.0.2/32 on the loopback interface failed: ERROR_INVALID_PARAMETER (87)')
  })
})

describe('windows-wintun modes', () => {
  it('mode wintun without wintun.dll is NGROKD_ERR_DRIVER_LIBRARY with the wintun.net hint', async () => {
    const e = await make(new FakeWindows(), 'wintun', false).open({ name: 'ngrokd0', subnet: '10.107.0.0/16' }).catch((x: unknown) => x)
    assert.ok(isNgrokdError(e, 'NGROKD_ERR_DRIVER_LIBRARY'), String(e))
    assert.match(e.message, /cannot load C:\\Program Files\\ngrokd\\wintun\.dll: The specified module could not be found\./)
    assert.match(String(e.hint), /wintun\.net.*wintun_dll/)
  })

  it('mode auto without wintun.dll puts the addresses on the loopback pseudo-interface', async () => {
    const windows = new FakeWindows()
    const iface = make(windows, 'auto', false)
    const info = await iface.open({ name: 'ngrokd0', subnet: '10.107.0.0/16' })
    await iface.addAddress({ address: '10.107.0.7' })
    assert.equal(info.kind, 'loopback pseudo-interface')
    assert.deepEqual(windows.addressesOn(windows.loopbackLuid), ['10.107.0.7', '127.0.0.1'])
    assert.deepEqual(await iface.listAddresses(), ['10.107.0.7'], 'the Ethernet address 10.107.0.99 is not ours')
    await iface.close({ removeInterface: true })
    assert.deepEqual(windows.addressesOn(windows.loopbackLuid), ['127.0.0.1'])
  })

  it("adopts a leftover adapter by name (WintunOpenAdapter); close({ removeInterface: true }) cannot remove it and says so instead of claiming it", async () => {
    const windows = new FakeWindows({ leftoverAdapters: ['ngrokd0'] })
    const iface = make(windows)
    const info = await iface.open({ name: 'ngrokd0', subnet: '10.107.0.0/16' })
    assert.equal(info.adopted, true)
    assert.match(info.notes.join(), /adopted the existing Wintun adapter ngrokd0/)
    assert.ok(!windows.calls.some((c) => c.call === 'WintunCreateAdapter'))
    await iface.addAddress({ address: '10.107.0.2' })
    const refused = await iface.close({ removeInterface: true }).catch((e: unknown) => e)
    assert.ok(isNgrokdError(refused, 'NGROKD_ERR_SYSCALL'), String(refused))
    assert.match(refused.message, /the Wintun adapter ngrokd0 stays/)
    assert.ok(windows.adapters.has('ngrokd0'), 'WintunCloseAdapter of an opened adapter does not remove it (wintun.h)')
    assert.deepEqual(windows.addressesOn(windows.adapterLuid('ngrokd0')!), [], 'its addresses went')
    assert.deepEqual(windows.misuses, [], 'every handle closed')
  })

  it('open({ adoptOnly: true }) (ngrokd cleanup) makes no adapter and starts no session: absent when nothing is left', async () => {
    const windows = new FakeWindows()
    const iface = make(windows)
    const info = await iface.open({ name: 'ngrokd0', subnet: '10.107.0.0/16', adoptOnly: true })
    assert.equal(info.absent, true)
    assert.deepEqual(windows.calls.map((c) => c.call).filter((c) => c.startsWith('Wintun')), ['WintunOpenAdapter'])
    await iface.close({ removeInterface: true })
    assert.equal(windows.adapters.size, 0)
  })

  it("what a run in loopback mode left (killed before wintun.dll was installed) is found by cleanup, and removed by the next start on Wintun", async () => {
    const windows = new FakeWindows()
    const crashed = make(windows, 'auto', false)
    await crashed.open({ name: 'ngrokd0', subnet: '10.107.0.0/16' })
    await crashed.applyAddresses({ add: ['10.107.0.2', '10.107.0.3'], remove: [] })
    // killed: no close. wintun.dll is installed; ngrokd cleanup looks
    const cleanup = make(windows)
    const found = await cleanup.open({ name: 'ngrokd0', subnet: '10.107.0.0/16', adoptOnly: true })
    assert.deepEqual({ adopted: found.adopted, absent: found.absent, kind: found.kind }, { adopted: true, absent: undefined, kind: 'loopback pseudo-interface' })
    assert.deepEqual((await cleanup.listAddresses()).sort(), ['10.107.0.2', '10.107.0.3'])
    await cleanup.close({ removeInterface: true })
    assert.deepEqual(windows.addressesOn(windows.loopbackLuid), ['127.0.0.1'])
    assert.ok(!windows.calls.some((c) => c.call === 'WintunCreateAdapter'))

    // the same leftovers, and a start on Wintun instead of a cleanup
    const again = make(windows, 'auto', false)
    await again.open({ name: 'ngrokd0', subnet: '10.107.0.0/16' })
    await again.addAddress({ address: '10.107.0.4' })
    const next = make(windows)
    await next.open({ name: 'ngrokd0', subnet: '10.107.0.0/16' })
    assert.deepEqual(windows.addressesOn(windows.loopbackLuid), ['127.0.0.1'], 'nothing of the subnet stays on loopback')
    assert.deepEqual(await next.listAddresses(), [])
    await next.close({ removeInterface: true })
    assert.deepEqual(windows.misuses, [])
  })

  it('a bad mode or adapter name is NGROKD_ERR_CONFIG_INVALID', async () => {
    const windows = new FakeWindows()
    assert.throws(() => make(windows, 'tap' as WindowsWintunMode), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'))
    const e = await make(windows).open({ name: 'x'.repeat(128), subnet: '10.107.0.0/16' }).catch((x: unknown) => x)
    assert.ok(isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'), String(e))
  })
})

describe('windows-wintun ring', () => {
  it('reads and drops what arrives, waiting on the read event in between (no spinning), and ends the session in order', async () => {
    const windows = new FakeWindows()
    const iface = make(windows)
    await iface.open({ name: 'ngrokd0', subnet: '10.107.0.0/16' })
    await turn()
    const idle = windows.receiveCalls
    assert.equal(idle, 1, 'one WintunReceivePacket (ERROR_NO_MORE_ITEMS), then a wait on the event')
    for (let i = 0; i < 20; i++) await turn()
    assert.equal(windows.receiveCalls, idle, 'nothing arrived, nothing was read: it waits instead of polling')
    windows.injectPackets('ngrokd0', [60, 1500, 40])
    for (let i = 0; i < 5 && iface.droppedPackets < 3; i++) await turn()
    assert.equal(iface.droppedPackets, 3)
    assert.equal(windows.receiveCalls, idle + 4, 'three packets and one ERROR_NO_MORE_ITEMS')
    await iface.close({ removeInterface: true })
    const order = windows.calls.map((c) => c.call).filter((c) => ['SetEvent', 'WintunEndSession', 'WintunCloseAdapter'].includes(c))
    assert.deepEqual(order, ['SetEvent', 'WintunEndSession', 'WintunCloseAdapter'], "wireguard-go's order: wake the reader, end the session, close the adapter")
    assert.deepEqual(windows.misuses, [], 'no wait was pending when the event was closed')
  })

  it('a burst yields to the event loop', async () => {
    const windows = new FakeWindows()
    const iface = make(windows)
    await iface.open({ name: 'ngrokd0', subnet: '10.107.0.0/16' })
    windows.injectPackets('ngrokd0', Array.from({ length: 200 }, () => 100))
    await turn()
    assert.ok(iface.droppedPackets < 200, `${iface.droppedPackets} dropped in one turn`)
    for (let i = 0; i < 20 && iface.droppedPackets < 200; i++) await turn()
    assert.equal(iface.droppedPackets, 200)
    await iface.close({ removeInterface: true })
  })
})

describe('windows-wintun diagnose', () => {
  it('reports Administrator, the DLL, the running driver version and the fallback', async () => {
    const windows = new FakeWindows({ administrator: false })
    const checks = await make(windows, 'auto', false).diagnose()
    const byId = Object.fromEntries(checks.map((c) => [c.id, c]))
    assert.equal(byId['windows-wintun.administrator']!.status, 'fail')
    assert.equal(byId['windows-wintun.wintun-dll']!.status, 'warn')
    assert.equal(byId['windows-wintun.wintun-dll']!.code, 'NGROKD_ERR_DRIVER_LIBRARY')
    assert.equal(byId['windows-wintun.loopback-interface']!.status, 'ok')
    const ok = Object.fromEntries((await make(new FakeWindows()).diagnose()).map((c) => [c.id, c]))
    assert.equal(ok['windows-wintun.administrator']!.status, 'ok')
    assert.equal(ok['windows-wintun.driver-version']!.summary, 'Wintun driver not loaded yet; the first adapter installs it')
    assert.ok(!(new NgrokdError('NGROKD_ERR_DRIVER_LIBRARY', 'x') instanceof TypeError))
  })
})
