import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type AddressInfo } from 'node:net'
import { basename } from 'node:path'
import { describePortHolder, findPortHolder } from './port-holder.js'

/** Runs `fn` with a server of this process listening on a free port of `host`. */
async function withListener(host: string, fn: (port: number) => Promise<void>): Promise<void> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  try {
    await fn((server.address() as AddressInfo).port)
  } finally {
    server.close()
  }
}

describe('findPortHolder', { skip: process.platform !== 'linux' && 'reads /proc' }, () => {
  it('names the program by its executable, not by its main thread (Node 24 calls that MainThread)', () =>
    withListener('0.0.0.0', async (port) => {
      const holder = await findPortHolder('127.0.0.1', port)
      assert.ok(holder, 'the listener is found')
      assert.equal(holder.listen, `0.0.0.0:${port}`)
      assert.equal(holder.pid, process.pid)
      assert.equal(holder.command, basename(process.execPath))
      assert.equal(describePortHolder({ ...holder, pid: 1 }), `${basename(process.execPath)} (pid 1) on 0.0.0.0:${port}`)
      assert.equal(describePortHolder(holder), `this ngrokd itself (pid ${process.pid}: a bug, please report it) on 0.0.0.0:${port}`, 'never blamed on another program')
    }))

  it('for a listen on 0.0.0.0, a socket on one IPv4 address of the port is the holder', () =>
    withListener('127.0.0.1', async (port) => {
      const holder = await findPortHolder('0.0.0.0', port)
      assert.equal(holder?.listen, `127.0.0.1:${port}`)
      assert.equal(holder?.pid, process.pid)
      assert.equal(await findPortHolder('127.0.0.2', port), undefined, 'another specific address does not collide')
    }))

  it("a holder whose process could not be read says how to name it", () => {
    assert.equal(describePortHolder({ listen: '0.0.0.0:5432' }), "another program (`sudo ss -ltnp 'sport = :5432'` names it) on 0.0.0.0:5432")
    assert.equal(describePortHolder({ listen: '[::]:8080' }), "another program (`sudo ss -ltnp 'sport = :8080'` names it) on [::]:8080")
  })

  it('finds nothing on a port no one listens on', async () => {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    await new Promise<void>((resolve) => server.close(() => resolve()))
    assert.equal(await findPortHolder('127.0.0.1', port), undefined)
  })
})
