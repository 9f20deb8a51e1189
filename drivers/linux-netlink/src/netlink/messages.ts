/**
 * rtnetlink messages as plain Buffers: encoders for the requests this driver sends and decoders for
 * the replies it reads. Pure code, no FFI: it runs and is tested on any OS.
 *
 * Layouts follow <linux/netlink.h> (`struct nlmsghdr`, `struct nlmsgerr`), <linux/rtnetlink.h>
 * (`struct rtmsg`, `struct rtattr`), <linux/if_link.h> (`struct ifinfomsg` attributes) and
 * <linux/if_addr.h> (`struct ifaddrmsg`). Header fields are in host byte order, which is
 * little-endian on every platform koffi ships for; IPv4 addresses in attributes are in network
 * byte order. Requests are byte-for-byte what iproute2 6.1 sends for the same command (see
 * messages.test.ts), except the sequence number.
 */
import { NgrokdError, ipv4ToInt } from '@ngrokd/core/driver'
import {
  AF_INET,
  AF_UNSPEC,
  IFA_ADDRESS,
  IFA_LABEL,
  IFA_LOCAL,
  IFADDRMSG_LEN,
  IFF_UP,
  IFINFOMSG_LEN,
  IFLA_EXT_MASK,
  IFLA_GROUP,
  IFLA_IFALIAS,
  IFLA_IFNAME,
  IFLA_INFO_KIND,
  IFLA_LINKINFO,
  IFLA_MASTER,
  NLA_HDRLEN,
  NLA_TYPE_MASK,
  NLM_F_ACK,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_EXCL,
  NLM_F_REQUEST,
  NLMSG_ALIGNTO,
  NLMSG_HDRLEN,
  NLMSGERR_ATTR_MSG,
  RTA_DST,
  RTA_GATEWAY,
  RTA_MULTIPATH,
  RTA_OIF,
  RTA_PREFSRC,
  RTA_TABLE,
  RTEXT_FILTER_SKIP_STATS,
  RTEXT_FILTER_VF,
  RTM_DELADDR,
  RTM_DELLINK,
  RTM_GETADDR,
  RTM_GETLINK,
  RTM_GETROUTE,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTMSG_LEN,
  RTNEXTHOP_LEN,
} from './constants.js'

/** NLMSG_ALIGN / RTA_ALIGN / NLA_ALIGN: round up to 4 bytes. */
export function align(length: number): number {
  return (length + NLMSG_ALIGNTO - 1) & ~(NLMSG_ALIGNTO - 1)
}

// ---------------------------------------------------------------------------------------------
// Encoding

export interface MessageHeader {
  type: number
  flags: number
  seq: number
  /** Sender port id; 0 lets the kernel fill in ours. */
  pid?: number
}

/** `struct nlmsghdr` followed by `parts` (each already 4-byte aligned). `nlmsg_len` counts the padding. */
export function encodeMessage(header: MessageHeader, ...parts: Buffer[]): Buffer {
  const bodyLength = parts.reduce((n, p) => n + p.length, 0)
  const head = Buffer.alloc(NLMSG_HDRLEN)
  head.writeUInt32LE(NLMSG_HDRLEN + bodyLength, 0)
  head.writeUInt16LE(header.type, 4)
  head.writeUInt16LE(header.flags, 6)
  head.writeUInt32LE(header.seq >>> 0, 8)
  head.writeUInt32LE((header.pid ?? 0) >>> 0, 12)
  return Buffer.concat([head, ...parts], NLMSG_HDRLEN + bodyLength)
}

/** One `struct rtattr`: `rta_len` counts header + value (not the padding); the buffer is padded. */
export function encodeAttr(type: number, value: Buffer): Buffer {
  const length = NLA_HDRLEN + value.length
  const out = Buffer.alloc(align(length))
  out.writeUInt16LE(length, 0)
  out.writeUInt16LE(type, 2)
  value.copy(out, NLA_HDRLEN)
  return out
}

/** A NUL-terminated string attribute (IFLA_IFNAME is sent with its NUL, as iproute2 does). */
export function encodeStringAttr(type: number, text: string, { nul = true }: { nul?: boolean } = {}): Buffer {
  const bytes = Buffer.from(text, 'utf8')
  return encodeAttr(type, nul ? Buffer.concat([bytes, Buffer.alloc(1)]) : bytes)
}

