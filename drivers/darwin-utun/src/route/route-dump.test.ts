import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { isNgrokdError } from '@ngrokd/core/driver'
import { FakeDarwinKernel } from '@ngrokd/driver-loopback-alias/darwin/testing'
import { decodeMaskPrefix, parseRouteDump, readRoutes, RTF_GATEWAY, RTF_HOST, RTF_STATIC, RTF_UP, sockaddrSpace } from './route-dump.js'

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex')
const caller = { driver: 'darwin-utun', privilegeHint: 'run ngrokd with sudo' }

/** struct rt_msghdr written out by hand: msglen, version, type, index, 2 bytes padding, flags, addrs, then 76 zero bytes (pid … rtm_rmx). */
function header({ msglen, version = 5, type = 4, index, flags, addrs }: { msglen: number; version?: number; type?: number; index: number; flags: number; addrs: number }): string {
  const b = Buffer.alloc(16)
  b.writeUInt16LE(msglen, 0)
  b[2] = version
  b[3] = type
  b.writeUInt16LE(index, 4)
  b.writeInt32LE(flags, 8)
  b.writeInt32LE(addrs, 12)
  return b.toString('hex') + '00'.repeat(76)
}

describe('routing table dump', () => {
  it('walks sockaddrs by ROUNDUP32(sa_len), 4 bytes for sa_len 0', () => {
    assert.deepEqual([0, 1, 4, 5, 6, 8, 16, 20, 28].map(sockaddrSpace), [4, 4, 4, 8, 8, 8, 16, 20, 28])
  })

  it('reads trimmed netmasks', () => {
    assert.equal(decodeMaskPrefix(hex('')), 0, 'sa_len 0: /0')
    assert.equal(decodeMaskPrefix(hex('00000000')), 0)
    assert.equal(decodeMaskPrefix(hex('05ff0000 ff')), 8)
    assert.equal(decodeMaskPrefix(hex('06ff0000 ffff')), 16)
    assert.equal(decodeMaskPrefix(hex('07020000 ffffe0')), 19)
    assert.equal(decodeMaskPrefix(hex('10020000 ffffffff 0000000000000000')), 32)
    assert.equal(decodeMaskPrefix(hex('08000000 ff00ff00')), undefined, 'not contiguous')
  })

  it('parses RTM_GET messages byte for byte, skipping other versions, other families and a truncated tail', () => {
    const dump = Buffer.concat([
      // default via 192.168.64.1 on index 6: DST, GATEWAY (sockaddr_in), NETMASK with sa_len 0
      hex(`8000 05 04 0600 0000 03080000 07000000` + '00'.repeat(76) + `
           10020000 00000000 0000000000000000
           10020000 c0a84001 0000000000000000
           00000000`),
      // 10.107.0.0/16 on index 7 (a VPN's utun): GATEWAY is a sockaddr_dl, NETMASK trimmed to 6 bytes
      hex(header({ msglen: 92 + 16 + 20 + 8, index: 7, flags: RTF_UP | RTF_STATIC, addrs: 0x7 }) + `
           10020000 0a6b0000 0000000000000000
           14120700 ff000000 000000000000000000000000
           06ff0000 ffff 0000`),
      // host route 10.107.0.2 on index 9: no NETMASK (RTF_HOST), and RTA_IFA after it
      hex(header({ msglen: 92 + 16 + 20 + 16, index: 9, flags: RTF_UP | RTF_HOST, addrs: 0x23 }) + `
           10020000 0a6b0002 0000000000000000
           14120900 ff000000 000000000000000000000000
           10020000 0a6b0002 0000000000000000`),
      // an older message version: skipped by its length
      hex(header({ msglen: 92 + 16, version: 4, index: 1, flags: RTF_UP, addrs: 0x1 }) + '10020000 0a000000 0000000000000000'),
      // an IPv6 destination: skipped
      hex(header({ msglen: 92 + 28, index: 1, flags: RTF_UP | RTF_HOST, addrs: 0x1 }) + '1c1e0000' + '00'.repeat(24)),
      // truncated: rtm_msglen runs past the buffer
      hex(header({ msglen: 500, index: 1, flags: RTF_UP, addrs: 0x1 }) + '10020000 0a000000'),
    ])
    assert.deepEqual(parseRouteDump(dump), [
      { dst: '0.0.0.0', prefix: 0, flags: RTF_UP | RTF_GATEWAY | RTF_STATIC, index: 6, gateway: '192.168.64.1' },
      { dst: '10.107.0.0', prefix: 16, flags: RTF_UP | RTF_STATIC, index: 7 },
      { dst: '10.107.0.2', prefix: 32, flags: RTF_UP | RTF_HOST, index: 9 },
    ])
    assert.deepEqual(parseRouteDump(Buffer.alloc(0)), [])
  })

  it('reads the table through sysctl(3), and again when it grew between the size query and the read', () => {
    const kernel = new FakeDarwinKernel()
    for (let i = 0; i < 40; i++) kernel.growRoutesAfterSizeQuery.push({ dst: `172.16.${i}.0`, prefix: 24, index: 6, flags: RTF_UP | RTF_GATEWAY, gateway: '192.168.64.1' })
    const routes = readRoutes(kernel, caller)
    assert.deepEqual(
      kernel.calls.filter((c) => c.call === 'sysctl').map((c) => c.result < 0 ? 'ENOMEM' : c.args!.at(-1) === -1 ? 'size' : 'read'),
      ['size', 'ENOMEM', 'size', 'read'],
    )
    assert.equal(routes.length, kernel.routes.length)
    assert.deepEqual(routes.find((r) => r.prefix === 0), { dst: '0.0.0.0', prefix: 0, flags: RTF_UP | RTF_GATEWAY | RTF_STATIC, index: 6, gateway: '192.168.64.1' })
    assert.ok(routes.some((r) => r.dst === '172.16.39.0' && r.prefix === 24))
    assert.ok(routes.some((r) => r.dst === '127.0.0.1' && r.prefix === 32 && r.index === 1))
  })

  it('turns a failed sysctl into a coded error', () => {
    const kernel = new FakeDarwinKernel()
    kernel.sysctl = () => ({ errno: 22, length: 0 })
    assert.throws(() => readRoutes(kernel, caller), (e) => isNgrokdError(e, 'NGROKD_ERR_SYSCALL') && e.message === 'sysctl(NET_RT_DUMP) (routing table size) failed: EINVAL (22)')
  })
})
