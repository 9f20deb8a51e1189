import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import * as P from './windows-pipe-security.js'
import { parsePipeSecurityPrototypes, PIPE_SECURITY_ABI, PIPE_SECURITY_PROTOTYPES } from './windows-pipe-security-ffi.js'

/** What mingw-w64's headers say, per target (made by drivers/windows-wintun/probe/regenerate.mjs). */
const fixture = (): Record<string, Record<string, number>> => JSON.parse(readFileSync(new URL('./windows-abi.json', import.meta.url), 'utf8')).targets

describe('control pipe security', () => {
  it("access masks match mingw-w64 (winnt.h); the reader right is 0x12019f, what libuv's duplex client open asks for", () => {
    for (const v of Object.values(fixture())) {
      assert.equal(v.FILE_GENERIC_READ, P.FILE_GENERIC_READ)
      assert.equal(v.FILE_GENERIC_WRITE, P.FILE_GENERIC_WRITE)
      assert.equal(v.FILE_APPEND_DATA, P.FILE_APPEND_DATA)
      assert.equal(v.FILE_CREATE_PIPE_INSTANCE, P.FILE_APPEND_DATA, 'the same bit on a pipe')
      for (const [name, value] of Object.entries(PIPE_SECURITY_ABI)) assert.equal(value, v[name], name)
    }
    assert.equal(P.PIPE_CLIENT_RIGHTS, 0x12019f)
    // libuv's client open: CreateFileW(GENERIC_READ | GENERIC_WRITE), which a pipe maps to FILE_GENERIC_READ |
    // FILE_GENERIC_WRITE; with any bit of it missing the open falls back to read-only and no request can be written
    const generic = fixture()
    for (const v of Object.values(generic)) assert.equal(P.PIPE_CLIENT_RIGHTS & (v.FILE_GENERIC_READ! | v.FILE_GENERIC_WRITE!), v.FILE_GENERIC_READ! | v.FILE_GENERIC_WRITE!)
  })

  it('SDDL: SYSTEM and Administrators full control, protected; a reader group may only send requests', () => {
    assert.equal(P.controlPipeSddl(), 'D:P(A;;GA;;;SY)(A;;GA;;;BA)')
    assert.equal(P.controlPipeSddl('S-1-5-21-1004336348-1177238915-682003330-1001'), 'D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;0x12019f;;;S-1-5-21-1004336348-1177238915-682003330-1001)')
    assert.throws(() => P.controlPipeSddl('S-1-5-32-545)(A;;GA;;;WD'), RangeError, 'no SDDL injection through the SID')
    assert.ok(P.isSidString('S-1-5-32-545'))
    assert.ok(!P.isSidString('Users'))
  })

  it('one full pipe, and a GET-only pipe when a reader group is configured', () => {
    assert.deepEqual(P.controlPipes({}), [{ path: '\\\\.\\pipe\\ngrokd', sddl: 'D:P(A;;GA;;;SY)(A;;GA;;;BA)', routes: 'all' }])
    const pipes = P.controlPipes({ socket: '\\\\.\\pipe\\ngrokd', readerSid: 'S-1-5-32-545' })
    assert.deepEqual(pipes.map((p) => [p.path, p.routes]), [['\\\\.\\pipe\\ngrokd', 'all'], ['\\\\.\\pipe\\ngrokd-read', 'read']])
    assert.deepEqual(P.clientPipePaths('/run/ngrokd.sock', 'GET'), ['\\\\.\\pipe\\ngrokd', '\\\\.\\pipe\\ngrokd-read'])
    assert.deepEqual(P.clientPipePaths('/run/ngrokd-work.sock', 'POST'), ['\\\\.\\pipe\\ngrokd-work'])
    assert.equal(P.windowsPipeName('C:\\ProgramData\\ngrokd\\ngrokd.sock'), 'ngrokd')
    assert.equal(P.windowsPipeName('\\\\.\\pipe\\mine'), '\\\\.\\pipe\\mine')
    const routes = { 'GET /v1/status': 1, 'GET /v1/list': 2, 'POST /v1/api-key': 3 }
    assert.deepEqual(P.readOnlyRoutes(routes), { 'GET /v1/status': 1, 'GET /v1/list': 2 })
    assert.throws(() => P.controlPipes({ socket: '/run/ngrokd.sock' }), RangeError)
  })

  it("a client sends nothing to a pipe that Administrators or SYSTEM do not own; a missing or refusing pipe is left to the request", () => {
    assert.doesNotThrow(() => P.checkPipeOwner('\\\\.\\pipe\\ngrokd', { sid: 'S-1-5-32-544' }))
    assert.doesNotThrow(() => P.checkPipeOwner('\\\\.\\pipe\\ngrokd', { sid: 'S-1-5-18' }))
    assert.throws(() => P.checkPipeOwner('\\\\.\\pipe\\ngrokd', { sid: 'S-1-5-21-1-2-3-1001' }), {
      code: 'NGROKD_ERR_CONTROL',
      message: "\\\\.\\pipe\\ngrokd is owned by S-1-5-21-1-2-3-1001, not by Administrators or SYSTEM: it is not ngrokd's control pipe, and nothing was sent to it",
    })
    assert.doesNotThrow(() => P.checkPipeOwner('\\\\.\\pipe\\ngrokd', { unreadable: 'missing' }))
    assert.doesNotThrow(() => P.checkPipeOwner('\\\\.\\pipe\\ngrokd', { unreadable: 'denied' }))
    assert.throws(() => P.checkPipeOwner('\\\\.\\pipe\\ngrokd', { unreadable: 'busy' }), /stayed busy for 10 s/)
  })

  it('the kernel32 and advapi32 declarations parse', () => {
    assert.equal(parsePipeSecurityPrototypes(), PIPE_SECURITY_PROTOTYPES.length)
  })
})