export function encodeU32Attr(type: number, value: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(value >>> 0, 0)
  return encodeAttr(type, b)
}

/** An IPv4 address attribute, network byte order. */
export function encodeIpv4Attr(type: number, address: string): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(ipv4ToInt(address), 0)
  return encodeAttr(type, b)
}

/** A nested attribute; its length includes the padded children. No NLA_F_NESTED, like iproute2. */
export function encodeNestedAttr(type: number, children: Buffer[]): Buffer {
  return encodeAttr(type, Buffer.concat(children))
}

export interface IfinfomsgFields {
  family?: number
  /** ARPHRD_* device type; 0 in requests. */
  type?: number
  index?: number
  flags?: number
  change?: number
}

/** `struct ifinfomsg` (16 bytes). */
export function encodeIfinfomsg(f: IfinfomsgFields = {}): Buffer {
  const b = Buffer.alloc(IFINFOMSG_LEN)
  b.writeUInt8(f.family ?? AF_UNSPEC, 0)
  b.writeUInt16LE(f.type ?? 0, 2)
  b.writeInt32LE(f.index ?? 0, 4)
  b.writeUInt32LE((f.flags ?? 0) >>> 0, 8)
  b.writeUInt32LE((f.change ?? 0) >>> 0, 12)
  return b
}

export interface IfaddrmsgFields {
  family?: number
  prefixlen?: number
  flags?: number
  scope?: number
  index?: number
}

/** `struct ifaddrmsg` (8 bytes). */
export function encodeIfaddrmsg(f: IfaddrmsgFields = {}): Buffer {
  const b = Buffer.alloc(IFADDRMSG_LEN)
  b.writeUInt8(f.family ?? AF_INET, 0)
  b.writeUInt8(f.prefixlen ?? 0, 1)
  b.writeUInt8(f.flags ?? 0, 2)
  b.writeUInt8(f.scope ?? 0, 3)
  b.writeUInt32LE(f.index ?? 0, 4)
  return b
}

export interface RtmsgFields {
  family?: number
  dstLen?: number
  srcLen?: number
  tos?: number
  table?: number
  protocol?: number
  scope?: number
  type?: number
  flags?: number
}

/** `struct rtmsg` (12 bytes). */
export function encodeRtmsg(f: RtmsgFields = {}): Buffer {
  const b = Buffer.alloc(RTMSG_LEN)
  b.writeUInt8(f.family ?? AF_INET, 0)
  b.writeUInt8(f.dstLen ?? 0, 1)
  b.writeUInt8(f.srcLen ?? 0, 2)
  b.writeUInt8(f.tos ?? 0, 3)
  b.writeUInt8(f.table ?? 0, 4)
  b.writeUInt8(f.protocol ?? 0, 5)
  b.writeUInt8(f.scope ?? 0, 6)
  b.writeUInt8(f.type ?? 0, 7)
  b.writeUInt32LE((f.flags ?? 0) >>> 0, 8)
  return b
}

// Requests. Every change request asks for an ACK so that each one gets exactly one NLMSG_ERROR.
const CHANGE = NLM_F_REQUEST | NLM_F_ACK
const CREATE_NEW = NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE
const DUMP = NLM_F_REQUEST | NLM_F_DUMP

/**
 * `ip link add NAME [group N] type KIND`. IFLA_INFO_KIND goes without a NUL, as iproute2 sends it. The kernel sets
 * IFLA_GROUP as it creates the link (rtnl_create_link), unlike IFLA_IFALIAS.
 */
export function newLinkRequest({ seq, name, kind, group }: { seq: number; name: string; kind: string; group?: number }): Buffer {
  return encodeMessage(
    { type: RTM_NEWLINK, flags: CREATE_NEW, seq },
    encodeIfinfomsg(),
    encodeStringAttr(IFLA_IFNAME, name),
    ...(group === undefined ? [] : [encodeU32Attr(IFLA_GROUP, group)]),
    encodeNestedAttr(IFLA_LINKINFO, [encodeStringAttr(IFLA_INFO_KIND, kind, { nul: false })]),
  )
}

/** `ip link set dev INDEX up`: IFF_UP in both flags and change mask. */
export function setLinkUpRequest({ seq, index }: { seq: number; index: number }): Buffer {
  return encodeMessage({ type: RTM_NEWLINK, flags: CHANGE, seq }, encodeIfinfomsg({ index, flags: IFF_UP, change: IFF_UP }))
}

