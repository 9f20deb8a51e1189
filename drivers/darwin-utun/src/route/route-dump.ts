/**
 * The IPv4 routing table of macOS, read with sysctl(3) { CTL_NET, PF_ROUTE, 0, AF_INET,
 * NET_RT_DUMP, 0 }: a run of routing messages, each a struct rt_msghdr followed by the sockaddrs
 * its rtm_addrs bits announce. Pure Buffer code, testable on any OS.
 */
import { AF_INET, AF_LINK, CTL_NET, DARWIN_ERRNO, darwinError, decodeSockaddrDl, decodeSockaddrIn, NET_RT_DUMP, PF_ROUTE, type Caller, type DarwinSyscalls } from '@ngrokd/driver-loopback-alias/darwin'

/** The sysctl name of an IPv4 route dump — <sys/sysctl.h>, <sys/socket.h>. */
export const ROUTE_DUMP_MIB: readonly number[] = [CTL_NET, PF_ROUTE, 0, AF_INET, NET_RT_DUMP, 0]

// <net/route.h>
export const RTM_VERSION = 5
export const RTM_GET = 4
/** struct rt_msghdr on 64-bit macOS: 92 bytes (rtm_rmx, a struct rt_metrics of 56 bytes, at 36). */
export const RT_MSGHDR = { msglen: 0, version: 2, type: 3, index: 4, flags: 8, addrs: 12, pid: 16, seq: 20, errno: 24, use: 28, inits: 32, rmx: 36, size: 92 } as const
export const RTAX_DST = 0
export const RTAX_GATEWAY = 1
export const RTAX_NETMASK = 2
export const RTAX_MAX = 8
export const RTF_UP = 0x1
export const RTF_GATEWAY = 0x2
export const RTF_HOST = 0x4
export const RTF_REJECT = 0x8
export const RTF_STATIC = 0x800
export const RTF_BLACKHOLE = 0x1000
export const RTF_WASCLONED = 0x20000
export const RTF_LOCAL = 0x200000
export const RTF_BROADCAST = 0x400000
export const RTF_MULTICAST = 0x800000

/** One IPv4 route. */
export interface Route {
  /** Destination network (or host). */
  dst: string
  prefix: number
  flags: number
  /** rtm_index: the interface the route goes out of. */
  index: number
  /** The next hop of an RTF_GATEWAY route (AF_INET gateway). */
  gateway?: string
}

/**
 * Each sockaddr in a routing message takes sa_len rounded up to 4 bytes, and 4 when sa_len is 0
 * (a /0 netmask): ROUNDUP32 in XNU's bsd/net/rtsock.c — on every architecture, not `long` as the
 * older BSDs did.
 */
export function sockaddrSpace(saLen: number): number {
  return saLen === 0 ? 4 : (saLen + 3) & ~3
}

/**
 * The prefix length of a netmask sockaddr as the routing table keeps it: trailing zero bytes are
 * trimmed (sa_len 5 for /8, 0 for /0) and sa_family is often 0 or 0xff, so only the bytes from
 * offset 4 up to sa_len count. Undefined for a mask whose ones are not contiguous.
 */
export function decodeMaskPrefix(sa: Buffer): number | undefined {
  const len = Math.min(sa.length, sa[0] ?? 0)
  const bytes = Buffer.alloc(4)
  if (len > 4) sa.copy(bytes, 0, 4, Math.min(len, 8))
  const mask = bytes.readUInt32BE(0)
  const ones = Math.clz32(~mask) // leading one bits
  const contiguous = ones === 0 ? 0 : (0xffffffff << (32 - ones)) >>> 0
  return mask === contiguous ? ones : undefined
}

/**
 * The IPv4 routes of a NET_RT_DUMP buffer. Messages of another version or type are skipped by
 * rtm_msglen, as route(8) does; a message that runs past the buffer ends the parse.
 */
export function parseRouteDump(buf: Buffer): Route[] {
  const routes: Route[] = []
  for (let at = 0; at + RT_MSGHDR.size <= buf.length; ) {
    const msglen = buf.readUInt16LE(at + RT_MSGHDR.msglen)
    if (msglen < RT_MSGHDR.size || at + msglen > buf.length) break
    const message = buf.subarray(at, at + msglen)
    at += msglen
    if (message[RT_MSGHDR.version] !== RTM_VERSION || message[RT_MSGHDR.type] !== RTM_GET) continue
    const flags = message.readInt32LE(RT_MSGHDR.flags)
    const addrs = message.readInt32LE(RT_MSGHDR.addrs)
    const sockaddrs: Array<Buffer | undefined> = []
    for (let i = 0, p = RT_MSGHDR.size; i < RTAX_MAX; i++) {
      if (!(addrs & (1 << i))) continue
      if (p >= message.length) break
      const saLen = message[p]!
      sockaddrs[i] = message.subarray(p, Math.min(message.length, p + saLen))
      p += sockaddrSpace(saLen)
    }
    const dst = sockaddrs[RTAX_DST] && decodeSockaddrIn(sockaddrs[RTAX_DST])
    if (dst === undefined) continue
    const mask = sockaddrs[RTAX_NETMASK]
    // a route without RTA_NETMASK is a host route (RTF_HOST), as in the kernel's radix tree
    const prefix = flags & RTF_HOST || !mask ? 32 : decodeMaskPrefix(mask)
    if (prefix === undefined) continue
    const gw = sockaddrs[RTAX_GATEWAY]
    const gateway = gw && gw[1] === AF_INET ? decodeSockaddrIn(gw) : undefined
    const linkIndex = gw && gw[1] === AF_LINK ? decodeSockaddrDl(gw)?.index : undefined
    routes.push({
      dst,
      prefix,
      flags,
      index: message.readUInt16LE(RT_MSGHDR.index) || linkIndex || 0,
      ...(gateway === undefined ? {} : { gateway }),
    })
  }
  return routes
}

/**
 * Reads the routing table: sysctl once for the size, then into a buffer with room to spare; when
 * the table grew in between (ENOMEM), it tries again, up to 5 times.
 */
export function readRoutes(sys: DarwinSyscalls, caller: Caller): Route[] {
  for (let attempt = 0; attempt < 5; attempt++) {
    const size = sys.sysctl(ROUTE_DUMP_MIB, null)
    if (size.errno !== 0) throw darwinError(caller, 'sysctl(NET_RT_DUMP)', size.errno, '(routing table size)')
    const out = Buffer.alloc(size.length + 4096 * (attempt + 1))
    const read = sys.sysctl(ROUTE_DUMP_MIB, out)
    if (read.errno === DARWIN_ERRNO.ENOMEM) continue
    if (read.errno !== 0) throw darwinError(caller, 'sysctl(NET_RT_DUMP)', read.errno, '(routing table)')
    return parseRouteDump(out.subarray(0, read.length))
  }
  throw darwinError(caller, 'sysctl(NET_RT_DUMP)', DARWIN_ERRNO.ENOMEM, '(the routing table kept growing while it was read)')
}
