import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { readlinkSync } from 'node:fs'
import { isNgrokdError } from '@ngrokd/core/driver'
import { enterNetworkNamespace } from '@ngrokd/core/testing'
import { assertPrivateNetns, benchApplyAddresses } from './netlink-apply-bench.js'

// The namespace this file was started in: the bench must refuse to run there.
const HOST_NETNS = 'NGROKD_BENCH_HOST_NETNS'
if (process.platform === 'linux') process.env[HOST_NETNS] ??= readlinkSync('/proc/self/ns/net')
const hostNetns = process.env[HOST_NETNS]!
const netns = await enterNetworkNamespace(import.meta.url)

// Only reads /proc; never touches an interface.
test('the benchmark refuses to run in the caller’s own network namespace', { skip: process.platform === 'linux' ? false : 'reads /proc (Linux)' }, () => {
  const here = readlinkSync('/proc/self/ns/net')
  assert.throws(() => assertPrivateNetns({ hostNetns: here }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_NAMESPACE') && /refusing to run/.test((e as Error).message))
  assert.doesNotThrow(() => assertPrivateNetns({ hostNetns: 'net:[1]' }))
})

test('benchApplyAddresses measures add and remove of many addresses and leaves nothing behind', { skip: netns }, async () => {
  const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' })
  const linkExists = (dev: string): boolean => spawnSync('ip', ['link', 'show', 'dev', dev], { stdio: 'ignore' }).status === 0
  assert.notEqual(readlinkSync('/proc/self/ns/net'), hostNetns, 'this test runs in a namespace of its own')
  assert.doesNotThrow(() => assertPrivateNetns(), 'a fresh namespace holds only lo')
  ip('link', 'add', 'stray0', 'type', 'bridge')
  assert.throws(() => assertPrivateNetns(), /other interfaces \(stray0\)/)
  ip('link', 'del', 'stray0')
  const r = await benchApplyAddresses({ count: 3000, name: 'ngrtbench', hostNetns })
  assert.equal(r.count, 3000)
  assert.ok(r.addMs > 0 && r.removeMs > 0)
  assert.ok(r.sends <= 6, `${r.sends} sends`)
  assert.equal(linkExists('ngrtbench'), false)
})
