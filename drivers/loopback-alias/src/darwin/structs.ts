/**
 * macOS structures for interface addresses, as pure Buffer code (testable on any OS). Layouts are
 * those of 64-bit macOS; x86_64 and arm64 agree on all of them, and darwin-utun's layout test
 * checks every size and offset here against a compiler's reading of the headers.
 */

import { ipv4ToInt, intToIpv4, isIpv4 } from '@ngrokd/core/driver'
import { AF_INET, AF_LINK, IFNAMSIZ } from './constants.js'

/** sizeof(struct sockaddr_in): sin_len, sin_family, sin_port, sin_addr, sin_zero[8] — <netinet/in.h> */
export const SOCKADDR_IN_SIZE = 16
/**
 * sizeof(struct ifaliasreq) — <net/if.h> — and of its IPv4 twin struct in_aliasreq —
 * <netinet/in_var.h>: ifra_name[16] + ifra_addr + ifra_broadaddr (alias ifra_dstaddr) + ifra_mask.
 */
export const IFALIASREQ_SIZE = 64
export const IFALIASREQ = { name: 0, addr: 16, broadaddr: 32, mask: 48 } as const
/** sizeof(struct ifreq): ifr_name[16] + a 16-byte union (ifr_addr, ifr_mtu, …) — <net/if.h> */
export const IFREQ_SIZE = 32
export const IFREQ = { name: 0, addr: 16, mtu: 16 } as const

// <sys/ioccom.h>: _IOC(inout, group, num, len) = inout | ((len & IOCPARM_MASK) << 16) | (group << 8) | num
export const IOC_OUT = 0x40000000 // copy the argument out
export const IOC_IN = 0x80000000 // copy the argument in
export const IOC_INOUT = (IOC_IN | IOC_OUT) >>> 0
export const IOCPARM_MASK = 0x1fff // parameter length, at most 13 bits

function _IOC(inout: number, group: string, num: number, len: number): number {
  return (inout | ((len & IOCPARM_MASK) << 16) | (group.charCodeAt(0) << 8) | num) >>> 0
}
/** `_IOW(group, num, len)` from <sys/ioccom.h>, as an unsigned 32-bit number. */
export function _IOW(group: string, num: number, len: number): number {
  return _IOC(IOC_IN, group, num, len)
}
/** `_IOWR(group, num, len)` from <sys/ioccom.h>. */
export function _IOWR(group: string, num: number, len: number): number {
  return _IOC(IOC_INOUT, group, num, len)
}
/** The argument length an ioctl request number encodes (`IOCPARM_LEN` in <sys/ioccom.h>). */
export function ioctlParamLength(request: number): number {
  return (request >>> 16) & IOCPARM_MASK
}

export const SIOCDIFADDR = 0x80206919 // _IOW('i', 25, struct ifreq) — <sys/sockio.h>
export const SIOCAIFADDR = 0x8040691a // _IOW('i', 26, struct ifaliasreq) — <sys/sockio.h>
export const SIOCGIFMTU = 0xc0206933 // _IOWR('i', 51, struct ifreq) — <sys/sockio.h>
export const SIOCSIFMTU = 0x80206934 // _IOW('i', 52, struct ifreq) — <sys/sockio.h>

/** struct sockaddr_in for `address`, port 0: sin_len = 16, sin_family = AF_INET, address in network order. */
export function encodeSockaddrIn(address: string): Buffer {
  const b = Buffer.alloc(SOCKADDR_IN_SIZE)
  b.writeUInt8(SOCKADDR_IN_SIZE, 0) // sin_len
  b.writeUInt8(AF_INET, 1) // sin_family
  b.writeUInt16BE(0, 2) // sin_port
  b.writeUInt32BE(ipv4ToInt(address), 4) // sin_addr.s_addr, network byte order
  return b // sin_zero[8] stays zero
}

/**
 * The dotted quad of a struct sockaddr as macOS lays it out (sa_len first), or undefined when it
 * is not an AF_INET address or too short.
 */
export function decodeSockaddrIn(b: Buffer): string | undefined {
  if (b.length < 8 || b[1] !== AF_INET || b[0]! < 8) return undefined
  return intToIpv4(b.readUInt32BE(4))
}

/**
 * struct sockaddr_dl — <net/if_dl.h>: sdl_len, sdl_family, sdl_index (u_short), sdl_type,
 * sdl_nlen, sdl_alen, sdl_slen, then sdl_data (the name, sdl_nlen bytes, no NUL).
 */
export const SOCKADDR_DL = { len: 0, family: 1, index: 2, type: 4, nlen: 5, alen: 6, slen: 7, data: 8, size: 20 } as const