/** `ip link set dev INDEX alias ALIAS`: IFLA_IFALIAS without a NUL, as iproute2 sends it (the kernel ignores it on create). */
export function setLinkAliasRequest({ seq, index, alias }: { seq: number; index: number; alias: string }): Buffer {
  return encodeMessage({ type: RTM_NEWLINK, flags: CHANGE, seq }, encodeIfinfomsg({ index }), encodeStringAttr(IFLA_IFALIAS, alias, { nul: false }))
}

/** `ip link del dev INDEX`. */
export function delLinkRequest({ seq, index }: { seq: number; index: number }): Buffer {
  return encodeMessage({ type: RTM_DELLINK, flags: CHANGE, seq }, encodeIfinfomsg({ index }))
}

/** Look one link up by name (no ACK: the reply is one RTM_NEWLINK or an NLMSG_ERROR, ENODEV if absent). */
export function getLinkRequest({ seq, name }: { seq: number; name: string }): Buffer {
  return encodeMessage(
    { type: RTM_GETLINK, flags: NLM_F_REQUEST, seq },
    encodeIfinfomsg(),
    encodeU32Attr(IFLA_EXT_MASK, RTEXT_FILTER_VF | RTEXT_FILTER_SKIP_STATS),
    encodeStringAttr(IFLA_IFNAME, name),
  )
}

/** Dump every link (names, kinds and masters), without statistics. */
export function getLinkDumpRequest({ seq }: { seq: number }): Buffer {
  return encodeMessage(
    { type: RTM_GETLINK, flags: DUMP, seq },
    encodeIfinfomsg(),
    encodeU32Attr(IFLA_EXT_MASK, RTEXT_FILTER_VF | RTEXT_FILTER_SKIP_STATS),
  )
}

/** `ip addr add ADDRESS/32 dev INDEX`: a host address, so the kernel adds no subnet-wide route. */
export function newAddrRequest({ seq, index, address }: { seq: number; index: number; address: string }): Buffer {
  return encodeMessage(
    { type: RTM_NEWADDR, flags: CREATE_NEW, seq },
    encodeIfaddrmsg({ family: AF_INET, prefixlen: 32, index }),
    encodeIpv4Attr(IFA_LOCAL, address),
    encodeIpv4Attr(IFA_ADDRESS, address),
  )
}

/** `ip addr del ADDRESS/32 dev INDEX`. */
export function delAddrRequest({ seq, index, address }: { seq: number; index: number; address: string }): Buffer {
  return encodeMessage(
    { type: RTM_DELADDR, flags: CHANGE, seq },
    encodeIfaddrmsg({ family: AF_INET, prefixlen: 32, index }),
    encodeIpv4Attr(IFA_LOCAL, address),
    encodeIpv4Attr(IFA_ADDRESS, address),
  )
}

/** Dump every IPv4 address of every link. */
export function getAddrDumpRequest({ seq }: { seq: number }): Buffer {
  return encodeMessage({ type: RTM_GETADDR, flags: DUMP, seq }, encodeIfaddrmsg({ family: AF_INET }))
}

/** Dump every IPv4 route of every table (`ip -4 route show table all`). */
export function getRouteDumpRequest({ seq }: { seq: number }): Buffer {
  return encodeMessage({ type: RTM_GETROUTE, flags: DUMP, seq }, encodeRtmsg({ family: AF_INET }))
}

// ---------------------------------------------------------------------------------------------
// Decoding

export interface NetlinkMessage {
  type: number
  flags: number
  seq: number
  pid: number
  /** Everything after the 16-byte header, up to `nlmsg_len`. */
  payload: Buffer
}

function malformed(what: string): NgrokdError {
  return new NgrokdError('NGROKD_ERR_SYSCALL', `linux-netlink: malformed netlink reply: ${what}`)
}

