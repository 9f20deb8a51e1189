import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { requires } from '../testing/requires.js'
import { decodeUcred, linuxPeerCheck, SO_PEERCRED, SOL_SOCKET, UCRED } from './peer-cred-linux.js'

/** A connected pair over a Unix socket in `dir`: the accepted (server) side and the client. */
async function connectedPair(dir: string): Promise<{ accepted: Socket; close(): Promise<void> }> {
  const path = join(dir, 's.sock')
  let server: Server | undefined
  const accepted = new Promise<Socket>((resolve) => (server = createServer(resolve).listen(path)))
  const client = createConnection(path)
  const peer = await accepted
  return {
    accepted: peer,
    async close() {
      peer.destroy()
      client.destroy()
      await new Promise((resolve) => server!.close(resolve))
    },
  }
}

describe('control socket peers on Linux (SO_PEERCRED)', { skip: requires.linux() }, () => {
  it('uses the numbers and the struct ucred layout of the C headers', async (t) => {
    const cc = ['cc', 'gcc', 'clang'].find((c) => !spawnSync(c, ['--version']).error)
    if (!cc) return t.skip('no C compiler to read the headers with')
    const dir = await mkdtemp(join(tmpdir(), 'ngrokd-ucred-'))
    try {
      const source = join(dir, 'probe.c')
      await writeFile(
        source,
        `#define _GNU_SOURCE
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>
int main(void) { printf("[%d,%d,%zu,%zu,%zu,%zu]", SOL_SOCKET, SO_PEERCRED, offsetof(struct ucred, pid), offsetof(struct ucred, uid), offsetof(struct ucred, gid), sizeof(struct ucred)); return 0; }
`,
      )
      const built = spawnSync(cc, ['-o', join(dir, 'probe'), source], { encoding: 'utf8' })
      assert.equal(built.status, 0, built.stderr)
      const probed = JSON.parse(spawnSync(join(dir, 'probe'), { encoding: 'utf8' }).stdout) as number[]
      assert.deepEqual([SOL_SOCKET, SO_PEERCRED, UCRED.pid, UCRED.uid, UCRED.gid, UCRED.size], probed)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('decodes struct ucred; refuses a length the kernel does not write', () => {
    const b = Buffer.alloc(12)
    b.writeInt32LE(4242, 0)
    b.writeUInt32LE(1000, 4)
    b.writeUInt32LE(100, 8)
    assert.deepEqual(decodeUcred(b, 12), { pid: 4242, uid: 1000, gid: 100 })
    assert.throws(() => decodeUcred(b, 8), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONTROL') && /8 bytes of struct ucred, not 12/.test(e.message))
  })

  it('root and the daemon’s own user may change things, anyone else the socket lets in only reads; an unknown peer is refused', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ngrokd-ucred-'))
    const pair = await connectedPair(dir)
    try {
      const asked: number[] = []
      let uid = 1000
      const fake = (fd: number, level: number, name: number, value: Buffer) => {
        asked.push(fd)
        assert.deepEqual([level, name, value.length], [SOL_SOCKET, SO_PEERCRED, 12])
        value.writeUInt32LE(uid, UCRED.uid)
        return { errno: 0, length: 12 }
      }
      const refusals: string[] = []
      const check = linuxPeerCheck(fake, (why) => refusals.push(why), 1000)
      assert.equal(check(pair.accepted), 'all', 'the daemon’s own user')
      uid = 0
      assert.equal(check(pair.accepted), 'all', 'root')
      uid = 1001
      assert.equal(check(pair.accepted), 'read', 'a member of control.group')
      assert.equal(linuxPeerCheck(() => ({ errno: 107, length: 0 }), (why) => refusals.push(why))(pair.accepted), false)
      assert.match(refusals.at(-1)!, /cannot tell who connected: getsockopt\(SO_PEERCRED\) failed: errno 107/)
      assert.ok(asked.every((fd) => fd === asked[0]), 'asked about the accepted connection’s own descriptor')
    } finally {
      await pair.close()
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('reads the real peer through koffi', async () => {
    const { bindGetsockopt } = await import('../util/sockopt-ffi.js')
    const dir = await mkdtemp(join(tmpdir(), 'ngrokd-ucred-'))
    const pair = await connectedPair(dir)
    try {
      const refusals: string[] = []
      assert.equal(linuxPeerCheck(bindGetsockopt(), (why) => refusals.push(why))(pair.accepted), 'all', 'this process talking to itself')
      assert.equal(linuxPeerCheck(bindGetsockopt(), (why) => refusals.push(why), process.getuid!() + 1)(pair.accepted), process.getuid!() === 0 ? 'all' : 'read')
      assert.deepEqual(refusals, [])
    } finally {
      await pair.close()
      await rm(dir, { recursive: true, force: true })
    }
  })
})
