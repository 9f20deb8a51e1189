/**
 * The Windows structures this driver passes to iphlpapi and wintun.dll, as pure Buffer code (testable on any OS).
 * Offsets are those mingw-w64's headers give on x86_64, i686 and (LLP64 like x86_64) arm64; probe/windows-abi.json
 * holds the compiler's numbers and src/abi/abi.test.ts compares every one with the constants below.
 */
import { createHash } from 'node:crypto'
import { intToIpv4, ipv4ToInt, isIpv4 } from '@ngrokd/core/driver'
import {
  AF_INET,
  IF_TYPE_SOFTWARE_LOOPBACK,
  IpDadStateInvalid,
  IpDadStatePreferred,
  IpPrefixOriginManual,
  IpPrefixOriginUnchanged,
  IpSuffixOriginManual,
  IpSuffixOriginUnchanged,
} from './constants.js'

/** sizeof(SOCKADDR_IN): sin_family, sin_port (network order), sin_addr (network order), sin_zero[8] — ws2def.h */
export const SOCKADDR_IN_SIZE = 16
/** sizeof(SOCKADDR_INET): the union of SOCKADDR_IN, SOCKADDR_IN6 (28) and si_family — ws2ipdef.h */
export const SOCKADDR_INET_SIZE = 28
/** sizeof(NET_LUID): a ULONG64 whose bitfields are Reserved:24, NetLuidIndex:24, IfType:16 — ifdef.h */
export const NET_LUID_SIZE = 8
export const NET_LUID_INDEX_SHIFT = 24n // ifdef.h: NetLuidIndex starts at bit 24
export const NET_LUID_IFTYPE_SHIFT = 48n // ifdef.h: IfType starts at bit 48
/** sizeof(GUID): Data1 (ULONG), Data2, Data3 (USHORT), Data4[8] — guiddef.h */
export const GUID_SIZE = 16

/** MIB_UNICASTIPADDRESS_ROW — netioapi.h. NET_LUID is 8-aligned, hence the 4 bytes after Address. */
export const ROW = {
  Address: 0,
  InterfaceLuid: 32,
  InterfaceIndex: 40,
  PrefixOrigin: 44,
  SuffixOrigin: 48,
  ValidLifetime: 52,
  PreferredLifetime: 56,
  OnLinkPrefixLength: 60,
  SkipAsSource: 61, // BOOLEAN: one byte
  DadState: 64,
  ScopeId: 68,
  CreationTimeStamp: 72,
} as const
export const MIB_UNICASTIPADDRESS_ROW_SIZE = 80
/** MIB_UNICASTIPADDRESS_TABLE: ULONG NumEntries, then the rows at their 8-byte alignment — netioapi.h */
export const MIB_UNICASTIPADDRESS_TABLE_ROWS_OFFSET = 8

const INFINITE_LIFETIME = 0xffffffff // netioapi.h: "infinite" lifetimes are 0xffffffff
/** What InitializeUnicastIpAddressEntry puts in OnLinkPrefixLength: "an illegal value"; Wine writes 255. */
export const UNSET_PREFIX_LENGTH = 0xff

/** A NET_LUID as its 64-bit Value. */
export type NetLuid = bigint

export function netLuid(ifType: number, netLuidIndex: number): NetLuid {
  return (BigInt(ifType) << NET_LUID_IFTYPE_SHIFT) | (BigInt(netLuidIndex) << NET_LUID_INDEX_SHIFT)
}

export function luidIfType(luid: NetLuid): number {
  return Number((luid >> NET_LUID_IFTYPE_SHIFT) & 0xffffn)
}

export function encodeNetLuid(luid: NetLuid): Buffer {
  const b = Buffer.alloc(NET_LUID_SIZE)
  b.writeBigUInt64LE(luid)
  return b
}

export function decodeNetLuid(b: Buffer, offset = 0): NetLuid {
  return b.readBigUInt64LE(offset)
}

/** The row InitializeUnicastIpAddressEntry documents: origins "unchanged", lifetimes infinite, the rest zero. */
export function initializedRow(): Buffer {
  const b = Buffer.alloc(MIB_UNICASTIPADDRESS_ROW_SIZE)
  b.writeInt32LE(IpPrefixOriginUnchanged, ROW.PrefixOrigin)
  b.writeInt32LE(IpSuffixOriginUnchanged, ROW.SuffixOrigin)
  b.writeUInt32LE(INFINITE_LIFETIME, ROW.ValidLifetime)
  b.writeUInt32LE(INFINITE_LIFETIME, ROW.PreferredLifetime)
  b.writeUInt8(UNSET_PREFIX_LENGTH, ROW.OnLinkPrefixLength)
  b.writeInt32LE(IpDadStateInvalid, ROW.DadState)
  return b
}

/**
 * Fills an initialised MIB_UNICASTIPADDRESS_ROW (from InitializeUnicastIpAddressEntry) in place for one ngrokd
 * endpoint address: a /32 host address (OnLinkPrefixLength 32, so no on-link route for a wider prefix), never
 * chosen as a source address (SkipAsSource), set by hand (manual origins), usable at once (DadState Preferred, as
 * Wintun's own example does), infinite lifetimes, on the interface `luid`.
 */
