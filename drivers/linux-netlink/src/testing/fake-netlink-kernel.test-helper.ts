/**
 * An in-memory rtnetlink peer for tests on any OS: it answers the requests this driver sends the
 * way Linux does (one NLMSG_ERROR per NLM_F_ACK request, dumps ending in NLMSG_DONE, ENOBUFS when
 * more ACKs are queued than the receive buffer holds), over the {@link NetlinkTransport} shape.
 */
import { ipv4ToInt } from '@ngrokd/core/driver'
import {
  AF_INET,
  IFA_ADDRESS,
  IFA_LOCAL,
  IFF_UP,
  IFLA_GROUP,
  IFLA_IFALIAS,
  IFLA_IFNAME,
  IFLA_INFO_KIND,
  IFLA_LINKINFO,
  IFLA_MASTER,
  NLM_F_ACK,
  NLM_F_CAPPED,
  NLM_F_MULTI,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  RT_TABLE_MAIN,
  RTA_DST,
  RTA_OIF,
  RTA_TABLE,
  RTM_DELADDR,
  RTM_DELLINK,
  RTM_GETADDR,
  RTM_GETLINK,
  RTM_GETROUTE,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWROUTE,
  RTN_UNICAST,
} from '../netlink/constants.js'
import { LINUX_ERRNO } from '../netlink/errno.js'
import {
  attrIpv4,
  attrString,
  attrU32,
  encodeIfaddrmsg,
  encodeIfinfomsg,
  encodeIpv4Attr,
  encodeMessage,
  encodeNestedAttr,
  encodeRtmsg,
  encodeStringAttr,
  encodeU32Attr,
  parseAttrs,
  parseMessages,
  type NetlinkMessage,
} from '../netlink/messages.js'
import { netlinkError } from '../netlink/netlink-error.js'
import type { NetlinkTransport } from '../netlink/route-socket.js'

export interface FakeLink {
  index: number
  name: string
  kind?: string
  /** IFLA_IFALIAS; an empty one clears it, as in the kernel. */
  alias?: string
  /** IFLA_GROUP: the create request's, else 0. */
  group?: number
  flags: number
  master?: number
  addresses: Set<string>
}

export interface FakeRoute {
  dst: string
  dstLen: number
  oif?: number
  table?: number
  type?: number
}

export interface FakeKernelOptions {
  /** Link kinds RTM_NEWLINK accepts; others get EOPNOTSUPP "Unknown device type". Default dummy + bridge. */
  kinds?: readonly string[]
  /** Effective SO_RCVBUF; ACKs beyond it are dropped and the next recv fails with ENOBUFS. */
  receiveBufferSize?: number
  /** Receive-buffer bytes one queued ACK uses: ~850 on Linux 6.18 (250 fit in 212,992 bytes). */
  ackTruesize?: number
  /** Messages per dump datagram. */
  dumpChunk?: number
}

interface KernelState {
  links: Map<number, FakeLink>
  routes: FakeRoute[]
  sent: Buffer[]
  connections: FakeNetlinkKernel[]
  nextIndex: number
  inject: ((m: NetlinkMessage) => number | undefined) | undefined
  swallow: ((m: NetlinkMessage) => boolean) | undefined
}

/**
 * The kernel's state plus one socket onto it. `connect()` opens another socket onto the same state
 * (a second driver instance, a restart after a crash).
 */
export class FakeNetlinkKernel implements NetlinkTransport {
  readonly receiveBufferSize: number
  closed = false
  readonly #state: KernelState
  #queue: Buffer[] = []
  #queuedAcks = 0
  #overrun = false
  readonly #options: FakeKernelOptions
  readonly #kinds: Set<string>
  readonly #dumpChunk: number
  readonly #ackTruesize: number