/** Splits one datagram into its messages (NLMSG_OK / NLMSG_NEXT). */
export function parseMessages(buf: Buffer): NetlinkMessage[] {
  const out: NetlinkMessage[] = []
  let offset = 0
  while (offset + NLMSG_HDRLEN <= buf.length) {
    const length = buf.readUInt32LE(offset)
    if (length < NLMSG_HDRLEN || offset + length > buf.length) {
      throw malformed(`nlmsg_len ${length} at offset ${offset} of ${buf.length}`)
    }
    out.push({
      type: buf.readUInt16LE(offset + 4),
      flags: buf.readUInt16LE(offset + 6),
      seq: buf.readUInt32LE(offset + 8),
      pid: buf.readUInt32LE(offset + 12),
      payload: buf.subarray(offset + NLMSG_HDRLEN, offset + length),
    })
    offset += align(length)
  }
  return out
}

/** Attributes by type (flag bits masked off; a repeated type keeps the last). */
export function parseAttrs(buf: Buffer): Map<number, Buffer> {
  const attrs = new Map<number, Buffer>()
  let offset = 0
  while (offset + NLA_HDRLEN <= buf.length) {
    const length = buf.readUInt16LE(offset)
    if (length < NLA_HDRLEN || offset + length > buf.length) throw malformed(`rta_len ${length} at offset ${offset} of ${buf.length}`)
    attrs.set(buf.readUInt16LE(offset + 2) & NLA_TYPE_MASK, buf.subarray(offset + NLA_HDRLEN, offset + length))
    offset += align(length)
  }
  return attrs
}

/** A NUL-terminated (or not) string attribute value. */
export function attrString(value: Buffer | undefined): string | undefined {
  if (value === undefined) return undefined
  const nul = value.indexOf(0)
  return value.toString('utf8', 0, nul === -1 ? value.length : nul)
}

export function attrU32(value: Buffer | undefined): number | undefined {
  return value !== undefined && value.length >= 4 ? value.readUInt32LE(0) : undefined
}

export function attrIpv4(value: Buffer | undefined): string | undefined {
  return value !== undefined && value.length === 4 ? `${value[0]}.${value[1]}.${value[2]}.${value[3]}` : undefined
}

export interface NetlinkErrorReply {
  /** Positive errno; 0 is a plain ACK. */
  errno: number
  /** Header of the request this answers. */
  request: { type: number; flags: number; seq: number }
  /** NLMSGERR_ATTR_MSG, the kernel's extended-ack text (e.g. `Unknown device type`), when sent. */
  message?: string
}

/** `struct nlmsgerr`: i32 error (negated errno), the request's header (+ its payload unless capped), TLVs. */
export function decodeError(msg: NetlinkMessage): NetlinkErrorReply {
  const p = msg.payload
  if (p.length < 4 + NLMSG_HDRLEN) throw malformed(`NLMSG_ERROR payload of ${p.length} bytes`)
  const error = p.readInt32LE(0)
  const requestLength = p.readUInt32LE(4)
  const reply: NetlinkErrorReply = {
    errno: error === 0 ? 0 : -error,
    request: { type: p.readUInt16LE(8), flags: p.readUInt16LE(10), seq: p.readUInt32LE(12) },
  }
  if (msg.flags & NLM_F_ACK_TLVS) {
    // Without NLM_F_CAPPED the whole request is echoed before the TLVs (only for errors).
    const echoed = msg.flags & NLM_F_CAPPED || error === 0 ? NLMSG_HDRLEN : align(requestLength)
    const tlvStart = 4 + echoed
    if (tlvStart <= p.length) {
      const text = attrString(parseAttrs(p.subarray(tlvStart)).get(NLMSGERR_ATTR_MSG))
      if (text) reply.message = text
    }
  }
  return reply
}

/** NLMSG_DONE carries an i32 (a negated errno when a dump failed); absent means 0. */
export function decodeDone(msg: NetlinkMessage): number {
  return msg.payload.length >= 4 ? Math.abs(msg.payload.readInt32LE(0)) : 0
}

export interface LinkMessage {
  index: number
  /** IFF_* flags. */
  flags: number
  /** ARPHRD_* type. */
  type: number
  name?: string
  /** IFLA_LINKINFO / IFLA_INFO_KIND, e.g. `dummy`, `bridge`; absent for physical devices and `lo`. */
  kind?: string
  /** IFLA_MASTER: the bridge (or bond) this link is a port of. */
  master?: number
  /** IFLA_IFALIAS: the free-text alias (`ip link set NAME alias …`), where ngrokd tags its own link. */
  alias?: string
  /** IFLA_GROUP: the link's group (`ip link` prints `group default` for 0). */
  group?: number
}

