import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isNgrokdError } from '@ngrokd/core/driver'
import { CAPTURED_REPLIES } from './captured-replies.js'
import {
  AF_INET,
  IFF_UP,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_MULTI,
  NLMSG_DONE,
  NLMSG_ERROR,
  RT_TABLE_LOCAL,
  RT_TABLE_MAIN,
  RTA_DST,
  RTA_MULTIPATH,
  RTA_TABLE,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWROUTE,
  RTN_BROADCAST,
  RTN_LOCAL,
  RTN_UNICAST,
} from './constants.js'
import { errnoName } from './errno.js'
import {
  align,
  decodeAddr,
  decodeDone,
  decodeError,
  decodeLink,
  decodeRoute,
  delAddrRequest,
  delLinkRequest,
  encodeAttr,
  encodeIpv4Attr,
  encodeMessage,
  encodeRtmsg,
  encodeStringAttr,
  encodeU32Attr,
  getAddrDumpRequest,
  getLinkDumpRequest,
  getLinkRequest,
  getRouteDumpRequest,
  newAddrRequest,
  newLinkRequest,
  parseAttrs,
  parseMessages,
  setLinkAliasRequest,
  setLinkUpRequest,
} from './messages.js'

const hex = (b: Buffer) => b.toString('hex')
const bytes = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex')
const captured = (name: string) => CAPTURED_REPLIES[name]!.map((h) => Buffer.from(h, 'hex'))

// Requests: what iproute2 6.1 wrote to its netlink socket (`strace -e trace=sendmsg -e write=3`),
// for the command in each test name, seq 0x6b069bdb, ifindex 2.
const SEQ = 0x6b069bdb

test('RTM_NEWLINK type dummy equals `ip link add ngrt1 type dummy`', () => {
  assert.equal(
    hex(newLinkRequest({ seq: SEQ, name: 'ngrt1', kind: 'dummy' })),
    hex(bytes(`3c000000 1000 0506 db9b066b 00000000  00000000 00000000 00000000 00000000
               0a000300 6e677274 31000000  10001200 09000100 64756d6d 79000000`)),
  )
})

test('RTM_NEWLINK type bridge: IFLA_INFO_KIND is 10 bytes long without a NUL, as iproute2 sends it', () => {
  const m = newLinkRequest({ seq: SEQ, name: 'ngrt0', kind: 'bridge' })
  assert.equal(m.length, 60)
  assert.equal(hex(m.subarray(44)), hex(bytes('10001200 0a000100 62726964 67650000')))
})

test('RTM_NEWLINK alias equals `ip link set ngrt0 alias "ngrokd: tag"`: IFLA_IFALIAS (20) of 15 bytes, no NUL', () => {
  assert.equal(
    hex(setLinkAliasRequest({ seq: SEQ, index: 2, alias: 'ngrokd: tag' })),
    hex(bytes(`30000000 1000 0500 db9b066b 00000000  00000000 02000000 00000000 00000000
               0f001400 6e67726f 6b643a20 74616700`)),
  )
})

test('decodeLink reads IFLA_IFALIAS, where ngrokd tags its link', () => {
  const reply = encodeMessage({ type: RTM_NEWLINK, flags: 0, seq: 1 }, Buffer.alloc(16), encodeStringAttr(3, 'ngrt0'), encodeStringAttr(20, 'ngrokd: tag'))
  reply.writeInt32LE(7, 16 + 4) // ifi_index
  const link = decodeLink(parseMessages(reply)[0]!)
  assert.deepEqual({ index: link.index, name: link.name, alias: link.alias }, { index: 7, name: 'ngrt0', alias: 'ngrokd: tag' })
})

test('RTM_NEWLINK up equals `ip link set ngrt0 up`', () => {
  assert.equal(hex(setLinkUpRequest({ seq: SEQ, index: 2 })), hex(bytes('20000000 1000 0500 db9b066b 00000000  00000000 02000000 01000000 01000000')))
})

test('RTM_DELLINK equals `ip link del ngrt0`', () => {
  assert.equal(hex(delLinkRequest({ seq: SEQ, index: 2 })), hex(bytes('20000000 1100 0500 db9b066b 00000000  00000000 02000000 00000000 00000000')))
})

test('RTM_GETLINK by name equals the lookup `ip link set ngrt0 up` makes', () => {
  assert.equal(
    hex(getLinkRequest({ seq: SEQ, name: 'ngrt0' })),
    hex(bytes('34000000 1200 0100 db9b066b 00000000  00000000 00000000 00000000 00000000  08001d00 09000000  0a000300 6e677274 30000000')),
  )
})

