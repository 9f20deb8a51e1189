import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { isNgrokdError } from '@ngrokd/core/driver'
import { changeInterfaceAddresses, interfaceAddresses, setInterfaceMtu } from './interface-addresses.js'
import { FakeDarwinKernel } from './testing/fake-darwin-kernel.js'

const caller = { driver: 'test-driver', privilegeHint: 'try sudo' }

describe('interface address ioctls', () => {
  it('EEXIST on add and EADDRNOTAVAIL on remove count as done', () => {
    const kernel = new FakeDarwinKernel()
    const answers = [49, 17] // removes go first: EADDRNOTAVAIL for the remove, EEXIST for the add
    kernel.ioctl = () => answers.shift()!
    changeInterfaceAddresses(kernel, { ...caller, ifname: 'lo0', add: ['127.107.0.2'], remove: ['127.107.0.3'], pointToPoint: false })
    assert.deepEqual(answers, [])
    assert.deepEqual([...kernel.openFds], [])
  })

  it('gives a point-to-point address itself as destination, and lo0 aliases none', () => {
    const kernel = new FakeDarwinKernel()
    const utun = kernel.attachInterface({ name: 'utun5', flags: 0x8051, mtu: 1500 })
    changeInterfaceAddresses(kernel, { ...caller, ifname: 'utun5', add: ['10.107.0.2'], remove: [], pointToPoint: true })
    changeInterfaceAddresses(kernel, { ...caller, ifname: 'lo0', add: ['127.107.0.2'], remove: [], pointToPoint: false })
    assert.deepEqual(utun.addresses.get('10.107.0.2'), { mask: '255.255.255.255', dst: '10.107.0.2' })
    assert.deepEqual(kernel.interfaces.get('lo0')!.addresses.get('127.107.0.2'), { mask: '255.255.255.255' })
    assert.deepEqual(interfaceAddresses(kernel, 'utun5'), ['10.107.0.2'])
    // without a destination XNU refuses a point-to-point address
    assert.throws(
      () => changeInterfaceAddresses(kernel, { ...caller, ifname: 'utun5', add: ['10.107.0.3'], remove: [], pointToPoint: false }),
      (e) => isNgrokdError(e, 'NGROKD_ERR_SYSCALL') && e.message === 'ioctl(SIOCAIFADDR) 10.107.0.3 on utun5 failed: EDESTADDRREQ (39)',
    )
  })

  it('EPERM is a PermissionError with the caller\'s hint; the socket is closed either way', () => {
    const kernel = new FakeDarwinKernel({ uid: 501 })
    assert.throws(
      () => changeInterfaceAddresses(kernel, { ...caller, ifname: 'lo0', add: ['127.107.0.2'], remove: [], pointToPoint: false }),
      (e) => isNgrokdError(e, 'NGROKD_ERR_PERMISSION') && e.message === 'test-driver: ioctl(SIOCAIFADDR) 127.107.0.2 on lo0 refused: EPERM (1)' && e.hint === 'try sudo',
    )
    assert.throws(() => setInterfaceMtu(kernel, { ...caller, ifname: 'lo0', mtu: 9000 }), (e) => isNgrokdError(e, 'NGROKD_ERR_PERMISSION'))
    assert.deepEqual([...kernel.openFds], [])
  })

  it('opens no socket for an empty change', () => {
    const kernel = new FakeDarwinKernel()
    changeInterfaceAddresses(kernel, { ...caller, ifname: 'lo0', add: [], remove: [], pointToPoint: false })
    assert.deepEqual(kernel.calls, [])
  })

  it('sets the MTU; an interface that does not exist is ENXIO', () => {
    const kernel = new FakeDarwinKernel()
    setInterfaceMtu(kernel, { ...caller, ifname: 'en0', mtu: 9000 })
    assert.equal(kernel.interfaces.get('en0')!.mtu, 9000)
    assert.throws(() => setInterfaceMtu(kernel, { ...caller, ifname: 'utun9', mtu: 9000 }), (e) => isNgrokdError(e, 'NGROKD_ERR_SYSCALL') && /ENXIO \(6\)/.test(e.message))
  })
})