export function decodeLink(msg: NetlinkMessage): LinkMessage {
  const p = msg.payload
  if (p.length < IFINFOMSG_LEN) throw malformed(`ifinfomsg of ${p.length} bytes`)
  const attrs = parseAttrs(p.subarray(IFINFOMSG_LEN))
  const link: LinkMessage = { index: p.readInt32LE(4), flags: p.readUInt32LE(8), type: p.readUInt16LE(2) }
  const name = attrString(attrs.get(IFLA_IFNAME))
  if (name !== undefined) link.name = name
  const info = attrs.get(IFLA_LINKINFO)
  if (info) {
    const kind = attrString(parseAttrs(info).get(IFLA_INFO_KIND))
    if (kind) link.kind = kind
  }
  const master = attrU32(attrs.get(IFLA_MASTER))
  if (master) link.master = master
  const alias = attrString(attrs.get(IFLA_IFALIAS))
  if (alias) link.alias = alias
  const group = attrU32(attrs.get(IFLA_GROUP))
  if (group) link.group = group
  return link
}

export interface AddrMessage {
  family: number
  prefixlen: number
  flags: number
  scope: number
  index: number
  /** IFA_LOCAL: the interface's own address (IPv4 only). */
  local?: string
  /** IFA_ADDRESS: the peer on point-to-point links, else the same as `local`. */
  address?: string
  label?: string
}

export function decodeAddr(msg: NetlinkMessage): AddrMessage {
  const p = msg.payload
  if (p.length < IFADDRMSG_LEN) throw malformed(`ifaddrmsg of ${p.length} bytes`)
  const addr: AddrMessage = { family: p[0]!, prefixlen: p[1]!, flags: p[2]!, scope: p[3]!, index: p.readUInt32LE(4) }
  const attrs = parseAttrs(p.subarray(IFADDRMSG_LEN))
  if (addr.family === AF_INET) {
    const local = attrIpv4(attrs.get(IFA_LOCAL))
    const address = attrIpv4(attrs.get(IFA_ADDRESS))
    if (local) addr.local = local
    if (address) addr.address = address
  }
  const label = attrString(attrs.get(IFA_LABEL))
  if (label) addr.label = label
  return addr
}

export interface RouteMessage {
  family: number
  dstLen: number
  /** RTA_TABLE when present (ids above 255), else rtm_table. */
  table: number
  protocol: number
  scope: number
  /** RTN_* */
  type: number
  /** RTA_DST; absent for default routes. */
  dst?: string
  gateway?: string
  prefsrc?: string
  /** Output interfaces: RTA_OIF, or every RTA_MULTIPATH next hop's. */
  oifs: number[]
}

export function decodeRoute(msg: NetlinkMessage): RouteMessage {
  const p = msg.payload
  if (p.length < RTMSG_LEN) throw malformed(`rtmsg of ${p.length} bytes`)
  const attrs = parseAttrs(p.subarray(RTMSG_LEN))
  const route: RouteMessage = {
    family: p[0]!,
    dstLen: p[1]!,
    table: attrU32(attrs.get(RTA_TABLE)) ?? p[4]!,
    protocol: p[5]!,
    scope: p[6]!,
    type: p[7]!,
    oifs: [],
  }
  if (route.family === AF_INET) {
    const dst = attrIpv4(attrs.get(RTA_DST))
    const gateway = attrIpv4(attrs.get(RTA_GATEWAY))
    const prefsrc = attrIpv4(attrs.get(RTA_PREFSRC))
    if (dst) route.dst = dst
    if (gateway) route.gateway = gateway
    if (prefsrc) route.prefsrc = prefsrc
  }
  const oif = attrU32(attrs.get(RTA_OIF))
  if (oif) route.oifs.push(oif)
  const multipath = attrs.get(RTA_MULTIPATH)
  if (multipath) {
    // A sequence of `struct rtnexthop` (u16 len, u8 flags, u8 hops, i32 ifindex) + per-hop attributes.
    for (let offset = 0; offset + RTNEXTHOP_LEN <= multipath.length; ) {
      const length = multipath.readUInt16LE(offset)
      if (length < RTNEXTHOP_LEN) break
      const ifindex = multipath.readInt32LE(offset + 4)
      if (ifindex > 0 && !route.oifs.includes(ifindex)) route.oifs.push(ifindex)
      offset += align(length)
    }
  }
  return route
}
