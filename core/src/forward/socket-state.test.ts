import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { endianness } from 'node:os'
import { LINGER_RESET, SOCKET_OPTIONS } from './socket-state.js'

describe('socket-state on macOS', () => {
  // what clang read from Apple's headers for both architectures (drivers/darwin-utun/scripts/probe-layouts.sh)
  const layouts = JSON.parse(readFileSync(new URL('./socket-state-darwin.layouts.json', import.meta.url), 'utf8')) as { targets: Record<string, Record<string, number>> }

  it('SOL_SOCKET, SO_ERROR and SO_LINGER are the headers\' for x86_64 and arm64', () => {
    assert.deepEqual(Object.keys(layouts.targets).sort(), ['arm64-apple-macos11', 'x86_64-apple-macos11'])
    for (const [target, h] of Object.entries(layouts.targets)) {
      assert.deepEqual(SOCKET_OPTIONS.darwin, { SOL_SOCKET: h.SOL_SOCKET, SO_ERROR: h.SO_ERROR, SO_LINGER: h.SO_LINGER }, target)
    }
  })

  it('the struct linger it sets is { l_onoff 1, l_linger 0 } at the headers\' offsets (both little-endian)', () => {
    assert.equal(endianness(), 'LE', 'this test reads the host-order buffer as the little-endian macOS targets do')
    for (const [target, h] of Object.entries(layouts.targets)) {
      assert.equal(LINGER_RESET.length, h.sizeof_linger, target)
      assert.equal(LINGER_RESET.readInt32LE(h.offsetof_linger__l_onoff!), 1, target)
      assert.equal(LINGER_RESET.readInt32LE(h.offsetof_linger__l_linger!), 0, target)
    }
  })
})