  constructor(options: FakeKernelOptions = {}, state?: KernelState) {
    const { kinds = ['dummy', 'bridge'], receiveBufferSize = 8 * 1024 * 1024, ackTruesize = 850, dumpChunk = 50 } = options
    this.#options = options
    this.#kinds = new Set(kinds)
    this.#ackTruesize = ackTruesize
    this.receiveBufferSize = receiveBufferSize
    this.#dumpChunk = dumpChunk
    this.#state = state ?? {
      links: new Map([[1, { index: 1, name: 'lo', flags: IFF_UP, addresses: new Set(['127.0.0.1']) }]]),
      routes: [],
      sent: [],
      connections: [],
      nextIndex: 2,
      inject: undefined,
      swallow: undefined,
    }
    this.#state.connections.push(this)
  }

  /** Another socket onto the same kernel. */
  connect(): FakeNetlinkKernel {
    return new FakeNetlinkKernel(this.#options, this.#state)
  }

  get links(): Map<number, FakeLink> {
    return this.#state.links
  }
  get routes(): FakeRoute[] {
    return this.#state.routes
  }
  /** Every send() buffer of every socket, for assertions on batching. */
  get sent(): Buffer[] {
    return this.#state.sent
  }
  /** Every socket opened onto this kernel. */
  get connections(): readonly FakeNetlinkKernel[] {
    return this.#state.connections
  }
  /** Return an errno to fail a request before it is applied (e.g. EPERM), or undefined. */
  get inject(): KernelState['inject'] {
    return this.#state.inject
  }
  set inject(fn: KernelState['inject']) {
    this.#state.inject = fn
  }
  /** Deliver no answer to requests for which this returns true (to test timeouts). */
  get swallow(): KernelState['swallow'] {
    return this.#state.swallow
  }
  set swallow(fn: KernelState['swallow']) {
    this.#state.swallow = fn
  }

  addLink(name: string, kind?: string, extra: Partial<FakeLink> = {}): FakeLink {
    const link: FakeLink = { index: this.#state.nextIndex++, name, flags: 0, addresses: new Set(), ...(kind ? { kind } : {}), ...extra }
    this.links.set(link.index, link)
    return link
  }

  linkByName(name: string): FakeLink | undefined {
    return [...this.links.values()].find((l) => l.name === name)
  }

  async send(buf: Buffer): Promise<void> {
    if (this.closed) throw new Error('fake kernel: send after close')
    this.sent.push(Buffer.from(buf))
    for (const m of parseMessages(buf)) {
      if (this.swallow?.(m)) continue
      this.#handle(m)
    }
  }

  recv(buf: Buffer): number {
    if (this.#overrun) {
      this.#overrun = false
      throw netlinkError('recv', LINUX_ERRNO.ENOBUFS)
    }
    const next = this.#queue.shift()
    if (!next) return -1
    if (next.readUInt16LE(4) === NLMSG_ERROR) this.#queuedAcks--
    next.copy(buf)
    return next.length
  }

  async waitReadable(): Promise<boolean> {
    return this.#queue.length > 0 || this.#overrun
  }

  close(): void {
    this.closed = true
  }

  #handle(m: NetlinkMessage): void {
    const failed = this.inject?.(m)
    if (failed !== undefined) return this.#ack(m, failed)
    switch (m.type) {
      case RTM_NEWLINK:
        return this.#newLink(m)
      case RTM_DELLINK: {
        const index = m.payload.readInt32LE(4)
        return this.#ack(m, this.links.delete(index) ? 0 : LINUX_ERRNO.ENODEV)
      }
      case RTM_GETLINK: {
        if ((m.flags & 0x300) === 0x300) return this.#dump(m, [...this.links.values()].map((l) => this.#linkMessage(l, m.seq)))
        const name = attrString(parseAttrs(m.payload.subarray(16)).get(IFLA_IFNAME))
        const link = name === undefined ? undefined : this.linkByName(name)
        if (!link) return this.#ack(m, LINUX_ERRNO.ENODEV)
        this.#queue.push(this.#linkMessage(link, m.seq, 0))
        if (m.flags & NLM_F_ACK) this.#ack(m, 0)
        return
      }
      case RTM_NEWADDR:
      case RTM_DELADDR: {
        const index = m.payload.readUInt32LE(4)
        const local = attrIpv4(parseAttrs(m.payload.subarray(8)).get(IFA_LOCAL))!
        const link = this.links.get(index)
        if (!link) return this.#ack(m, LINUX_ERRNO.ENODEV)
        if (m.type === RTM_NEWADDR) {
          if (link.addresses.has(local)) return this.#ack(m, LINUX_ERRNO.EEXIST)
          link.addresses.add(local)
        } else if (!link.addresses.delete(local)) {
          return this.#ack(m, LINUX_ERRNO.EADDRNOTAVAIL)
        }
        return this.#ack(m, 0)
      }
      case RTM_GETADDR: {
        const out: Buffer[] = []
        for (const l of this.links.values()) {
          for (const entry of l.addresses) {
            const [a, prefix] = entry.split('/') as [string, string | undefined] // a test's `10.0.0.2/24`: another prefix
            out.push(
              encodeMessage(
                { type: RTM_NEWADDR, flags: NLM_F_MULTI, seq: m.seq },
                encodeIfaddrmsg({ family: AF_INET, prefixlen: prefix === undefined ? 32 : Number(prefix), index: l.index }),
                encodeIpv4Attr(IFA_ADDRESS, a),
                encodeIpv4Attr(IFA_LOCAL, a),
              ),
            )
          }
        }
        return this.#dump(m, out)
      }
      case RTM_GETROUTE:
        return this.#dump(
          m,
          this.routes.map((r) =>
            encodeMessage(
              { type: RTM_NEWROUTE, flags: NLM_F_MULTI, seq: m.seq },
              encodeRtmsg({ family: AF_INET, dstLen: r.dstLen, table: r.table ?? RT_TABLE_MAIN, type: r.type ?? RTN_UNICAST }),
              encodeU32Attr(RTA_TABLE, r.table ?? RT_TABLE_MAIN),
              encodeIpv4Attr(RTA_DST, r.dst),
              ...(r.oif ? [encodeU32Attr(RTA_OIF, r.oif)] : []),
            ),
          ),
        )
      default:
        return this.#ack(m, LINUX_ERRNO.EOPNOTSUPP)
    }
  }

  #newLink(m: NetlinkMessage): void {
    const index = m.payload.readInt32LE(4)
    if (index > 0) {
      const link = this.links.get(index)
      if (!link) return this.#ack(m, LINUX_ERRNO.ENODEV)
      const flags = m.payload.readUInt32LE(8)
      const change = m.payload.readUInt32LE(12)
      link.flags = (link.flags & ~change) | (flags & change)
      const alias = attrString(parseAttrs(m.payload.subarray(16)).get(IFLA_IFALIAS))
      if (alias !== undefined) {
        if (alias === '') delete link.alias
        else link.alias = alias
      }
      return this.#ack(m, 0)
    }
    const attrs = parseAttrs(m.payload.subarray(16))
    const name = attrString(attrs.get(IFLA_IFNAME))!
    const kind = attrString(parseAttrs(attrs.get(IFLA_LINKINFO) ?? Buffer.alloc(0)).get(IFLA_INFO_KIND))
    if (this.linkByName(name)) return this.#ack(m, LINUX_ERRNO.EEXIST)
    if (!kind || !this.#kinds.has(kind)) return this.#ack(m, LINUX_ERRNO.EOPNOTSUPP)
    const group = attrU32(attrs.get(IFLA_GROUP))
    this.addLink(name, kind, group ? { group } : {})
    this.#ack(m, 0)
  }

  #linkMessage(link: FakeLink, seq: number, flags = NLM_F_MULTI): Buffer {
    return encodeMessage(
      { type: RTM_NEWLINK, flags, seq },
      encodeIfinfomsg({ index: link.index, flags: link.flags }),
      encodeStringAttr(IFLA_IFNAME, link.name),
      ...(link.kind ? [encodeNestedAttr(IFLA_LINKINFO, [encodeStringAttr(IFLA_INFO_KIND, link.kind)])] : []),
      ...(link.master ? [encodeU32Attr(IFLA_MASTER, link.master)] : []),
      ...(link.alias ? [encodeStringAttr(IFLA_IFALIAS, link.alias)] : []),
      encodeU32Attr(IFLA_GROUP, link.group ?? 0),
    )
  }

  #dump(m: NetlinkMessage, messages: Buffer[]): void {
    for (let i = 0; i < messages.length; i += this.#dumpChunk) this.#queue.push(Buffer.concat(messages.slice(i, i + this.#dumpChunk)))
    const done = Buffer.alloc(4)
    this.#queue.push(encodeMessage({ type: NLMSG_DONE, flags: NLM_F_MULTI, seq: m.seq }, done))
  }

  /** NLMSG_ERROR as the kernel sends it with NETLINK_CAP_ACK: errno, then the request's header. */
  #ack(m: NetlinkMessage, errno: number): void {
    if (errno === 0 && !(m.flags & NLM_F_ACK)) return
    if ((this.#queuedAcks + 1) * this.#ackTruesize > this.receiveBufferSize) {
      this.#overrun = true // the kernel drops the skb and reports ENOBUFS on the next recv
      return
    }
    const body = Buffer.alloc(4 + NLMSG_HDRLEN)
    body.writeInt32LE(-errno, 0)
    body.writeUInt32LE(NLMSG_HDRLEN + m.payload.length, 4)
    body.writeUInt16LE(m.type, 8)
    body.writeUInt16LE(m.flags, 10)
    body.writeUInt32LE(m.seq, 12)
    body.writeUInt32LE(m.pid, 16)
    this.#queuedAcks++
    this.#queue.push(encodeMessage({ type: NLMSG_ERROR, flags: errno === 0 ? 0 : NLM_F_CAPPED, seq: m.seq }, body))
  }
}

/** `a.b.c.d` sorted numerically, for comparing address lists. */
export function sortIpv4(list: Iterable<string>): string[] {
  return [...list].sort((a, b) => ipv4ToInt(a) - ipv4ToInt(b))
}