/** The interface index and name an AF_LINK sockaddr carries, or undefined for another family. */
export function decodeSockaddrDl(b: Buffer): { index: number; name: string } | undefined {
  if (b.length < SOCKADDR_DL.data || b[SOCKADDR_DL.family] !== AF_LINK) return undefined
  const nlen = b[SOCKADDR_DL.nlen]!
  const end = Math.min(b.length, SOCKADDR_DL.data + nlen)
  return { index: b.readUInt16LE(SOCKADDR_DL.index), name: b.toString('latin1', SOCKADDR_DL.data, end) }
}

/** Writes an interface name into the first IFNAMSIZ bytes (NUL-padded). */
export function encodeName(name: string, into: Buffer): void {
  if (!/^[a-z0-9]+$/i.test(name) || name.length >= IFNAMSIZ) throw new RangeError(`bad interface name ${JSON.stringify(name)}`)
  into.write(name, 0, 'latin1') // the rest of the 16 bytes stays NUL
}

export interface IfaliasreqFields {
  name: string
  address: string
  mask: string
  /**
   * `ifra_broadaddr`, which <netinet/in_var.h> also names `ifra_dstaddr`: the far end of a
   * point-to-point interface (utun needs one: XNU refuses a zero one with EDESTADDRREQ). Left all
   * zero when omitted, as ifconfig(8) does for `alias` without `broadcast`: lo0 is neither
   * broadcast nor point-to-point, so the kernel ignores it there.
   */
  broadaddr?: string
}

/** struct ifaliasreq / struct in_aliasreq for SIOCAIFADDR (64 bytes) — <net/if.h>, <netinet/in_var.h>. */
export function encodeIfaliasreq({ name, address, mask, broadaddr }: IfaliasreqFields): Buffer {
  if (!isIpv4(address) || !isIpv4(mask) || (broadaddr !== undefined && !isIpv4(broadaddr))) throw new RangeError(`bad address ${address}/${mask}`)
  const b = Buffer.alloc(IFALIASREQ_SIZE)
  encodeName(name, b)
  encodeSockaddrIn(address).copy(b, IFALIASREQ.addr)
  if (broadaddr !== undefined) encodeSockaddrIn(broadaddr).copy(b, IFALIASREQ.broadaddr)
  encodeSockaddrIn(mask).copy(b, IFALIASREQ.mask)
  return b
}

/** struct ifreq with ifr_addr set, for SIOCDIFADDR (32 bytes) — <net/if.h>. */
export function encodeIfreqAddr({ name, address }: { name: string; address: string }): Buffer {
  if (!isIpv4(address)) throw new RangeError(`bad address ${address}`)
  const b = Buffer.alloc(IFREQ_SIZE)
  encodeName(name, b)
  encodeSockaddrIn(address).copy(b, IFREQ.addr)
  return b
}

/** struct ifreq with ifr_mtu (an int, host order) set, for SIOCSIFMTU (32 bytes) — <net/if.h>. */
export function encodeIfreqMtu({ name, mtu }: { name: string; mtu: number }): Buffer {
  if (!Number.isInteger(mtu) || mtu < 0 || mtu > 0x7fffffff) throw new RangeError(`bad mtu ${mtu}`)
  const b = Buffer.alloc(IFREQ_SIZE)
  encodeName(name, b)
  b.writeInt32LE(mtu, IFREQ.mtu) // both macOS architectures are little-endian
  return b
}

/**
 * struct ifaddrs on 64-bit macOS — <ifaddrs.h> (Libinfo): ifa_next, ifa_name, ifa_flags (unsigned
 * int, then 4 bytes of padding), ifa_addr, ifa_netmask, ifa_dstaddr, ifa_data.
 */
export const IFADDRS = { next: 0, name: 8, flags: 16, addr: 24, netmask: 32, dstaddr: 40, data: 48, size: 56 } as const

export interface IfaddrsNode {
  next: bigint
  name: bigint
  flags: number
  addr: bigint
  netmask: bigint
  dstaddr: bigint
}

/** Reads one struct ifaddrs (the pointers as BigInt addresses, 0n for NULL). */
export function decodeIfaddrsNode(b: Buffer): IfaddrsNode {
  if (b.length < IFADDRS.size) throw new RangeError(`struct ifaddrs needs ${IFADDRS.size} bytes, got ${b.length}`)
  return {
    next: b.readBigUInt64LE(IFADDRS.next),
    name: b.readBigUInt64LE(IFADDRS.name),
    flags: b.readUInt32LE(IFADDRS.flags),
    addr: b.readBigUInt64LE(IFADDRS.addr),
    netmask: b.readBigUInt64LE(IFADDRS.netmask),
    dstaddr: b.readBigUInt64LE(IFADDRS.dstaddr),
  }
}
