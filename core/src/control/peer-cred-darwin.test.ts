import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { requires } from '../testing/requires.js'
import { decodeXucred, ERRNO_NAMES, LOCAL_PEERCRED, NGROUPS, readPeerCredDarwin, SOL_LOCAL, XUCRED, XUCRED_VERSION, type Getsockopt } from './peer-cred-darwin.js'

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex')
/** uid 501, groups 20 (staff), 12 (everyone), 61 (localaccounts) — a macOS admin user. */
const XUCRED_501 = hex(`00000000 f5010000 0300 0000 14000000 0c000000 3d000000` + '00000000'.repeat(13))

describe('LOCAL_PEERCRED on macOS', () => {
  const layouts = JSON.parse(readFileSync(new URL('./peer-cred-darwin.layouts.json', import.meta.url), 'utf8')) as { targets: Record<string, Record<string, number>> }

  it('constants and struct xucred match what a compiler read from the headers, for x86_64 and arm64', () => {
    assert.deepEqual(Object.keys(layouts.targets).sort(), ['arm64-apple-macos11', 'x86_64-apple-macos11'])
    for (const [target, h] of Object.entries(layouts.targets)) {
      assert.deepEqual(
        { SOL_LOCAL, LOCAL_PEERCRED, XUCRED_VERSION, NGROUPS, ...XUCRED },
        {
          SOL_LOCAL: h.SOL_LOCAL,
          LOCAL_PEERCRED: h.LOCAL_PEERCRED,
          XUCRED_VERSION: h.XUCRED_VERSION,
          NGROUPS: h.NGROUPS,
          version: h.offsetof_xucred__cr_version,
          uid: h.offsetof_xucred__cr_uid,
          ngroups: h.offsetof_xucred__cr_ngroups,
          groups: h.offsetof_xucred__cr_groups,
          size: h.sizeof_xucred,
        },
        target,
      )
      assert.equal(h.offsetof_xucred__cr_groups! + 4 * h.NGROUPS!, h.sizeof_xucred, `${target}: cr_groups ends the struct`)
      for (const [errno, name] of Object.entries(ERRNO_NAMES)) assert.equal(Number(errno), h[name], `${target} ${name}`)
    }
  })

  it('decodes struct xucred byte for byte; the effective gid is cr_groups[0]', () => {
    assert.equal(XUCRED_501.length, 76)
    assert.deepEqual(decodeXucred(XUCRED_501, 76), { uid: 501, gid: 20, groups: [20, 12, 61] })
    const root = Buffer.from(XUCRED_501)
    root.writeUInt32LE(0, 4)
    root.writeInt16LE(1, 8)
    root.writeUInt32LE(0, 12)
    assert.deepEqual(decodeXucred(root, 76), { uid: 0, gid: 0, groups: [0] })
  })

  it('refuses what is not a version-0 struct xucred with a coded error', () => {
    const refuses = (b: Buffer, length: number, why: RegExp) => assert.throws(() => decodeXucred(b, length), (e) => isNgrokdError(e, 'NGROKD_ERR_CONTROL') && why.test(e.message))
    refuses(XUCRED_501, 72, /wrote 72 bytes/)
    const v1 = Buffer.from(XUCRED_501)
    v1.writeUInt32LE(1, 0)
    refuses(v1, 76, /version 1/)
    const none = Buffer.from(XUCRED_501)
    none.writeInt16LE(0, 8)
    refuses(none, 76, /0 groups/)
    none.writeInt16LE(17, 8)
    refuses(none, 76, /17 groups/)
  })

  it('asks getsockopt for SOL_LOCAL/LOCAL_PEERCRED with room for a struct xucred, and words a failure', () => {
    const asked: Array<[number, number, number, number]> = []
    const fake: Getsockopt = (fd, level, name, value) => {
      asked.push([fd, level, name, value.length])
      XUCRED_501.copy(value)
      return { errno: 0, length: 76 }
    }
    assert.deepEqual(readPeerCredDarwin(7, fake), { uid: 501, gid: 20, groups: [20, 12, 61] })
    assert.deepEqual(asked, [[7, 0, 1, 76]])
    assert.throws(
      () => readPeerCredDarwin(7, () => ({ errno: 57, length: 0 })),
      (e) => isNgrokdError(e, 'NGROKD_ERR_CONTROL') && e.message === 'control socket: cannot tell who connected: getsockopt(LOCAL_PEERCRED) failed: ENOTCONN (57)',
    )
  })

  // A smoke test of the koffi declaration against Linux libc (same prototype): SO_PEERCRED there.
  it('the getsockopt declaration binds and reads a peer (Linux libc, SO_PEERCRED)', { skip: requires.linux() }, async () => {
    const { bindGetsockopt } = await import('../util/sockopt-ffi.js')
    const getsockopt = bindGetsockopt()
    const dir = await mkdtemp(join(tmpdir(), 'ngrokd-peercred-'))
    const path = join(dir, 's.sock')
    let server: Server | undefined
    const accepted = new Promise<Socket>((resolve) => (server = createServer(resolve).listen(path)))
    const client = createConnection(path)
    const peer = await accepted
    try {
      const fd = (peer as unknown as { _handle: { fd: number } })._handle.fd
      const ucred = Buffer.alloc(12) // struct ucred { pid_t pid; uid_t uid; gid_t gid; } — <sys/socket.h> (Linux)
      assert.deepEqual(getsockopt(fd, 1 /* SOL_SOCKET */, 17 /* SO_PEERCRED */, ucred), { errno: 0, length: 12 })
      assert.deepEqual([ucred.readInt32LE(0), ucred.readUInt32LE(4), ucred.readUInt32LE(8)], [process.pid, process.getuid!(), process.getgid!()])
      assert.equal(getsockopt(-1, 1, 17, ucred).errno, 9, 'EBADF comes back as the errno')
    } finally {
      peer.destroy()
      client.destroy()
      await new Promise((resolve) => server!.close(resolve))
      await rm(dir, { recursive: true, force: true })
    }
  })
})
