import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { silentLogger } from '../contracts/logger.js'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { ControlServer } from './control-server.js'
import { controlRequest } from './control-client.js'

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
