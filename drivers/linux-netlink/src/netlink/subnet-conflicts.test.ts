import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseSubnet } from '@ngrokd/core/driver'
import { CAPTURED_REPLIES } from './captured-replies.js'
import { AF_INET, RT_TABLE_LOCAL, RT_TABLE_MAIN, RTN_BLACKHOLE, RTN_LOCAL, RTN_UNICAST } from './constants.js'
import { decodeAddr, decodeRoute, parseMessages, type AddrMessage, type RouteMessage } from './messages.js'
import { findSubnetConflicts } from './subnet-conflicts.js'
import { conflictError } from './queries.js'

// The namespace the captured replies come from: lo=1, ngrt0=2 (10.107.0.2/32), other=3 (10.9.0.0/16).
const links = new Map([
  [1, 'lo'],
  [2, 'ngrt0'],
  [3, 'other'],
])
const addresses = parseMessages(Buffer.from(CAPTURED_REPLIES['getaddr']![0]!, 'hex')).map(decodeAddr)
const routes = parseMessages(Buffer.from(CAPTURED_REPLIES['getroute']![0]!, 'hex')).map(decodeRoute)
const check = (cidr: string, ownIndex?: number) =>
  findSubnetConflicts({ subnet: parseSubnet(cidr), links, addresses, routes, ...(ownIndex === undefined ? {} : { ownIndex }) }).map((c) => c.description)

test('our own interface, its local host routes and unrelated routes are not conflicts', () => {
  assert.deepEqual(check('10.107.0.0/16', 2), [])
  assert.deepEqual(check('192.168.0.0/16'), [])
})

test('a route of another interface that the subnet overlaps is named with its interface', () => {
  assert.deepEqual(check('10.9.3.0/24', 2), ['route 10.9.0.0/16 dev other'])
  assert.deepEqual(check('10.0.0.0/8', 2), ['route 10.9.0.0/16 dev other'])
})

test('an address inside the subnet on another interface is a conflict; its /32 local route is not repeated', () => {
  assert.deepEqual(check('10.107.0.0/16'), ['address 10.107.0.2/32 on ngrt0'])
})

test('loopback: the local-table 127.0.0.0/8 route and address are conflicts for a 127.x subnet', () => {
  assert.deepEqual(check('127.77.0.0/16'), ['local route 127.0.0.0/8 dev lo table local'])
  assert.deepEqual(check('127.0.0.0/24'), ['address 127.0.0.1/8 on lo', 'local route 127.0.0.0/8 dev lo table local'])
})

test('default routes never conflict; blackhole routes and other tables are reported', () => {
  const extra: RouteMessage[] = [
    { family: AF_INET, dstLen: 0, table: RT_TABLE_MAIN, protocol: 4, scope: 0, type: RTN_UNICAST, gateway: '192.168.1.1', oifs: [3] },
    { family: AF_INET, dstLen: 0, table: 51820, protocol: 4, scope: 0, type: RTN_UNICAST, oifs: [3] },
    { family: AF_INET, dstLen: 12, table: RT_TABLE_MAIN, protocol: 4, scope: 0, type: RTN_BLACKHOLE, dst: '172.16.0.0', oifs: [] },
    { family: AF_INET, dstLen: 24, table: 100, protocol: 4, scope: 0, type: RTN_UNICAST, dst: '172.20.1.0', oifs: [9] },
    { family: AF_INET, dstLen: 16, table: RT_TABLE_LOCAL, protocol: 4, scope: 0, type: RTN_LOCAL, dst: '172.21.0.0', oifs: [1] },
  ]
  const found = findSubnetConflicts({ subnet: parseSubnet('172.16.0.0/12'), links, addresses, routes: [...routes, ...extra], ownIndex: 2 })
  assert.deepEqual(
    found.map((c) => [c.kind, c.cidr, c.interfaces, c.description]),
    [
      ['route', '172.16.0.0/12', [], 'blackhole route 172.16.0.0/12'],
      ['route', '172.20.1.0/24', ['ifindex 9'], 'route 172.20.1.0/24 dev ifindex 9 table 100'],
      ['route', '172.21.0.0/16', ['lo'], 'local route 172.21.0.0/16 dev lo table local'], // AnyIP-style local range
    ],
  )
})

test('IPv6 entries are ignored', () => {
  const v6: AddrMessage = { family: 10, prefixlen: 64, flags: 0, scope: 0, index: 3 }
  assert.deepEqual(findSubnetConflicts({ subnet: parseSubnet('10.9.0.0/16'), links, addresses: [v6], routes: [] }), [])
})

test("another ngrokd's interface on the subnet (two instances whose names chose one /16): the fix is a subnet of its own, never net.force", () => {
  const subnet = parseSubnet('10.112.0.0/16')
  const theirs = { kind: 'route' as const, cidr: '10.112.0.0/16', interfaces: ['ngrokd-prod'], description: 'route 10.112.0.0/16 dev ngrokd-prod' }
  assert.match(conflictError(subnet, [theirs]).hint ?? '', /another ngrokd \(instance\) serves this subnet: give this daemon a net\.subnet of its own .*never net\.force/)
  assert.match(conflictError(subnet, [{ ...theirs, interfaces: ['eth0'], description: 'route 10.112.0.0/16 dev eth0' }]).hint ?? '', /or set net\.force: true to use it anyway/)
})
