import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, chown, mkdir, mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { localUser, localUserSkip, type LocalUser } from '../util/local-user.test-helper.js'
import { callDaemon, callPipes } from './control-api.js'

/** A stand-in daemon on a Unix socket that records every request body it receives. */
async function listener(path: string): Promise<{ server: Server; bodies: string[] }> {
  const bodies: string[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => (body += c.toString()))
    req.on('end', () => {
      bodies.push(body)
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ ok: true, saved: '/x/api-key' }))
    })
  })
  await new Promise<void>((resolve) => server.listen(path, resolve))
  return { server, bodies }
}

describe('callDaemon as root: the API key goes only to a socket root alone controls', { skip: localUserSkip() }, () => {
  let dir: string
  let eve: LocalUser
  const servers: Server[] = []
  before(async () => {
    eve = localUser()!
    dir = await mkdtemp(join(tmpdir(), 'ngrokd-ctl-'))
    await chmod(dir, 0o755)
  })
  after(async () => {
    for (const s of servers) s.close()
    await rm(dir, { recursive: true, force: true })
  })

  it("refuses a socket another user owns, or one in another user's directory, before sending a byte", async () => {
    const planted = join(dir, 'planted.sock')
    const a = await listener(planted)
    servers.push(a.server)
    await chown(planted, eve.uid, eve.gid)
    const eveDir = join(dir, 'eve')
    await mkdir(eveDir, { mode: 0o755 })
    await chown(eveDir, eve.uid, eve.gid)
    const inEveDir = join(eveDir, 'ngrokd.sock')
    const b = await listener(inEveDir)
    servers.push(b.server)
    for (const [path, pattern] of [
      [planted, new RegExp(`refusing control socket ${planted}: ${planted} is owned by ${eve.name}`)],
      [inEveDir, new RegExp(`its directory ${eveDir} is owned by ${eve.name}`)],
    ] as const) {
      await assert.rejects(callDaemon(path, 'POST /v1/api-key', { key: 'ak_secret_key_123456' }), (e: unknown) => {
        assert.ok(isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED'), String(e))
        assert.match(e.message, pattern)
        return true
      })
    }
    assert.deepEqual([...a.bodies, ...b.bodies], [], 'no request reached the planted sockets')
  })

  it("talks to root's own socket, also when control.group opened it (0660); a missing one is 'not running'", async () => {
    const ours = join(dir, 'ours.sock')
    const c = await listener(ours)
    servers.push(c.server)
    await chmod(ours, 0o660)
    assert.deepEqual(await callDaemon(ours, 'POST /v1/api-key', { key: 'ak_secret_key_123456' }), { ok: true, saved: '/x/api-key' })
    assert.deepEqual(c.bodies, ['{"key":"ak_secret_key_123456"}'])
    await assert.rejects(callDaemon(join(dir, 'absent.sock'), 'GET /v1/status'), /ngrokd is not running/)
  })
})

describe('callPipes (Windows): the API key goes only to a pipe Administrators or SYSTEM own', () => {
  let dir: string
  const cwd = process.cwd()
  before(async () => {
    // a Unix socket named like the pipe, in the working directory: the client connects to `\\.\pipe\ngrokd` as given
    dir = await mkdtemp(join(tmpdir(), 'ngrokd-pipe-'))
    process.chdir(dir)
  })
  after(async () => {
    process.chdir(cwd)
    await rm(dir, { recursive: true, force: true })
  })

  it('reads the owner before a byte is sent: a squatter gets nothing, the daemon gets the key', async () => {
    const pipe = await listener('\\\\.\\pipe\\ngrokd')
    try {
      const asked: string[] = []
      const squatted = (p: string) => (asked.push(p), { sid: 'S-1-5-21-1-2-3-1001' })
      await assert.rejects(callPipes('/run/ngrokd.sock', 'POST', '/v1/api-key', { key: 'ak_secret_key_123456' }, undefined, squatted), (e: unknown) => {
        assert.ok(isNgrokdError(e, 'NGROKD_ERR_CONTROL'), String(e))
        assert.match(e.message, /is owned by S-1-5-21-1-2-3-1001, not by Administrators or SYSTEM/)
        return true
      })
      assert.deepEqual(asked, ['\\\\.\\pipe\\ngrokd'])
      assert.deepEqual(pipe.bodies, [], 'nothing reached the squatted pipe')
      const daemons = () => ({ sid: 'S-1-5-32-544' })
      assert.deepEqual(await callPipes('/run/ngrokd.sock', 'POST', '/v1/api-key', { key: 'ak_secret_key_123456' }, undefined, daemons), { ok: true, saved: '/x/api-key' })
      assert.deepEqual(pipe.bodies, ['{"key":"ak_secret_key_123456"}'])
    } finally {
      pipe.server.close()
    }
  })
})