export function fillAddressRow(row: Buffer, { address, luid }: { address: string; luid: NetLuid }): Buffer {
  if (row.length !== MIB_UNICASTIPADDRESS_ROW_SIZE) throw new RangeError(`MIB_UNICASTIPADDRESS_ROW is ${MIB_UNICASTIPADDRESS_ROW_SIZE} bytes, got ${row.length}`)
  if (!isIpv4(address)) throw new RangeError(`not an IPv4 address: ${JSON.stringify(address)}`)
  row.fill(0, ROW.Address, ROW.Address + SOCKADDR_INET_SIZE)
  row.writeUInt16LE(AF_INET, ROW.Address) // Address.Ipv4.sin_family
  row.writeUInt32BE(ipv4ToInt(address), ROW.Address + 4) // Address.Ipv4.sin_addr, network byte order
  row.writeBigUInt64LE(luid, ROW.InterfaceLuid)
  row.writeUInt32LE(0, ROW.InterfaceIndex) // the LUID names the interface
  row.writeInt32LE(IpPrefixOriginManual, ROW.PrefixOrigin)
  row.writeInt32LE(IpSuffixOriginManual, ROW.SuffixOrigin)
  row.writeUInt32LE(INFINITE_LIFETIME, ROW.ValidLifetime)
  row.writeUInt32LE(INFINITE_LIFETIME, ROW.PreferredLifetime)
  row.writeUInt8(32, ROW.OnLinkPrefixLength)
  row.writeUInt8(1, ROW.SkipAsSource)
  row.writeInt32LE(IpDadStatePreferred, ROW.DadState)
  return row
}

/** The fields of one row that the driver reads back. */
export interface AddressRow {
  family: number
  /** Dotted quad when family is AF_INET. */
  address: string | undefined
  luid: NetLuid
  interfaceIndex: number
  onLinkPrefixLength: number
  skipAsSource: boolean
  dadState: number
}

export function decodeAddressRow(b: Buffer, offset = 0): AddressRow {
  const family = b.readUInt16LE(offset + ROW.Address)
  return {
    family,
    address: family === AF_INET ? intToIpv4(b.readUInt32BE(offset + ROW.Address + 4)) : undefined,
    luid: b.readBigUInt64LE(offset + ROW.InterfaceLuid),
    interfaceIndex: b.readUInt32LE(offset + ROW.InterfaceIndex),
    onLinkPrefixLength: b.readUInt8(offset + ROW.OnLinkPrefixLength),
    skipAsSource: b.readUInt8(offset + ROW.SkipAsSource) !== 0,
    dadState: b.readInt32LE(offset + ROW.DadState),
  }
}

/** The rows of a MIB_UNICASTIPADDRESS_TABLE, given the bytes after its NumEntries (and padding). */
export function decodeAddressTable(rows: Buffer): AddressRow[] {
  if (rows.length % MIB_UNICASTIPADDRESS_ROW_SIZE !== 0) throw new RangeError(`address table of ${rows.length} bytes is not whole rows`)
  const out: AddressRow[] = []
  for (let at = 0; at < rows.length; at += MIB_UNICASTIPADDRESS_ROW_SIZE) out.push(decodeAddressRow(rows, at))
  return out
}

/** The loopback pseudo-interface's LUID: the interface holding 127.0.0.1, whose IfType is IF_TYPE_SOFTWARE_LOOPBACK. */
export function findLoopbackLuid(rows: readonly AddressRow[]): NetLuid | undefined {
  return rows.find((r) => r.address === '127.0.0.1' && luidIfType(r.luid) === IF_TYPE_SOFTWARE_LOOPBACK)?.luid
}

/**
 * A GUID (guiddef.h: Data1 ULONG, Data2 and Data3 USHORT little-endian, Data4 bytes) derived from the adapter
 * name, so the same name gets the same adapter GUID on every start (wintun.h: a fixed RequestedGUID keeps
 * Windows from making a new network profile each time). Version 5-style bits from a SHA-256 of the name.
 */
export function adapterGuid(name: string): Buffer {
  const h = createHash('sha256').update(`ngrokd wintun adapter\0${name.toLowerCase()}`).digest()
  const g = Buffer.from(h.subarray(0, GUID_SIZE))
  g[7] = (g[7]! & 0x0f) | 0x50 // version nibble in the high bits of Data3 (little-endian: byte 7)
  g[8] = (g[8]! & 0x3f) | 0x80 // RFC 4122 variant in Data4[0]
  return g
}

/** `{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}` of a 16-byte GUID, as Windows prints it. */
export function formatGuid(g: Buffer): string {
  const hex = (n: number, w: number) => n.toString(16).padStart(w, '0')
  const d4 = [...g.subarray(8, 16)].map((b) => hex(b, 2)).join('')
  return `{${hex(g.readUInt32LE(0), 8)}-${hex(g.readUInt16LE(4), 4)}-${hex(g.readUInt16LE(6), 4)}-${d4.slice(0, 4)}-${d4.slice(4)}}`.toUpperCase()
}