test('RTM_NEWADDR and RTM_DELADDR equal `ip addr add|del 10.107.0.2/32 dev ngrt0`', () => {
  const body = '02200000 02000000  08000200 0a6b0002  08000100 0a6b0002'
  assert.equal(hex(newAddrRequest({ seq: SEQ, index: 2, address: '10.107.0.2' })), hex(bytes(`28000000 1400 0506 db9b066b 00000000 ${body}`)))
  assert.equal(hex(delAddrRequest({ seq: SEQ, index: 2, address: '10.107.0.2' })), hex(bytes(`28000000 1500 0500 db9b066b 00000000 ${body}`)))
})

test('dump requests equal the first message `ip -4 addr` and `ip -4 route show table all` send', () => {
  assert.equal(hex(getAddrDumpRequest({ seq: 0x6b069bdc })), hex(bytes('18000000 1600 0103 dc9b066b 00000000  02000000 00000000')))
  assert.equal(hex(getRouteDumpRequest({ seq: SEQ })), hex(bytes('1c000000 1a00 0103 db9b066b 00000000  02000000 00000000 00000000')))
  const links = getLinkDumpRequest({ seq: 1 })
  assert.equal(links.readUInt16LE(6), 0x301) // NLM_F_REQUEST | NLM_F_DUMP
  assert.equal(links.length, 16 + 16 + 8)
})

test('attributes are padded to 4 bytes; rta_len excludes the padding; nested lengths include it', () => {
  assert.equal(align(0), 0)
  assert.equal(align(5), 8)
  assert.equal(align(8), 8)
  assert.equal(hex(encodeAttr(7, Buffer.from([1]))), '0500070001000000')
  assert.equal(hex(encodeStringAttr(3, 'ab')), '070003006162' + '0000')
  assert.equal(hex(encodeU32Attr(29, 9)), '08001d0009000000')
  assert.equal(hex(encodeIpv4Attr(2, '192.168.1.200')), '08000200c0a801c8')
  const attrs = parseAttrs(Buffer.concat([encodeAttr(7, Buffer.from([1])), encodeStringAttr(3, 'ab'), encodeU32Attr(29 | 0x8000, 9)]))
  assert.deepEqual([...attrs.keys()], [7, 3, 29]) // NLA_F_NESTED masked off
  assert.equal(attrs.get(3)!.toString(), 'ab\0')
})

