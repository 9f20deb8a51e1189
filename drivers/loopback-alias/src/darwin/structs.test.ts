import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import {
  _IOW,
  decodeIfaddrsNode,
  decodeSockaddrIn,
  encodeIfaliasreq,
  encodeIfreqAddr,
  encodeSockaddrIn,
  IFADDRS,
  IFALIASREQ_SIZE,
  IFREQ_SIZE,
  SIOCAIFADDR,
  SIOCDIFADDR,
} from './structs.js'

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex')

describe('darwin structs', () => {
  it('SIOCAIFADDR and SIOCDIFADDR are _IOW(i, 26, ifaliasreq) and _IOW(i, 25, ifreq)', () => {
    // 0x80000000 (IOC_IN) | 64 << 16 | 0x69 ('i') << 8 | 26
    assert.equal(0x80000000 + 64 * 0x10000 + 0x69 * 0x100 + 26, 0x8040691a)
    assert.equal(_IOW('i', 26, IFALIASREQ_SIZE), 0x8040691a)
    assert.equal(SIOCAIFADDR, _IOW('i', 26, 64))
    assert.equal(0x80000000 + 32 * 0x10000 + 0x69 * 0x100 + 25, 0x80206919)
    assert.equal(_IOW('i', 25, IFREQ_SIZE), 0x80206919)
    assert.equal(SIOCDIFADDR, _IOW('i', 25, 32))
  })

  it('encodes struct sockaddr_in: len 16, AF_INET, port 0, address in network order, zero padding', () => {
    assert.deepEqual(encodeSockaddrIn('127.107.0.2'), hex('10 02 0000 7f6b0002 0000000000000000'))
    assert.deepEqual(encodeSockaddrIn('255.255.255.255'), hex('10 02 0000 ffffffff 0000000000000000'))
  })

  it('encodes struct ifaliasreq for lo0 byte for byte', () => {
    const b = encodeIfaliasreq({ name: 'lo0', address: '127.107.0.2', mask: '255.255.255.255' })
    assert.equal(b.length, 64)
    assert.deepEqual(
      b,
      hex(`
        6c6f3000 00000000 00000000 00000000
        10020000 7f6b0002 00000000 00000000
        00000000 00000000 00000000 00000000
        10020000 ffffffff 00000000 00000000`),
    )
    const withBroadcast = encodeIfaliasreq({ name: 'lo0', address: '127.107.0.2', mask: '255.255.0.0', broadaddr: '127.107.255.255' })
    assert.deepEqual(withBroadcast.subarray(32, 64), hex('10020000 7f6bffff 00000000 00000000 10020000 ffff0000 00000000 00000000'))
  })

  it('encodes struct ifreq with ifr_addr for lo0 byte for byte', () => {
    assert.deepEqual(
      encodeIfreqAddr({ name: 'lo0', address: '127.107.1.200' }),
      hex(`
        6c6f3000 00000000 00000000 00000000
        10020000 7f6b01c8 00000000 00000000`),
    )
  })

  it('refuses names that do not fit IFNAMSIZ and bad addresses', () => {
    assert.throws(() => encodeIfreqAddr({ name: 'a'.repeat(16), address: '127.0.0.2' }), RangeError)
    assert.throws(() => encodeIfaliasreq({ name: 'lo0', address: '127.0.0.300', mask: '255.255.255.255' }), RangeError)
  })

  it('decodes AF_INET sockaddrs only', () => {
    assert.equal(decodeSockaddrIn(hex('10020000 7f6b0002 0000000000000000')), '127.107.0.2')
    assert.equal(decodeSockaddrIn(hex('1c1e0000 00000000 00000000000000000000000000000001 00000000')), undefined, 'AF_INET6')
    assert.equal(decodeSockaddrIn(hex('14120100 18030000 6c6f30')), undefined, 'AF_LINK')
    assert.equal(decodeSockaddrIn(hex('0502')), undefined, 'truncated')
  })

  it('decodes struct ifaddrs (64-bit layout) byte for byte', () => {
    assert.equal(IFADDRS.size, 56)
    const node = hex(`
      1010101010100000
      2020202020200000
      49800000 00000000
      3030303030300000
      4040404040400000
      0000000000000000
      0000000000000000`)
    assert.deepEqual(decodeIfaddrsNode(node), {
      next: 0x101010101010n,
      name: 0x202020202020n,
      flags: 0x8049,
      addr: 0x303030303030n,
      netmask: 0x404040404040n,
      dstaddr: 0n,
    })
    assert.throws(() => decodeIfaddrsNode(node.subarray(0, 40)), RangeError)
  })
})
