import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LocalAddresses } from './local-addresses.js'

test('an address is local while the machine holds it: one that left is foreign again within a second, a new one local', () => {
  let now = 0
  let held = ['192.168.77.5', '10.107.0.1']
  let reads = 0
  const local = new LocalAddresses(
    () => (reads++, held),
    () => now,
  )
  assert.equal(local.isLocal('192.168.77.5'), true)
  assert.equal(local.isLocal('::ffff:10.107.0.1'), true, 'an IPv4 peer of a dual-stack socket')
  assert.equal(local.isLocal('127.9.9.9'), true, 'loopback needs no read')
  assert.equal(local.isLocal('192.168.77.9'), false)
  assert.equal(reads, 1, 'one read for the connections of one second')

  held = ['10.107.0.1', '192.168.77.6'] // 192.168.77.5 moved to another machine, .6 came
  now = 999
  assert.equal(local.isLocal('192.168.77.5'), true, 'still the last read')
  now = 1_000
  assert.equal(local.isLocal('192.168.77.5'), false, 'a hit does not keep a stale read alive')
  assert.equal(local.isLocal('192.168.77.6'), true)
  assert.equal(reads, 2)
  assert.equal(local.isLocal(undefined), false)
})

test('a connection from the very address it came to is local, even one added since the last read (a new endpoint address)', () => {
  let now = 0
  const held = ['192.168.77.5']
  const local = new LocalAddresses(
    () => held,
    () => now,
  )
  assert.equal(local.isLocal('192.168.77.5'), true) // the read of this second
  held.push('10.107.0.3') // the daemon adds an endpoint address; a local client connects to it at once
  now = 10
  assert.equal(local.isLocal('10.107.0.3'), false, 'not in the read of this second')
  assert.equal(local.isLocal('10.107.0.3', '10.107.0.3'), true, 'from the address it came to')
  assert.equal(local.isLocal('::ffff:10.107.0.3', '::ffff:10.107.0.3'), true)
  assert.equal(local.isLocal('10.9.9.9', '10.107.0.3'), false, 'a neighbour is still foreign')
})