test('parseMessages splits a datagram and rejects a length that runs past its end', () => {
  const two = Buffer.concat([encodeMessage({ type: 1, flags: 0, seq: 5 }, Buffer.alloc(4)), encodeMessage({ type: 3, flags: 2, seq: 6 })])
  assert.deepEqual(
    parseMessages(two).map((m) => [m.type, m.flags, m.seq, m.payload.length]),
    [
      [1, 0, 5, 4],
      [3, 2, 6, 0],
    ],
  )
  const broken = Buffer.from(two)
  broken.writeUInt32LE(200, 0)
  assert.throws(() => parseMessages(broken), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_SYSCALL') && /malformed/.test((e as Error).message))
  assert.throws(() => parseAttrs(Buffer.from('03000100', 'hex')), /malformed/) // rta_len 3 < header
})

test('kernel errors decode to errno, the request header and the extended-ack text', () => {
  const cases: Array<[string, number, string, number, string | undefined]> = [
    ['newlink-dummy', 95, 'EOPNOTSUPP', 7, 'Unknown device type'],
    ['newaddr-exists', 17, 'EEXIST', 8, 'ipv4: Address already assigned'],
    ['deladdr-absent', 99, 'EADDRNOTAVAIL', 9, 'ipv4: Address not found'],
    ['getlink-missing', 19, 'ENODEV', 11, undefined],
  ]
  for (const [name, errno, errnoText, seq, text] of cases) {
    const [m, ...rest] = parseMessages(captured(name)[0]!)
    assert.equal(rest.length, 0)
    assert.equal(m!.type, NLMSG_ERROR)
    assert.equal(m!.seq, seq)
    const e = decodeError(m!)
    assert.equal(e.errno, errno, name)
    assert.equal(errnoName(e.errno), errnoText)
    assert.equal(e.request.seq, seq)
    assert.equal(e.message, text, name)
  }
  assert.equal(parseMessages(captured('newlink-dummy')[0]!)[0]!.flags, NLM_F_CAPPED | NLM_F_ACK_TLVS)
})

test('an uncapped error echoes the whole request before the TLVs; a plain ACK has errno 0', () => {
  const request = newAddrRequest({ seq: 4, index: 2, address: '10.107.0.2' })
  const payload = Buffer.concat([Buffer.from([0xef, 0xff, 0xff, 0xff]), request, encodeStringAttr(1, 'oops')])
  const e = decodeError(parseMessages(encodeMessage({ type: NLMSG_ERROR, flags: NLM_F_ACK_TLVS, seq: 4 }, payload))[0]!)
  assert.deepEqual(e, { errno: 17, request: { type: RTM_NEWADDR, flags: 0x605, seq: 4 }, message: 'oops' })
  const ack = Buffer.concat([Buffer.alloc(4), request.subarray(0, 16)])
  assert.equal(decodeError(parseMessages(encodeMessage({ type: NLMSG_ERROR, flags: NLM_F_CAPPED, seq: 4 }, ack))[0]!).errno, 0)
})

test('a captured RTM_NEWLINK reply decodes to name, index, up flag and kind bridge', () => {
  const [m] = parseMessages(captured('getlink-ngrt0')[0]!)
  assert.equal(m!.type, RTM_NEWLINK)
  const link = decodeLink(m!)
  assert.equal(link.name, 'ngrt0')
  assert.equal(link.index, 2)
  assert.equal(link.kind, 'bridge')
  assert.ok(link.flags & IFF_UP)
  assert.equal(link.master, undefined)
})

test('a captured RTM_GETADDR dump decodes to lo and the /32 on ngrt0, then NLMSG_DONE', () => {
  const [first, last] = captured('getaddr')
  const addrs = parseMessages(first!).map((m) => {
    assert.equal(m.type, RTM_NEWADDR)
    assert.ok(m.flags & NLM_F_MULTI)
    return decodeAddr(m)
  })
  assert.deepEqual(
    addrs.map((a) => [a.family, a.index, a.local, a.address, a.prefixlen, a.label]),
    [
      [AF_INET, 1, '127.0.0.1', '127.0.0.1', 8, 'lo'],
      [AF_INET, 2, '10.107.0.2', '10.107.0.2', 32, 'ngrt0'],
    ],
  )
  const [done] = parseMessages(last!)
  assert.equal(done!.type, NLMSG_DONE)
  assert.equal(decodeDone(done!), 0)
})

test('a captured RTM_GETROUTE dump decodes tables, types and output interfaces', () => {
  const routes = parseMessages(captured('getroute')[0]!).map((m) => {
    assert.equal(m.type, RTM_NEWROUTE)
    return decodeRoute(m)
  })
  assert.deepEqual(
    routes.map((r) => [r.dst, r.dstLen, r.table, r.type, r.oifs]),
    [
      ['10.9.0.0', 16, RT_TABLE_MAIN, RTN_UNICAST, [3]],
      ['10.107.0.2', 32, RT_TABLE_LOCAL, RTN_LOCAL, [2]],
      ['127.0.0.0', 8, RT_TABLE_LOCAL, RTN_LOCAL, [1]],
      ['127.0.0.1', 32, RT_TABLE_LOCAL, RTN_LOCAL, [1]],
      ['127.255.255.255', 32, RT_TABLE_LOCAL, RTN_BROADCAST, [1]],
    ],
  )
  assert.equal(routes[1]!.prefsrc, '10.107.0.2')
  // a /32 host address brings no subnet-wide route into the main table
  assert.ok(!routes.some((r) => r.table === RT_TABLE_MAIN && r.dst?.startsWith('10.107.')))
})

test('RTA_TABLE above 255 wins over rtm_table; RTA_MULTIPATH lists every next hop', () => {
  const nexthops = Buffer.alloc(16)
  nexthops.writeUInt16LE(8, 0)
  nexthops.writeInt32LE(4, 4)
  nexthops.writeUInt16LE(8, 8)
  nexthops.writeInt32LE(7, 12)
  const m = encodeMessage(
    { type: RTM_NEWROUTE, flags: NLM_F_MULTI, seq: 1 },
    encodeRtmsg({ family: AF_INET, dstLen: 12, table: 252, type: RTN_UNICAST }),
    encodeU32Attr(RTA_TABLE, 51820),
    encodeIpv4Attr(RTA_DST, '172.16.0.0'),
    encodeAttr(RTA_MULTIPATH, nexthops),
  )
  const r = decodeRoute(parseMessages(m)[0]!)
  assert.equal(r.table, 51820)
  assert.deepEqual(r.oifs, [4, 7])
  assert.equal(r.dst, '172.16.0.0')
})
