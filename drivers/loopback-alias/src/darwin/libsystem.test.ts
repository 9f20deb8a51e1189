// A smoke test of the koffi declarations against Linux libc, which has the same prototypes and,
// on 64-bit Linux, the same struct ifaddrs layout: a typo in a declaration fails here. Linux's
// numbers (SOL_SOCKET 1, O_NONBLOCK 0x800, EAGAIN 11) are used where the test needs the OS to
// answer. What it cannot check: macOS's sockaddr layout (sa_len first), sysctl(3) (glibc has none:
// its prototype is only parsed), and the macOS requests themselves; see README.md.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { closeSync, constants, mkdtempSync, openSync, rmSync } from 'node:fs'
import { createSocket } from 'node:dgram'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import koffi from 'koffi'
import { isNgrokdError } from '@ngrokd/core/driver'
import { requires } from '@ngrokd/core/testing'
import { AF_INET, SOCK_DGRAM } from './constants.js'
import { SIOCAIFADDR } from './structs.js'

const skip = requires.all(requires.linux(), process.arch === 'x64' || process.arch === 'arm64' ? false : 'needs a 64-bit Linux')
const LINUX = { SOL_SOCKET: 1, SO_TYPE: 3, F_GETFL: 3, O_NONBLOCK: 0o4000, EBADF: 9, EAGAIN: 11, EINVAL: 22 }

describe('libsystem.ts declarations (against Linux libc)', { skip }, () => {
  const load = async () => (await import('./libsystem.js')).bindLibSystem('libc.so.6', { without: ['sysctl'] })

  it('every prototype parses, sysctl included', async () => {
    const { PROTOTYPES } = await import('./libsystem.js')
    for (const [name, prototype] of Object.entries(PROTOTYPES)) {
      const type = koffi.proto(prototype.replace(`${name}(`, `smoke_${name}(`))
      assert.equal(type.primitive, 'Prototype', name)
    }
    const sys = await load()
    assert.throws(() => sys.sysctl([4, 17, 0, 2, 1, 0], null), (e) => isNgrokdError(e, 'NGROKD_ERR_SYSCALL') && /ENOSYS/.test(e.message))
  })

  it('walks the getifaddrs list and frees it', async () => {
    const sys = await load()
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
    const sys = await load()
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

  it('connects a socket and reads an option back', async () => {
    const sys = await load()
    const server = createSocket('udp4')
    await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve))
    const fd = sys.socket(AF_INET, SOCK_DGRAM, 0)
    try {
      const linuxSockaddrIn = Buffer.alloc(16) // Linux: sin_family is a u16 and there is no sin_len
      linuxSockaddrIn.writeUInt16LE(AF_INET, 0)
      linuxSockaddrIn.writeUInt16BE(server.address().port, 2)
      linuxSockaddrIn.writeUInt32BE(0x7f000001, 4)
      assert.equal(sys.connect(fd, linuxSockaddrIn), 0)
      assert.equal(sys.connect(fd, linuxSockaddrIn.subarray(0, 3)), LINUX.EINVAL, 'the length passed is the buffer length')
      const type = Buffer.alloc(4)
      assert.deepEqual(sys.getsockopt(fd, LINUX.SOL_SOCKET, LINUX.SO_TYPE, type), { errno: 0, length: 4 })
      assert.equal(type.readInt32LE(0), SOCK_DGRAM)
    } finally {
      sys.close(fd)
      server.close()
    }
  })

  it('reads a non-blocking descriptor, wakes up from the event loop when it becomes readable, and writes', async () => {
    const sys = await load()
    const dir = mkdtempSync(join(tmpdir(), 'ngrokd-libsystem-'))
    const fifo = join(dir, 'fifo')
    execFileSync('mkfifo', [fifo])
    const readEnd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK)
    const writeEnd = openSync(fifo, constants.O_WRONLY)
    try {
      assert.ok((sys.fcntl(readEnd, LINUX.F_GETFL, 0) & LINUX.O_NONBLOCK) !== 0, 'fcntl(F_GETFL) returns the flags')
      const buf = Buffer.alloc(64)
      assert.equal(sys.read(readEnd, buf), -LINUX.EAGAIN, 'nothing to read: the negated errno, no blocking')
      const readable = new Promise<void>((resolve) => {
        const watch = sys.watchReadable(readEnd, () => {
          watch.close()
          resolve()
        })
      })
      assert.equal(sys.write(writeEnd, Buffer.from('hello')), 5, 'write(2): the bytes written')
      await readable
      assert.equal(sys.read(readEnd, buf), 5)
      assert.equal(buf.toString('latin1', 0, 5), 'hello')
      assert.equal(sys.write(readEnd, Buffer.from('x')), -LINUX.EBADF, 'a failed write: the negated errno')
    } finally {
      closeSync(writeEnd)
      closeSync(readEnd)
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
