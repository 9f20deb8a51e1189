import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { isNgrokdError, parseSubnet } from '@ngrokd/core/driver'
import { FakeDarwinKernel } from '@ngrokd/driver-loopback-alias/darwin/testing'
import { readRoutes, RTF_GATEWAY, RTF_HOST, RTF_LOCAL, RTF_STATIC, RTF_UP, RTF_WASCLONED } from './route-dump.js'
import { conflictError, findSubnetConflicts } from './subnet-conflicts.js'

const caller = { driver: 'darwin-utun', privilegeHint: 'run ngrokd with sudo' }

function conflictsIn(kernel: FakeDarwinKernel, cidr: string, ownInterface?: string) {
  return findSubnetConflicts({ subnet: parseSubnet(cidr), ifaddrs: kernel.getifaddrs(), routes: readRoutes(kernel, caller), ...(ownInterface ? { ownInterface } : {}) })
}

describe('subnet conflicts on macOS', () => {
  it('a Mac with only a LAN and loopback has none in 10.107.0.0/16 (the default route does not count)', () => {
    assert.deepEqual(conflictsIn(new FakeDarwinKernel(), '10.107.0.0/16'), [])
  })

  it('names the route and the interface of a VPN that uses the subnet, and an address on another interface', () => {
    const kernel = new FakeDarwinKernel()
    const utun0 = kernel.interfaces.get('utun0')!
    kernel.routes.push({ dst: '10.96.0.0', prefix: 11, index: utun0.index, flags: RTF_UP | RTF_STATIC })
    const en5 = kernel.attachInterface({ name: 'en5', flags: 0x8863, mtu: 1500 })
    kernel.addAddress('en5', '10.107.3.4', { mask: '255.255.255.0' })
    kernel.routes.push({ dst: '10.107.0.0', prefix: 8, index: en5.index, flags: RTF_UP | RTF_GATEWAY, gateway: '10.107.3.1' })
    assert.deepEqual(
      conflictsIn(kernel, '10.107.0.0/16').map((c) => c.description),
      ['address 10.107.3.4/24 on en5', 'route 10.96.0.0/11 via utun0', 'route 10.0.0.0/8 via 10.107.3.1 (en5)'],
    )
    const e = conflictError(parseSubnet('10.107.0.0/16'), conflictsIn(kernel, '10.107.0.0/16'))
    assert.ok(isNgrokdError(e, 'NGROKD_ERR_ADDRESS_CONFLICT'))
    assert.equal(e.message, 'darwin-utun: net.subnet 10.107.0.0/16 overlaps address 10.107.3.4/24 on en5, route 10.96.0.0/11 via utun0, route 10.0.0.0/8 via 10.107.3.1 (en5)')
    assert.match(e.hint ?? '', /net\.force: true/)
    assert.match(e.hint ?? '', /netstat -rn -f inet/)
  })

  it('ignores its own interface, and the host routes the kernel makes for local addresses and clones', () => {
    const kernel = new FakeDarwinKernel()
    const mine = kernel.attachInterface({ name: 'utun2', flags: 0x8051, mtu: 16384 })
    kernel.addAddress('utun2', '10.107.0.2', { mask: '255.255.255.255', dst: '10.107.0.2' })
    const lo0 = kernel.interfaces.get('lo0')!
    kernel.routes.push({ dst: '10.107.9.9', prefix: 32, index: lo0.index, flags: RTF_UP | RTF_HOST | RTF_LOCAL })
    kernel.routes.push({ dst: '10.107.9.10', prefix: 32, index: 6, flags: RTF_UP | RTF_HOST | RTF_WASCLONED })
    assert.ok(kernel.routes.some((r) => r.index === mine.index && r.dst === '10.107.0.2'), 'the fake added the host route of the address')
    assert.deepEqual(conflictsIn(kernel, '10.107.0.0/16', 'utun2'), [])
    assert.deepEqual(conflictsIn(kernel, '10.107.0.0/16').map((c) => c.description), ['address 10.107.0.2/32 on utun2', 'route 10.107.0.2/32 via utun2'])
  })

  it('says how many more there are beyond three', () => {
    const kernel = new FakeDarwinKernel()
    for (let i = 0; i < 5; i++) kernel.routes.push({ dst: `10.107.${i}.0`, prefix: 24, index: 7, flags: RTF_UP })
    assert.match(conflictError(parseSubnet('10.107.0.0/16'), conflictsIn(kernel, '10.107.0.0/16')).message, /via utun0 and 2 more$/)
  })
})
