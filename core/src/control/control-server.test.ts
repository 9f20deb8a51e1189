import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { Agent, request } from 'node:http'
import { connect, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { silentLogger } from '../contracts/logger.js'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { ControlServer, type ControlServerOptions } from './control-server.js'
import { controlRequest } from './control-client.js'
import { requires } from '../testing/requires.js'

async function waitFor(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((resolve) => setTimeout(resolve, 5))
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ngrokd-control-'))
  try {
    await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

test('the socket is created 0600 and answers JSON routes; close removes it', () =>
  withDir(async (dir) => {
    const socketPath = join(dir, 'ngrokd.sock')
    const server = new ControlServer({
      socketPath,
      logger: silentLogger,
      routes: { 'GET /v1/status': () => ({ phase: 'running' }), 'POST /v1/echo': (body) => ({ got: body }) },
    })
    const umask = process.umask()
    await server.start()
    assert.equal(process.umask(), umask, 'the umask is restored after listen')
    assert.equal((await stat(socketPath)).mode & 0o777, 0o600)
    assert.deepEqual(await controlRequest(socketPath, 'GET', '/v1/status'), { phase: 'running' })
    assert.deepEqual(await controlRequest(socketPath, 'POST', '/v1/echo', { a: 1 }), { got: { a: 1 } })
    await assert.rejects(controlRequest(socketPath, 'GET', '/v1/nope'), /no route GET \/v1\/nope/)
    await server.close()
    await server.close()
    await assert.rejects(stat(socketPath), { code: 'ENOENT' })
    await assert.rejects(controlRequest(socketPath, 'GET', '/v1/status'), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONTROL') && /not running/.test((e as Error).message))
  }))

test('repair(): a socket file removed under the server is made again (0600) and answers; one that is there is left alone', () =>
  withDir(async (dir) => {
    const socketPath = join(dir, 'ngrokd.sock')
    const server = new ControlServer({ socketPath, logger: silentLogger, routes: { 'GET /v1/status': () => ({ phase: 'running' }) } })
    assert.equal(await server.repair(), undefined, 'before start(): nothing to repair')
    await server.start()
    try {
      assert.equal(await server.repair(), undefined)
      await rm(socketPath)
      await assert.rejects(controlRequest(socketPath, 'GET', '/v1/status'), /not running/)
      assert.equal(await server.repair(), `the control socket ${socketPath} was removed under the daemon: made it again`)
      assert.equal((await stat(socketPath)).mode & 0o777, 0o600)
      assert.deepEqual(await controlRequest(socketPath, 'GET', '/v1/status'), { phase: 'running' })
    } finally {
      await server.close()
    }
    await assert.rejects(stat(socketPath), { code: 'ENOENT' })
  }))

test('repair(): a request under way when the file went finishes on the old socket; a repair that fails is tried again by the next', () =>
  withDir(async (dir) => {
    const socketDir = join(dir, 'run')
    const socketPath = join(socketDir, 'ngrokd.sock')
    let answer: (() => void) | undefined
    const server = new ControlServer({
      socketPath,
      logger: silentLogger,
      routes: { 'GET /v1/status': () => ({ phase: 'running' }), 'POST /v1/slow': () => new Promise((resolve) => (answer = () => resolve({ done: true }))) },
    })
    await server.start()
    try {
      const slow = controlRequest(socketPath, 'POST', '/v1/slow', {})
      await waitFor(() => answer !== undefined)
      await rm(socketPath)
      assert.match((await server.repair())!, /made it again/)
      answer!()
      assert.deepEqual(await slow, { done: true }, 'the request under way got its answer')
      // the folder turned into a file: the repair fails, and the next one (the folder back) makes the socket
      await rm(socketDir, { recursive: true })
      await writeFile(socketDir, '')
      await assert.rejects(server.repair())
      await rm(socketDir)
      assert.match((await server.repair())!, /made it again/)
      assert.deepEqual(await controlRequest(socketPath, 'GET', '/v1/status'), { phase: 'running' })
    } finally {
      await server.close()
    }
  }))

test('a stale socket left by a crash is replaced; a live one is an error; a regular file is never deleted', () =>
  withDir(async (dir) => {
    const socketPath = join(dir, 'ngrokd.sock')
    // a live listener on the path: another daemon
    const other = createServer()
    await new Promise<void>((r) => other.listen(socketPath, r))
    const server = new ControlServer({ socketPath, logger: silentLogger, routes: {} })
    await assert.rejects(server.start(), /another ngrokd is already running/)
    // the same file without a listener: stale (close() of a net.Server unlinks, so simulate with a raw leftover)
    await new Promise<void>((r) => other.close(() => r()))
    const leftover = createServer()
    await new Promise<void>((r) => leftover.listen(socketPath, r))
    // detach without unlinking, like a kill -9
    ;(leftover as unknown as { _handle: { close(): void } })._handle.close()
    await server.start()
    assert.equal((await stat(socketPath)).mode & 0o777, 0o600)
    await server.close()

    await writeFile(socketPath, 'not a socket')
    await assert.rejects(new ControlServer({ socketPath, logger: silentLogger, routes: {} }).start(), /exists and is not a socket/)
    assert.equal((await stat(socketPath)).isFile(), true)
  }))

/** A started control server on `socketPath` whose one route, GET /v1/status, answers `{ phase: 'running' }`. */
async function startStatusServer(socketPath: string, options: Partial<ControlServerOptions> = {}): Promise<ControlServer> {
  const server = new ControlServer({ socketPath, logger: silentLogger, routes: { 'GET /v1/status': () => ({ phase: 'running' }) }, ...options })
  await server.start()
  return server
}

/** Descriptors this process holds (clients and server share it, so both sides count). */
async function openFds(): Promise<number> {
  return (await readdir('/proc/self/fd')).length
}

/** Resolves when `done()` holds, checking every 50 ms; gives up after `capMs` (a bound on a hang only; the caller asserts). */
async function until(done: () => boolean, capMs: number): Promise<void> {
  const deadline = Date.now() + capMs
  while (!done()) {
    if (Date.now() > deadline) return
    await new Promise((r) => setTimeout(r, 50))
  }
}

test('half-open requests are bounded and timed out: 800 slow clients hold at most maxConnections descriptors, then all are closed', () =>
  withDir(async (dir) => {
    const socketPath = join(dir, 'ngrokd.sock')
    const maxConnections = 16
    const server = await startStatusServer(socketPath, { limits: { maxConnections, headersTimeoutMs: 1000, requestTimeoutMs: 2000 } })
    const before = await openFds()
    const clients: Socket[] = []
    let closed = 0
    for (let i = 0; i < 800; i++) {
      const s = connect(socketPath)
      s.on('connect', () => s.write('GET /v1/status HTTP/1.1\r\nhost: x\r\n')) // never ends the head
      s.on('data', () => {})
      s.on('error', () => {})
      s.on('close', () => closed++)
      clients.push(s)
    }
    try {
      // the connections past the limit are closed at once; the others wait for the head timeout
      await until(() => closed >= 800 - maxConnections, 60_000)
      const held = (await openFds()) - before
      assert.ok(held <= 2 * maxConnections + 8, `800 slow clients hold ${held} descriptors (client and server side); the limit is ${maxConnections} connections`)
      await until(() => closed === 800, 60_000)
      assert.equal(closed, 800, 'slow requests are closed by the request-head timeout')
      assert.deepEqual(await controlRequest(socketPath, 'GET', '/v1/status'), { phase: 'running' }, 'the socket answers again')
    } finally {
      for (const s of clients) s.destroy()
      await server.close()
    }
  }))

test('members of control.group never take the connections kept for root: past their share a reader is closed, root still gets in', () =>
  withDir(async (dir) => {
    const socketPath = join(dir, 'ngrokd.sock')
    let access: 'all' | 'read' = 'read'
    const server = await startStatusServer(socketPath, {
      limits: { maxConnections: 4, headersTimeoutMs: 60_000, requestTimeoutMs: 60_000, idleTimeoutMs: 60_000 },
      peerCheck: () => access,
    })
    const readers: Socket[] = []
    try {
      // 4 connections, half of them kept: two readers stay open, a third is closed at once
      const closed: boolean[] = []
      for (let i = 0; i < 3; i++) {
        const s = connect(socketPath)
        s.on('error', () => {})
        const index = i
        closed[index] = false
        s.on('close', () => (closed[index] = true))
        readers.push(s)
        await new Promise<void>((r) => s.once('connect', () => r()))
      }
      await until(() => closed[2] === true, 10_000)
      assert.deepEqual(closed, [false, false, true], 'the third reader is closed, the first two are not')
      access = 'all'
      assert.deepEqual(await controlRequest(socketPath, 'GET', '/v1/status'), { phase: 'running' }, 'root gets in while readers hold their share')
    } finally {
      for (const s of readers) s.destroy()
      await server.close()
    }
  }))

test('a client that pipelines requests without reading the replies is closed (the daemon never holds a queue of replies)', () =>
  withDir(async (dir) => {
    const socketPath = join(dir, 'ngrokd.sock')
    let answered = 0
    const server = new ControlServer({
      socketPath,
      logger: silentLogger,
      routes: { 'GET /v1/status': async () => {
        answered++
        await new Promise((r) => setTimeout(r, 50))
        return { phase: 'running' }
      } },
    })
    await server.start()
    const s = connect(socketPath)
    try {
      s.on('error', () => {})
      await new Promise<void>((r) => s.once('connect', () => r()))
      const request = 'GET /v1/status HTTP/1.1\r\nhost: x\r\n\r\n'
      s.write(request.repeat(200)) // pipelined, and never read
      await new Promise<void>((r) => s.once('close', () => r()))
      assert.ok(answered <= 2, `at most the first two requests were handled, not ${answered}`)
      assert.deepEqual(await controlRequest(socketPath, 'GET', '/v1/status'), { phase: 'running' })
    } finally {
      s.destroy()
      await server.close()
    }
  }))

test('a kept-alive client that reads each reply before its next request is answered every time, large replies included', () =>
  withDir(async (dir) => {
    const socketPath = join(dir, 'ngrokd.sock')
    const big = 'x'.repeat(400_000) // far more than a socket buffer: written out over several turns of the loop
    const server = new ControlServer({ socketPath, logger: silentLogger, routes: { 'GET /v1/endpoints': () => ({ big }) } })
    await server.start()
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    try {
      const sockets = new Set<unknown>()
      for (let i = 0; i < 30; i++) {
        const body = await new Promise<string>((resolve, reject) => {
          const req = request({ socketPath, path: '/v1/endpoints', agent }, (res) => {
            let text = ''
            res.setEncoding('utf8')
            res.on('data', (d: string) => (text += d))
            res.on('end', () => resolve(text))
            res.on('error', reject)
          })
          req.on('socket', (s) => sockets.add(s))
          req.on('error', reject)
          req.end()
        })
        assert.equal((JSON.parse(body) as { big: string }).big.length, big.length, `reply ${i + 1}`)
      }
      assert.equal(sockets.size, 1, 'every request went over the one kept-alive connection')
    } finally {
      agent.destroy()
      await server.close()
    }
  }))

test('the peer check runs on every connection before a byte is read: macOS LOCAL_PEERCRED (a byte-exact fake) lets root and control.group in, refuses the rest', () =>
  withDir(async (dir) => {
    const { fstatSync } = await import('node:fs')
    const { darwinPeerCheck, LOCAL_PEERCRED, SOL_LOCAL } = await import('./peer-cred-darwin.js')
    /** struct xucred for uid `uid` in groups `groups` (<sys/ucred.h>: version, uid, ngroups, pad, groups[16]). */
    const xucred = (uid: number, groups: number[]): Buffer => {
      const b = Buffer.alloc(76)
      b.writeUInt32LE(uid, 4)
      b.writeInt16LE(groups.length, 8)
      groups.forEach((g, i) => b.writeUInt32LE(g, 12 + 4 * i))
      return b
    }
    let peer = xucred(501, [20, 12, 61])
    const asked: number[] = []
    const getsockopt = (fd: number, level: number, name: number, value: Buffer) => {
      assert.equal(fstatSync(fd).isSocket(), true, 'asked about the accepted connection’s own descriptor')
      assert.deepEqual([level, name, value.length], [SOL_LOCAL, LOCAL_PEERCRED, 76])
      asked.push(fd)
      peer.copy(value)
      return { errno: 0, length: 76 }
    }
    const refusals: string[] = []
    const serve = async (gid: number | undefined) => {
      const server = new ControlServer({
        socketPath: join(dir, `ngrokd-${gid}.sock`),
        logger: silentLogger,
        routes: { 'GET /v1/status': () => ({ phase: 'running' }) },
        peerCheck: darwinPeerCheck(getsockopt, gid, (why) => refusals.push(why)),
      })
      await server.start()
      return server
    }
    const noGroup = await serve(undefined)
    try {
      await assert.rejects(controlRequest(join(dir, 'ngrokd-undefined.sock'), 'GET', '/v1/status'), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONTROL'))
      assert.match(refusals.at(-1)!, /uid 501 \(groups 20,12,61\) is neither root nor in control\.group \(none configured\)/)
      peer = xucred(0, [0])
      assert.deepEqual(await controlRequest(join(dir, 'ngrokd-undefined.sock'), 'GET', '/v1/status'), { phase: 'running' }, 'root is let in')
    } finally {
      await noGroup.close()
    }
    const staff = await serve(20)
    try {
      peer = xucred(501, [20, 12, 61])
      assert.deepEqual(await controlRequest(join(dir, 'ngrokd-20.sock'), 'GET', '/v1/status'), { phase: 'running' }, 'a member of control.group is let in')
      peer = xucred(502, [12])
      await assert.rejects(controlRequest(join(dir, 'ngrokd-20.sock'), 'GET', '/v1/status'))
      assert.match(refusals.at(-1)!, /uid 502 .* \(gid 20\)/)
      peer = Buffer.alloc(76) // ngroups 0: not a credential the kernel gives
      await assert.rejects(controlRequest(join(dir, 'ngrokd-20.sock'), 'GET', '/v1/status'))
      assert.match(refusals.at(-1)!, /cannot tell who connected/)
    } finally {
      await staff.close()
    }
    assert.equal(asked.length, 5, 'one question per connection')
  }))

test('Linux: with control.group, a member reads (GET) and is refused every change (POST) by its SO_PEERCRED uid; root changes', { skip: requires.all(requires.linux(), requires.root(), requires.command('getent')) }, () =>
  withDir(async (dir) => {
    const { chmod } = await import('node:fs/promises')
    const { execFile } = await import('node:child_process')
    const { promisify } = await import('node:util')
    const [, , gid] = (await promisify(execFile)('getent', ['group', 'nogroup'])).stdout.trim().split(':')
    await chmod(dir, 0o755) // mkdtemp made it 0700: the other user must reach the socket
    // this node may sit in a folder only root may enter (CI's Node 24 does): the other user runs a link to it here
    const { copyFileSync, linkSync } = await import('node:fs')
    const node = join(dir, 'node')
    try {
      linkSync(process.execPath, node)
    } catch {
      copyFileSync(process.execPath, node)
    }
    await chmod(node, 0o755)
    const socketPath = join(dir, 'ngrokd.sock')
    let changed = 0
    const server = new ControlServer({
      socketPath,
      group: 'nogroup',
      logger: silentLogger,
      routes: { 'GET /v1/status': () => ({ phase: 'running' }), 'POST /v1/reload': () => ({ changed: ++changed }) },
    })
    await server.start()
    try {
      assert.equal((await stat(socketPath)).mode & 0o777, 0o660)
      // the CLI's request, made by a process of user nobody in group nogroup
      const client = new URL('./control-client.js', import.meta.url).href
      const asMember = async (method: string, path: string) => {
        const script = `import { controlRequest } from ${JSON.stringify(client)}
controlRequest(${JSON.stringify(socketPath)}, ${JSON.stringify(method)}, ${JSON.stringify(path)}, ${method === 'POST' ? '{}' : 'undefined'}).then((r) => console.log(JSON.stringify({ ok: r })), (e) => console.log(JSON.stringify({ error: e.message, code: e.code, hint: e.hint })))`
        const { stdout } = await promisify(execFile)(node, ['--input-type=module', '-e', script], { uid: 65534, gid: Number(gid), cwd: dir })
        return JSON.parse(stdout) as { ok?: unknown; error?: string; code?: string; hint?: string }
      }
      assert.deepEqual(await asMember('GET', '/v1/status'), { ok: { phase: 'running' } })
      const refused = await asMember('POST', '/v1/reload')
      assert.match(refused.error ?? '', /^POST \/v1\/reload changes the daemon: only root may; control\.group may read$/)
      assert.equal(refused.hint, 'run the command with sudo')
      assert.equal(refused.code, 'NGROKD_ERR_PERMISSION', 'the daemon\'s code reaches the CLI')
      assert.equal(changed, 0, 'the handler never ran')
      assert.deepEqual(await controlRequest(socketPath, 'POST', '/v1/reload', {}), { changed: 1 }, 'root changes')
    } finally {
      await server.close()
    }
  }))

test('a route whose handler fails by a bug answers 500, a coded refusal 400, a body that is not JSON 400; nothing returned is JSON null', () =>
  withDir(async (dir) => {
    const { NgrokdError } = await import('../errors/ngrokd-error.js')
    const { request } = await import('node:http')
    const socketPath = join(dir, 'ngrokd.sock')
    const server = new ControlServer({
      socketPath,
      logger: silentLogger,
      routes: {
        'GET /v1/bug': () => {
          throw new TypeError('x is undefined')
        },
        'POST /v1/refused': () => {
          throw new NgrokdError('NGROKD_ERR_API', 'the ngrok API refused this key')
        },
        'GET /v1/nothing': () => undefined,
      },
    })
    await server.start()
    const raw = (method: string, path: string, body?: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request({ socketPath, method, path }, (res) => {
          let text = ''
          res.on('data', (c: Buffer) => (text += c.toString()))
          res.on('end', () => resolve({ status: res.statusCode!, body: text }))
        })
        req.on('error', reject)
        req.end(body)
      })
    try {
      const bug = await raw('GET', '/v1/bug')
      assert.equal(bug.status, 500)
      assert.match(bug.body, /x is undefined/)
      assert.equal((await raw('POST', '/v1/refused', '{}')).status, 400)
      const notJson = await raw('POST', '/v1/refused', '{oops')
      assert.equal(notJson.status, 400)
      assert.match(notJson.body, /the request body is not JSON/)
      assert.deepEqual(await raw('GET', '/v1/nothing'), { status: 200, body: 'null' })
    } finally {
      await server.close()
    }
  }))

test('Windows: the control pipes, each DACL and owner set right after its listen; with control.group a read pipe that serves the GET routes only', () =>
  withDir(async (dir) => {
    // the pipes are Unix sockets here (the transport is the same HTTP); the DACL calls are recorded
    const listenPath = (pipe: string) => join(dir, pipe.replace(/^\\\\\.\\pipe\\/, ''))
    const applied: Array<{ pipe: string; sddl: string; owner: string; listening: boolean }> = []
    const security = {
      applyDacl: (pipe: string, sddl: string, owner: string) => void applied.push({ pipe, sddl, owner, listening: existsSync(listenPath(pipe)) }),
      pipeOwner: () => assert.fail('the server never reads an owner'),
      readDacl: () => '',
      groupSid: (name: string) => (name === 'ngrokd-readers' ? 'S-1-5-21-1-2-3-1001' : assert.fail(`unexpected group ${name}`)),
    }
    const routes = { 'GET /v1/status': () => ({ phase: 'running' }), 'POST /v1/reload': () => ({ applied: [] }) }
    const server = new ControlServer({ socketPath: '/run/ngrokd.sock', group: 'ngrokd-readers', logger: silentLogger, routes, platform: 'win32', pipeSecurity: async () => security, pipeListenPath: listenPath })
    await server.start()
    try {
      assert.deepEqual(applied, [
        { pipe: '\\\\.\\pipe\\ngrokd', sddl: 'D:P(A;;GA;;;SY)(A;;GA;;;BA)', owner: 'S-1-5-32-544', listening: true },
        { pipe: '\\\\.\\pipe\\ngrokd-read', sddl: 'D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;0x12019f;;;S-1-5-21-1-2-3-1001)', owner: 'S-1-5-32-544', listening: true },
      ])
      const full = listenPath('\\\\.\\pipe\\ngrokd')
      const read = listenPath('\\\\.\\pipe\\ngrokd-read')
      assert.deepEqual(await controlRequest(full, 'POST', '/v1/reload', {}), { applied: [] })
      assert.deepEqual(await controlRequest(read, 'GET', '/v1/status'), { phase: 'running' })
      await assert.rejects(controlRequest(read, 'POST', '/v1/reload', {}), /no route POST \/v1\/reload/, 'the read pipe changes nothing')
    } finally {
      await server.close()
    }
  }))
