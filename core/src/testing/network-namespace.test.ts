import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readlinkSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { createServer } from 'node:net'
import { enterNetworkNamespace } from './network-namespace.js'

// Recorded before the re-run; the inner process inherits the environment.
if (process.platform === 'linux') process.env.NGROKD_TEST_OUTER_NETNS ??= readlinkSync('/proc/self/ns/net')
const netns = await enterNetworkNamespace(import.meta.url)

describe('enterNetworkNamespace()', { skip: netns }, () => {
  it('re-runs this file in another network namespace', () => {
    assert.notEqual(readlinkSync('/proc/self/ns/net'), process.env.NGROKD_TEST_OUTER_NETNS)
  })

  it('has only lo, and lo is up', async () => {
    const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).trim().split('\n')
    assert.equal(links.length, 1, links.join('\n'))
    assert.match(links[0]!, /^1: lo: <[^>]*\bUP\b/)
    const server = createServer()
    await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve))
    await new Promise((resolve) => server.close(resolve))
  })
})
