// Every layout and constant of src/abi against the numbers mingw-w64's compiler derived from the headers
// (probe/windows-abi.json, made by probe/regenerate.mjs), and the encoders byte for byte.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as C from './constants.js'
import {
  adapterGuid,
  decodeAddressRow,
  decodeAddressTable,
  fillAddressRow,
  findLoopbackLuid,
  formatGuid,
  initializedRow,
  luidIfType,
  MIB_UNICASTIPADDRESS_ROW_SIZE,
  MIB_UNICASTIPADDRESS_TABLE_ROWS_OFFSET,
  NET_LUID_IFTYPE_SHIFT,
  NET_LUID_INDEX_SHIFT,
  NET_LUID_SIZE,
  netLuid,
  ROW,
  SOCKADDR_IN_SIZE,
  SOCKADDR_INET_SIZE,
} from './structs.js'
import { readAbiFixture } from '../testing/read-fixture.test-helper.js'

const fixture = readAbiFixture()
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex')

describe('Windows ABI of the driver (mingw-w64 numbers)', () => {
  it('the fixture covers x86_64 and i686 and the wintun.h constants', () => {
    assert.ok(fixture.targets.x86_64 && fixture.targets.i686, `targets: ${Object.keys(fixture.targets).join(', ')}`)
    assert.ok('WINTUN_MIN_RING_CAPACITY' in fixture.targets.x86_64!)
  })

  for (const [target, v] of Object.entries(fixture.targets)) {
    it(`${target}: MIB_UNICASTIPADDRESS_ROW, SOCKADDR_INET, NET_LUID and the table match`, () => {
      assert.equal(v['sizeof MIB_UNICASTIPADDRESS_ROW'], MIB_UNICASTIPADDRESS_ROW_SIZE)
      for (const [field, offset] of Object.entries(ROW)) assert.equal(v[`MIB_UNICASTIPADDRESS_ROW.${field}`], offset, `offset of ${field}`)
      assert.equal(v['sizeof MIB_UNICASTIPADDRESS_ROW.SkipAsSource'], 1)
      assert.equal(v['MIB_UNICASTIPADDRESS_TABLE.Table'], MIB_UNICASTIPADDRESS_TABLE_ROWS_OFFSET)
      assert.equal(v['sizeof SOCKADDR_IN'], SOCKADDR_IN_SIZE)
      assert.equal(v['SOCKADDR_IN.sin_family'], 0)
      assert.equal(v['SOCKADDR_IN.sin_addr'], 4)
      assert.equal(v['sizeof SOCKADDR_INET'], SOCKADDR_INET_SIZE)
      assert.equal(v['sizeof NET_LUID'], NET_LUID_SIZE)
      assert.equal(BigInt(v['NET_LUID.Info.NetLuidIndex=1']!), 1n << NET_LUID_INDEX_SHIFT)
      assert.equal(BigInt(v['NET_LUID.Info.IfType=1']!), 1n << NET_LUID_IFTYPE_SHIFT)
    })

    it(`${target}: every constant in abi/constants.ts`, () => {
      const ours: Record<string, number> = Object.fromEntries(Object.entries(C).filter(([, x]) => typeof x === 'number')) as Record<string, number>
      const checked = Object.keys(ours).filter((k) => k in v)
      for (const k of checked) assert.equal(ours[k], v[k], k)
      const unchecked = Object.keys(ours).filter((k) => !(k in v))
      assert.deepEqual(unchecked, [], 'constants the probe does not check: add them to windows-abi-probe.c')
    })
  }
})

describe('driver structs, byte for byte', () => {
  it('an ngrokd address row: /32, SkipAsSource, manual origins, DadState Preferred, infinite lifetimes', () => {
    const luid = netLuid(C.IF_TYPE_PROP_VIRTUAL, 9)
    const row = fillAddressRow(initializedRow(), { address: '10.107.0.2', luid })
    assert.deepEqual(
      row,
      hex(`
        0200 0000 0a6b0002 0000000000000000 000000000000000000000000  00000000
        0000000900003500
        00000000 01000000 01000000 ffffffff ffffffff
        20 01 0000
        04000000 00000000
        0000000000000000`),
    )
    assert.deepEqual(decodeAddressRow(row), { family: 2, address: '10.107.0.2', luid, interfaceIndex: 0, onLinkPrefixLength: 32, skipAsSource: true, dadState: 4 })
  })

  it('the row InitializeUnicastIpAddressEntry documents: origins unchanged (16), lifetimes infinite, prefix unset', () => {
    assert.deepEqual(
      initializedRow(),
      hex(`00000000000000000000000000000000000000000000000000000000 00000000 0000000000000000
           00000000 10000000 10000000 ffffffff ffffffff ff 00 0000 00000000 00000000 0000000000000000`),
    )
  })

  it('finds the loopback LUID among table rows the way Wine reported them', () => {
    // probe/windows-abi.json wine.rows: 127.0.0.1/8 luid=0x0018000001000000 iftype=24
    const loopback = 0x0018000001000000n
    assert.equal(luidIfType(loopback), C.IF_TYPE_SOFTWARE_LOOPBACK)
    assert.ok(fixture.wine?.rows.some((r) => r.startsWith('127.0.0.1/') && r.includes(`luid=0x${loopback.toString(16).padStart(16, '0')}`) && r.includes('iftype=24')))
    const rows = Buffer.concat([
      fillAddressRow(initializedRow(), { address: '192.0.2.2', luid: 0x0006000004000000n }),
      fillAddressRow(initializedRow(), { address: '127.0.0.1', luid: loopback }),
    ])
    const table = decodeAddressTable(rows)
    assert.equal(findLoopbackLuid(table), loopback)
    assert.equal(findLoopbackLuid(table.slice(0, 1)), undefined)
    assert.throws(() => decodeAddressTable(rows.subarray(0, 100)), RangeError)
  })

  it('adapter GUIDs are stable per name, RFC 4122 variant, version 5 nibble', () => {
    const g = adapterGuid('ngrokd0')
    assert.equal(g.length, 16)
    assert.deepEqual(g, adapterGuid('NGROKD0'), 'Windows adapter names are case-insensitive')
    assert.notDeepEqual(g, adapterGuid('ngrokd1'))
    assert.match(formatGuid(g), /^\{[0-9A-F]{8}-[0-9A-F]{4}-5[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}\}$/)
  })

  it('what Wine ran: the table call, and the calls Wine lacks', () => {
    assert.ok(fixture.wine, 'regenerate.mjs ran the probe under Wine')
    assert.equal(fixture.wine!.runtime['GetUnicastIpAddressTable(AF_INET)'], C.ERROR_SUCCESS)
    assert.match(String(fixture.wine!.runtime.initialize), /not implemented by Wine/)
    assert.equal(fixture.wine!.runtime['dnsapi!DnsFlushResolverCache'], 'exported')
  })
})
