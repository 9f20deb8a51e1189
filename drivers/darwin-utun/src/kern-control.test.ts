import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { decodeCtlId, decodeIfname, encodeCtlInfo, encodeSockaddrCtl, unitForName } from './kern-control.js'

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex')

describe('kernel control encoders', () => {
  it('struct ctl_info for com.apple.net.utun_control, byte for byte', () => {
    const b = encodeCtlInfo('com.apple.net.utun_control')
    assert.equal(b.length, 100)
    assert.deepEqual(
      b.subarray(0, 32),
      hex(`00000000 636f6d2e 6170706c 652e6e65 742e7574 756e5f63 6f6e7472 6f6c 0000`), // ctl_id 0, "com.apple.net.utun_control", NUL
    )
    assert.ok(b.subarray(30).every((x) => x === 0), 'NUL-terminated and zero-padded')
    b.writeUInt32LE(0x2a, 0) // what the kernel writes back
    assert.equal(decodeCtlId(b), 0x2a)
  })

  it('refuses control names that do not fit MAX_KCTL_NAME with their NUL', () => {
    assert.throws(() => encodeCtlInfo(''), RangeError)
    assert.throws(() => encodeCtlInfo('x'.repeat(96)), RangeError)
    assert.equal(encodeCtlInfo('x'.repeat(95))[99], 0)
  })

  it('struct sockaddr_ctl, byte for byte: sc_len 32, AF_SYSTEM, AF_SYS_CONTROL, id, unit, reserved zero', () => {
    assert.deepEqual(
      encodeSockaddrCtl({ id: 0x2a, unit: 0 }),
      hex(`20 20 0200 2a000000 00000000
           00000000 00000000 00000000 00000000 00000000`),
    )
    assert.deepEqual(encodeSockaddrCtl({ id: 0xdeadbeef, unit: 8 }).subarray(4, 12), hex('efbeadde 08000000'))
    assert.throws(() => encodeSockaddrCtl({ id: -1, unit: 0 }), RangeError)
  })

  it('reads the name UTUN_OPT_IFNAME wrote', () => {
    assert.equal(decodeIfname(Buffer.from('utun4\0\0\0\0\0\0\0\0\0\0\0', 'latin1'), 6), 'utun4')
    assert.equal(decodeIfname(Buffer.from('utun12', 'latin1'), 6), 'utun12', 'no NUL within length')
  })

  it('asks for unit N + 1 when the configured name is utunN, else for the next free unit', () => {
    assert.equal(unitForName('utun0'), 1)
    assert.equal(unitForName('utun7'), 8)
    assert.equal(unitForName('ngrokd0'), undefined)
    assert.equal(unitForName('utun'), undefined)
    assert.equal(unitForName('utun7x'), undefined)
  })
})
