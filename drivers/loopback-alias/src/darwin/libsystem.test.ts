// A smoke test of the koffi declarations against Linux libc, which has the same prototypes and,
// on 64-bit Linux, the same struct ifaddrs layout. What it cannot check: macOS's sockaddr
// layout (sa_len first) and the SIOCAIFADDR/SIOCDIFADDR requests themselves; see README.md.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { isNgrokdError } from '@ngrokd/core/driver'
import { requires } from '@ngrokd/core/testing'
import { AF_INET, SIOCAIFADDR, SOCK_DGRAM } from './structs.js'

const skip = requires.all(requires.linux(), process.arch === 'x64' || process.arch === 'arm64' ? false : 'needs a 64-bit Linux')

describe('libsystem.ts declarations (against Linux libc)', { skip }, () => {
  it('walks the getifaddrs list and frees it', async () => {
    const { loadLibSystem } = await import('./libsystem.js')
    const sys = loadLibSystem('libc.so.6')
    const entries = sys.getifaddrs()
    assert.ok(entries.some((e) => e.name === 'lo'), `no lo in ${entries.map((e) => e.name).join(', ')}`)
    for (const e of entries) {
      assert.ok(e.name.length > 0 && e.name.length < 16, `interface name ${JSON.stringify(e.name)}`)
      assert.ok(e.addr === null || Buffer.isBuffer(e.addr))
    }
    // twice: freeifaddrs ran and nothing was corrupted
    assert.equal(sys.getifaddrs().length, entries.length)
  })

  it('opens and closes a socket, and returns the errno of a failed variadic ioctl', async () => {
    const { loadLibSystem } = await import('./libsystem.js')
    const sys = loadLibSystem('libc.so.6')
    const fd = sys.socket(AF_INET, SOCK_DGRAM, 0)
    assert.ok(fd >= 0)
    try {
      // Linux does not know macOS's SIOCAIFADDR: a UDP socket answers ENOTTY (25, the same on macOS)
      assert.equal(sys.ioctl(fd, SIOCAIFADDR, Buffer.alloc(64)), 25)
    } finally {
      sys.close(fd)
    }
    assert.throws(() => sys.socket(9999, SOCK_DGRAM, 0), (e) => isNgrokdError(e, 'NGROKD_ERR_SYSCALL') && /^socket failed: /.test(e.message))
  })
})
