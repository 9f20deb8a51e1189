/**
 * macOS structures and constants for lo0 aliases, as pure Buffer code (testable on any OS).
 * Layouts are those of 64-bit macOS (x86_64 and arm64 agree on all of them).
 */

import { ipv4ToInt, intToIpv4, isIpv4 } from '@ngrokd/core/driver'

export const AF_INET = 2 // <sys/socket.h>
export const AF_INET6 = 30 // <sys/socket.h> (macOS value; Linux uses 10)
export const AF_LINK = 18 // <sys/socket.h>
export const SOCK_DGRAM = 2 // <sys/socket.h>
export const IFNAMSIZ = 16 // <net/if.h>, including the terminating NUL

/** sizeof(struct sockaddr_in): sin_len, sin_family, sin_port, sin_addr, sin_zero[8] — <netinet/in.h> */
export const SOCKADDR_IN_SIZE = 16
/** sizeof(struct ifaliasreq): ifra_name[16] + ifra_addr + ifra_broadaddr + ifra_mask (16 each) — <net/if.h> */
export const IFALIASREQ_SIZE = 64
/** sizeof(struct ifreq): ifr_name[16] + a 16-byte union (ifr_addr for SIOCDIFADDR) — <net/if.h> */
export const IFREQ_SIZE = 32

// <sys/ioccom.h>: _IOC(inout, group, num, len) = inout | ((len & IOCPARM_MASK) << 16) | (group << 8) | num
export const IOC_IN = 0x80000000 // copy the argument in
export const IOCPARM_MASK = 0x1fff // parameter length, at most 13 bits

/** `_IOW(group, num, len)` from <sys/ioccom.h>, as an unsigned 32-bit number. */
export function _IOW(group: string, num: number, len: number): number {
  return (IOC_IN | ((len & IOCPARM_MASK) << 16) | (group.charCodeAt(0) << 8) | num) >>> 0
}

export const SIOCAIFADDR = 0x8040691a // _IOW('i', 26, struct ifaliasreq) — <sys/sockio.h>
export const SIOCDIFADDR = 0x80206919 // _IOW('i', 25, struct ifreq) — <sys/sockio.h>

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

function encodeName(name: string, into: Buffer): void {
  if (!/^[a-z0-9]+$/i.test(name) || name.length >= IFNAMSIZ) throw new RangeError(`bad interface name ${JSON.stringify(name)}`)
  into.write(name, 0, 'latin1') // the rest of the 16 bytes stays NUL
}

export interface IfaliasreqFields {
  name: string
  address: string
  mask: string
  /**
   * Left all zero when omitted, as ifconfig(8) does for `alias` without `broadcast`: lo0 is
   * neither broadcast nor point-to-point, so the kernel ignores it.
   */
  broadaddr?: string
}

/** struct ifaliasreq for SIOCAIFADDR (64 bytes) — <net/if.h>. */
export function encodeIfaliasreq({ name, address, mask, broadaddr }: IfaliasreqFields): Buffer {
  if (!isIpv4(address) || !isIpv4(mask)) throw new RangeError(`bad address ${address}/${mask}`)
  const b = Buffer.alloc(IFALIASREQ_SIZE)
  encodeName(name, b)
  encodeSockaddrIn(address).copy(b, 16) // ifra_addr
  if (broadaddr !== undefined) encodeSockaddrIn(broadaddr).copy(b, 32) // ifra_broadaddr
  encodeSockaddrIn(mask).copy(b, 48) // ifra_mask
  return b
}

/** struct ifreq with ifr_addr set, for SIOCDIFADDR (32 bytes) — <net/if.h>. */
export function encodeIfreqAddr({ name, address }: { name: string; address: string }): Buffer {
  if (!isIpv4(address)) throw new RangeError(`bad address ${address}`)
  const b = Buffer.alloc(IFREQ_SIZE)
  encodeName(name, b)
  encodeSockaddrIn(address).copy(b, 16) // ifr_addr
  return b
}

/**
 * struct ifaddrs on 64-bit macOS — <ifaddrs.h>: ifa_next, ifa_name, ifa_flags (unsigned int,
 * then 4 bytes of padding), ifa_addr, ifa_netmask, ifa_dstaddr, ifa_data.
 */
export const IFADDRS = { next: 0, name: 8, flags: 16, addr: 24, netmask: 32, dstaddr: 40, data: 48, size: 56 } as const

export interface IfaddrsNode {
  next: bigint
  name: bigint
  flags: number
  addr: bigint
  netmask: bigint
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
  }
}
