import { SyscallError } from '@ngrokd/core/driver'
import type { DarwinSyscalls, IfaddrsEntry, LengthResult, ReadableWatch } from '../darwin-syscalls.js'

// The fake decodes every argument with its own offsets and numbers (written out here, with the
// header each comes from), never with the encoders under test: a test that passes means the code
// sent exactly what the headers lay out. Where XNU would accept a stray byte (sin_zero, padding), the
// fake answers EINVAL: ngrokd never sends one, so one is a bug.

const AF_INET = 2 // <sys/socket.h>
const AF_LINK = 18 // <sys/socket.h>
const AF_INET6 = 30 // <sys/socket.h>
const SOCK_DGRAM = 2 // <sys/socket.h>
const IFF_UP = 0x1 // <net/if.h>
const IFF_BROADCAST = 0x2
const IFF_LOOPBACK = 0x8
const IFF_POINTOPOINT = 0x10
const IFF_RUNNING = 0x40
const IFF_MULTICAST = 0x8000
const SIOCDIFADDR = 0x80206919 // _IOW('i', 25, struct ifreq) — <sys/sockio.h>
const SIOCAIFADDR = 0x8040691a // _IOW('i', 26, struct ifaliasreq)
const SIOCGIFMTU = 0xc0206933 // _IOWR('i', 51, struct ifreq)
const SIOCSIFMTU = 0x80206934 // _IOW('i', 52, struct ifreq)
const IF_MINMTU = 72 // <net/if_var.h>
const IF_MAXMTU = 65535
const F_GETFD = 1 // <sys/fcntl.h>
const F_SETFD = 2
const F_GETFL = 3
const F_SETFL = 4
const O_NONBLOCK = 0x4
const CTL_NET = 4 // <sys/sysctl.h>
const PF_ROUTE = 17 // <sys/socket.h>
const NET_RT_DUMP = 1
const RTM_VERSION = 5 // <net/route.h>
const RTM_GET = 4
const RT_MSGHDR_SIZE = 92 // sizeof(struct rt_msghdr), 64-bit macOS
const RTF_UP = 0x1 // <net/route.h>
const RTF_GATEWAY = 0x2
const RTF_HOST = 0x4
const RTF_STATIC = 0x800
const RTF_CLONING = 0x100
const RTF_LOCAL = 0x200000

/** <sys/errno.h> values the fake answers with. */
export const FAKE_ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ENXIO: 6,
  EBADF: 9,
  ENOMEM: 12,
  EBUSY: 16,
  EEXIST: 17,
  EINVAL: 22,
  ENOTTY: 25,
  EAGAIN: 35,
  EDESTADDRREQ: 39,
  EMSGSIZE: 40,
  EPROTOTYPE: 41,
  ENOPROTOOPT: 42,
  EPROTONOSUPPORT: 43,
  EAFNOSUPPORT: 47,
  EADDRNOTAVAIL: 49,
  ENOBUFS: 55,
  EISCONN: 56,
  ENOTCONN: 57,
  EOPNOTSUPP: 102,
} as const
const E = FAKE_ERRNO

/** One system call as the fake saw it; `hex` holds the bytes of a buffer argument as passed. */
export interface FakeCall {
  call: 'socket' | 'close' | 'ioctl' | 'getifaddrs' | 'connect' | 'getsockopt' | 'sysctl' | 'fcntl' | 'read' | 'write' | 'watchReadable'
  fd?: number
  request?: number
  hex?: string
  /** Other arguments (socket triple, sockopt level/name, sysctl mib, fcntl cmd/arg). */
  args?: number[]
  /** What the kernel answered: 0, a value, or the negated errno. */
  result: number
}

export interface FakeAddress {
  mask: string
  /** The point-to-point destination, or the broadcast address; undefined when none. */
  dst?: string
}

export interface FakeInterfaceState {
  name: string
  index: number
  flags: number
  mtu: number
  addresses: Map<string, FakeAddress>
}

export interface FakeRoute {
  /** Destination network (or host) address. */
  dst: string
  /** Prefix length; 32 for a host route (RTF_HOST). */
  prefix: number
  /** Interface index the route goes out of. */
  index: number
  flags: number
  /** The next hop of an RTF_GATEWAY route; link routes name their interface instead. */
  gateway?: string
}

/** A descriptor: what kind of socket, and the state the kernel keeps for it. */
export interface FakeDescriptor {
  kind: string
  nonBlocking: boolean
  closeOnExec: boolean
  /** Datagrams waiting to be read. */
  queue: Buffer[]
  watchers: Set<() => void>
}

export interface FakeDarwinKernelOptions {
  /** Effective uid: changes need 0 (EPERM otherwise), as on macOS. Default 0. */
  uid?: number
}

/**
 * A strict stand-in for the part of the macOS kernel ngrokd talks to, for tests on any OS:
 * interfaces with their IPv4 addresses (SIOCAIFADDR/SIOCDIFADDR/SIOCSIFMTU, with XNU's answers:
 * ENXIO, EPERM, EDESTADDRREQ, EADDRNOTAVAIL), getifaddrs, the routing table and its sysctl dump
 * (addresses add host routes as XNU's in_ifinit does), fcntl, non-blocking reads, writes and
 * readability. Every call is recorded with the exact bytes passed (`calls`).
 *
 * It starts as a Mac does: lo0 (127.0.0.1/8), en0 (192.168.64.2/24, default route via
 * 192.168.64.1) and two utun interfaces other software made (utun0, utun1: IPv6 only).
 * Subclasses add socket kinds (darwin-utun's fake adds PF_SYSTEM control sockets).
 */
export class FakeDarwinKernel implements DarwinSyscalls {
  readonly calls: FakeCall[] = []
  readonly interfaces = new Map<string, FakeInterfaceState>()
  readonly routes: FakeRoute[] = []
  uid: number
  /** Set when something deleted an address the machine had before (127.0.0.1, en0's): a driver must never. */
  deletedSystemAddress = false
  /** Times a readability watch fired 1000 times in a row without its datagrams being read. */
  starvedWatches = 0
  /** Routes to add right after the next size query of a route dump: the table grew in between. */
  growRoutesAfterSizeQuery: FakeRoute[] = []
  /** Errnos the next writes answer, one each, before the descriptor sees them (e.g. EAGAIN, ENOBUFS: a full queue). */
  readonly writeErrors: number[] = []
  protected readonly descriptors = new Map<number, FakeDescriptor>()
  readonly #systemAddresses = new Set<string>()
  #nextFd = 3
  #nextIndex = 1

  constructor(options: FakeDarwinKernelOptions = {}) {
    this.uid = options.uid ?? 0
    const lo0 = this.attachInterface({ name: 'lo0', flags: IFF_UP | IFF_LOOPBACK | IFF_RUNNING | IFF_MULTICAST, mtu: 16384 })
    this.#nextIndex = 6
    const en0 = this.attachInterface({ name: 'en0', flags: IFF_UP | IFF_BROADCAST | IFF_RUNNING | 0x800 /* IFF_SIMPLEX */ | IFF_MULTICAST, mtu: 1500 })
    this.attachInterface({ name: 'utun0', flags: IFF_UP | IFF_POINTOPOINT | IFF_RUNNING | IFF_MULTICAST, mtu: 1380 })
    this.attachInterface({ name: 'utun1', flags: IFF_UP | IFF_POINTOPOINT | IFF_RUNNING | IFF_MULTICAST, mtu: 2000 })
    this.#assign(lo0, '127.0.0.1', { mask: '255.0.0.0', dst: '127.0.0.1' })
    this.#assign(en0, '192.168.64.2', { mask: '255.255.255.0', dst: '192.168.64.255' })
    this.#systemAddresses.add('lo0 127.0.0.1').add('en0 192.168.64.2')
    this.routes.push(
      { dst: '0.0.0.0', prefix: 0, index: en0.index, flags: RTF_UP | RTF_GATEWAY | RTF_STATIC, gateway: '192.168.64.1' },
      { dst: '127.0.0.0', prefix: 8, index: lo0.index, flags: RTF_UP | RTF_STATIC | RTF_CLONING },
      { dst: '127.0.0.1', prefix: 32, index: lo0.index, flags: RTF_UP | RTF_HOST },
      { dst: '192.168.64.0', prefix: 24, index: en0.index, flags: RTF_UP | RTF_CLONING },
      { dst: '192.168.64.2', prefix: 32, index: lo0.index, flags: RTF_UP | RTF_HOST | RTF_LOCAL | 0x20000 /* RTF_WASCLONED */ },
    )
  }

  // ---- state for tests --------------------------------------------------------------------

  /** Descriptors still open. */
  get openFds(): Set<number> {
    return new Set(this.descriptors.keys())
  }

  /** The ioctls seen, with their argument bytes as passed. */
  get ioctls(): Array<{ fd: number; request: number; hex: string }> {
    return this.calls.filter((c) => c.call === 'ioctl').map((c) => ({ fd: c.fd!, request: c.request!, hex: c.hex! }))
  }

  /** Readability watches not yet closed. */
  get activeWatches(): number {
    let n = 0
    for (const d of this.descriptors.values()) n += d.watchers.size
    return n
  }

  /** The IPv4 addresses of an interface, sorted. */
  addressesOf(ifname: string): string[] {
    return [...(this.interfaces.get(ifname)?.addresses.keys() ?? [])].sort()
  }

  /** Adds an address as SIOCAIFADDR would (test setup, e.g. a leftover alias). */
  addAddress(ifname: string, address: string, info: FakeAddress = { mask: '255.255.255.255' }): void {
    const iface = this.interfaces.get(ifname)
    if (!iface) throw new Error(`fake: no interface ${ifname}`)
    this.#assign(iface, address, info)
  }

  /** A new interface with the next free index. */
  attachInterface({ name, flags, mtu }: { name: string; flags: number; mtu: number }): FakeInterfaceState {
    if (this.interfaces.has(name)) throw new Error(`fake: interface ${name} exists`)
    const iface: FakeInterfaceState = { name, index: this.#nextIndex++, flags, mtu, addresses: new Map() }
    this.interfaces.set(name, iface)
    return iface
  }

  /** Removes an interface with its addresses and every route through it, as if_detach does. */
  detachInterface(name: string): void {
    const iface = this.interfaces.get(name)
    if (!iface) return
    this.interfaces.delete(name)
    for (let i = this.routes.length - 1; i >= 0; i--) if (this.routes[i]!.index === iface.index) this.routes.splice(i, 1)
  }

  /** Queues a datagram for reading on `fd` and wakes its watchers (as a packet routed into a utun would). */
  deliver(fd: number, datagram: Buffer): void {
    const d = this.descriptors.get(fd)
    if (!d) throw new Error(`fake: deliver to a closed descriptor ${fd}`)
    d.queue.push(Buffer.from(datagram))
    this.#wake(d)
  }

  // ---- the system calls ---------------------------------------------------------------------

  socket(domain: number, type: number, protocol: number): number {
    if (domain === AF_INET && type === SOCK_DGRAM && protocol === 0) return this.record({ call: 'socket', args: [domain, type, protocol] }, this.openDescriptor('inet-dgram'))
    const errno = domain === AF_INET ? E.EPROTONOSUPPORT : E.EAFNOSUPPORT
    this.record({ call: 'socket', args: [domain, type, protocol] }, -errno)
    throw new SyscallError('socket', errno, errno === E.EAFNOSUPPORT ? 'EAFNOSUPPORT' : 'EPROTONOSUPPORT')
  }

  close(fd: number): void {
    const d = this.descriptors.get(fd)
    this.record({ call: 'close', fd }, d ? 0 : -E.EBADF)
    if (!d) throw new Error(`fake: close(${fd}) of a descriptor that is not open`) // a double close is a bug in the caller
    if (d.watchers.size > 0) throw new Error(`fake: close(${fd}) while a readability watch is still active (close the watch first)`)
    this.descriptors.delete(fd)
    this.onClose(fd, d)
  }

  ioctl(fd: number, request: number, arg: Buffer): number {
    const call: FakeCall = { call: 'ioctl', fd, request, hex: arg.toString('hex'), result: 0 }
    const d = this.descriptors.get(fd)
    if (!d) return this.record(call, E.EBADF)
    // IOCPARM_LEN(request) — <sys/ioccom.h>: the kernel copies exactly that many bytes in and out.
    if (arg.length !== ((request >>> 16) & 0x1fff)) return this.record(call, E.EINVAL)
    return this.record(call, this.handleIoctl(d, request, arg))
  }

  getifaddrs(): IfaddrsEntry[] {
    this.record({ call: 'getifaddrs' }, 0)
    const entries: IfaddrsEntry[] = []
    for (const iface of this.interfaces.values()) {
      const name = Buffer.from(iface.name, 'latin1')
      // sockaddr_dl — <net/if_dl.h>: len 20, AF_LINK, index (u_short), type, nlen, alen 0, slen 0, name
      const dl = Buffer.alloc(20)
      dl.writeUInt8(20, 0)
      dl.writeUInt8(AF_LINK, 1)
      dl.writeUInt16LE(iface.index, 2)
      dl.writeUInt8(iface.flags & IFF_LOOPBACK ? 24 : iface.flags & IFF_POINTOPOINT ? 1 : 6, 4) // IFT_LOOP, IFT_OTHER (utun: if_utun.c), IFT_ETHER — <net/if_types.h>
      dl.writeUInt8(name.length, 5)
      name.copy(dl, 8)
      entries.push({ name: iface.name, flags: iface.flags, addr: dl, netmask: null, dstaddr: null })
      if (iface.name.startsWith('lo') || iface.name.startsWith('utun')) {
        // an IPv6 address comes first on a real Mac: sockaddr_in6, len 28, AF_INET6
        entries.push({ name: iface.name, flags: iface.flags, addr: Buffer.from([28, AF_INET6, ...Array(26).fill(0)]), netmask: null, dstaddr: null })
      }
      for (const [address, { mask, dst }] of iface.addresses) {
        entries.push({ name: iface.name, flags: iface.flags, addr: sockaddrIn(address), netmask: sockaddrIn(mask), dstaddr: dst === undefined ? null : sockaddrIn(dst) })
      }
    }
    return entries
  }

  connect(fd: number, address: Buffer): number {
    const d = this.descriptors.get(fd)
    const call: FakeCall = { call: 'connect', fd, hex: address.toString('hex'), result: 0 }
    if (!d) return this.record(call, E.EBADF)
    return this.record(call, this.handleConnect(d, fd, address))
  }

  getsockopt(fd: number, level: number, name: number, value: Buffer): LengthResult {
    const d = this.descriptors.get(fd)
    const call: FakeCall = { call: 'getsockopt', fd, args: [level, name, value.length], result: 0 }
    const r = d ? this.handleGetsockopt(d, fd, level, name, value) : { errno: E.EBADF, length: 0 }
    this.record(call, r.errno === 0 ? r.length : -r.errno)
    return r
  }

  /** Only `{ CTL_NET, PF_ROUTE, 0, AF_INET, NET_RT_DUMP, 0 }` is known (ENOENT otherwise, ENOMEM when `out` is short). */
  sysctl(mib: readonly number[], out: Buffer | null): LengthResult {
    const call: FakeCall = { call: 'sysctl', args: [...mib, out?.length ?? -1], result: 0 }
    const known = [CTL_NET, PF_ROUTE, 0, AF_INET, NET_RT_DUMP, 0]
    if (mib.length !== known.length || mib.some((v, i) => v !== known[i])) {
      this.record(call, -E.ENOENT)
      return { errno: E.ENOENT, length: 0 }
    }
    const dump = this.routeDump()
    if (out === null) {
      this.record(call, dump.length)
      const grown = this.growRoutesAfterSizeQuery.splice(0)
      this.routes.push(...grown)
      return { errno: 0, length: dump.length }
    }
    if (out.length < dump.length) {
      this.record(call, -E.ENOMEM)
      return { errno: E.ENOMEM, length: out.length }
    }
    dump.copy(out)
    this.record(call, dump.length)
    return { errno: 0, length: dump.length }
  }

  fcntl(fd: number, cmd: number, arg: number): number {
    const call: FakeCall = { call: 'fcntl', fd, args: [cmd, arg], result: 0 }
    const d = this.descriptors.get(fd)
    if (!d) return this.record(call, -E.EBADF)
    if (cmd === F_GETFL) return this.record(call, 0x2 /* O_RDWR */ | (d.nonBlocking ? O_NONBLOCK : 0))
    if (cmd === F_SETFL) {
      if ((arg & ~(O_NONBLOCK | 0x3)) !== 0) return this.record(call, -E.EINVAL) // only O_NONBLOCK is ever changed
      d.nonBlocking = (arg & O_NONBLOCK) !== 0
      return this.record(call, 0)
    }
    if (cmd === F_GETFD) return this.record(call, d.closeOnExec ? 1 : 0)
    if (cmd === F_SETFD) {
      d.closeOnExec = (arg & 1) !== 0 // FD_CLOEXEC
      return this.record(call, 0)
    }
    return this.record(call, -E.EINVAL)
  }

  read(fd: number, into: Buffer): number {
    const call: FakeCall = { call: 'read', fd, args: [into.length], result: 0 }
    const d = this.descriptors.get(fd)
    if (!d) return this.record(call, -E.EBADF)
    const datagram = d.queue.shift()
    if (!datagram) {
      if (!d.nonBlocking) throw new Error(`fake: read(${fd}) would block the event loop (the descriptor is blocking and empty)`)
      return this.record(call, -E.EAGAIN)
    }
    return this.record(call, datagram.copy(into, 0, 0, Math.min(datagram.length, into.length))) // the rest of a datagram is discarded
  }

  /** write(2): recorded byte for byte (`hex`); what the descriptor does with it is its kind's (handleWrite). */
  write(fd: number, from: Buffer): number {
    const call: FakeCall = { call: 'write', fd, hex: from.toString('hex'), result: 0 }
    const d = this.descriptors.get(fd)
    if (!d) return this.record(call, -E.EBADF)
    const errno = this.writeErrors.shift()
    if (errno !== undefined) return this.record(call, -errno)
    return this.record(call, this.handleWrite(d, fd, Buffer.from(from)))
  }

  /** Level-triggered, like a poll(2) handle: fires (from the event loop) while datagrams wait. */
  watchReadable(fd: number, onReadable: () => void): ReadableWatch {
    const d = this.descriptors.get(fd)
    this.record({ call: 'watchReadable', fd }, d ? 0 : -E.EBADF)
    if (!d) throw new Error(`fake: watchReadable(${fd}) of a descriptor that is not open`)
    const watcher = () => onReadable()
    d.watchers.add(watcher)
    if (d.queue.length > 0) this.#wake(d)
    return {
      close: () => {
        d.watchers.delete(watcher)
      },
    }
  }

  // ---- for subclasses -----------------------------------------------------------------------

  protected openDescriptor(kind: string): number {
    const fd = this.#nextFd++
    this.descriptors.set(fd, { kind, nonBlocking: false, closeOnExec: false, queue: [], watchers: new Set() })
    return fd
  }

  protected record(call: Omit<FakeCall, 'result'> & { result?: number }, result: number): number {
    this.calls.push({ ...call, result })
    return result
  }

  /** Called after a descriptor is closed. */
  protected onClose(_fd: number, _descriptor: FakeDescriptor): void {}

  protected handleIoctl(d: FakeDescriptor, request: number, arg: Buffer): number {
    if (d.kind !== 'inet-dgram') return E.ENOTTY
    const named = this.#interfaceNamed(arg)
    if (typeof named === 'number') return named
    const iface = named
    switch (request) {
      case SIOCAIFADDR:
        return this.#aifaddr(iface, arg)
      case SIOCDIFADDR:
        return this.#difaddr(iface, arg)
      case SIOCSIFMTU: {
        if (this.uid !== 0) return E.EPERM
        if (!arg.subarray(20).every((x) => x === 0)) return E.EINVAL // the rest of the ifreq union
        const mtu = arg.readInt32LE(16)
        if (mtu < IF_MINMTU || mtu > IF_MAXMTU) return E.EINVAL
        iface.mtu = mtu
        return 0
      }
      case SIOCGIFMTU:
        arg.writeInt32LE(iface.mtu, 16)
        return 0
      default:
        return E.ENOTTY
    }
  }

  protected handleConnect(_d: FakeDescriptor, _fd: number, _address: Buffer): number {
    return E.EOPNOTSUPP
  }

  /** Bytes written, or the negated errno. An AF_INET datagram socket is never connected here: EDESTADDRREQ, as XNU answers. */
  protected handleWrite(_d: FakeDescriptor, _fd: number, _data: Buffer): number {
    return -E.EDESTADDRREQ
  }

  protected handleGetsockopt(_d: FakeDescriptor, _fd: number, _level: number, _name: number, _value: Buffer): LengthResult {
    return { errno: E.ENOPROTOOPT, length: 0 }
  }

  /** The routing table as sysctl NET_RT_DUMP returns it: one RTM_GET message per IPv4 route. */
  protected routeDump(): Buffer {
    const messages = this.routes.map((r) => {
      const sockaddrs: Buffer[] = [sockaddrIn(r.dst)] // RTA_DST
      let addrs = 0x1
      const iface = [...this.interfaces.values()].find((i) => i.index === r.index)
      if (r.gateway !== undefined) sockaddrs.push(sockaddrIn(r.gateway))
      else {
        // a link gateway: sockaddr_dl of the interface, name and address left out ("link#N")
        const dl = Buffer.alloc(20)
        dl.writeUInt8(20, 0)
        dl.writeUInt8(AF_LINK, 1)
        dl.writeUInt16LE(r.index, 2)
        sockaddrs.push(dl)
      }
      addrs |= 0x2 // RTA_GATEWAY
      if (!(r.flags & RTF_HOST)) {
        sockaddrs.push(trimmedMask(r.prefix)) // RTA_NETMASK
        addrs |= 0x4
      }
      const ifa = iface && [...iface.addresses.keys()][0]
      if (ifa !== undefined) {
        sockaddrs.push(sockaddrIn(ifa)) // RTA_IFA
        addrs |= 0x20
      }
      // each sockaddr takes ROUNDUP32(sa_len) bytes, 4 when sa_len is 0 — bsd/net/rtsock.c
      const body = Buffer.concat(sockaddrs.map((s) => Buffer.concat([s, Buffer.alloc((s.length === 0 ? 4 : ((s.length + 3) & ~3)) - s.length)])))
      const head = Buffer.alloc(RT_MSGHDR_SIZE)
      head.writeUInt16LE(RT_MSGHDR_SIZE + body.length, 0) // rtm_msglen
      head.writeUInt8(RTM_VERSION, 2)
      head.writeUInt8(RTM_GET, 3)
      head.writeUInt16LE(r.index, 4) // rtm_index
      head.writeInt32LE(r.flags, 8) // rtm_flags
      head.writeInt32LE(addrs, 12) // rtm_addrs
      return Buffer.concat([head, body])
    })
    return Buffer.concat(messages)
  }

  // ---- internals ----------------------------------------------------------------------------

  #wake(d: FakeDescriptor, round = 0): void {
    if (d.watchers.size === 0) return
    setImmediate(() => {
      if (d.queue.length === 0) return
      for (const watcher of [...d.watchers]) watcher()
      // level-triggered: still readable after the callbacks ran → fire again on a later turn, but a
      // watcher that never reads must not spin the fake forever
      if (d.queue.length > 0 && d.watchers.size > 0) {
        if (round < 1000) this.#wake(d, round + 1)
        else this.starvedWatches++
      }
    })
  }

  /** The interface named by the first 16 bytes (NUL-terminated, NUL-padded), or ENXIO / EINVAL. */
  #interfaceNamed(arg: Buffer): FakeInterfaceState | number {
    const raw = arg.subarray(0, 16)
    const end = raw.indexOf(0)
    if (end <= 0 || !raw.subarray(end).every((x) => x === 0)) return E.EINVAL
    return this.interfaces.get(raw.toString('latin1', 0, end)) ?? E.ENXIO
  }

  /** SIOCAIFADDR with struct ifaliasreq / in_aliasreq: name, addr @16, broadaddr/dstaddr @32, mask @48. */
  #aifaddr(iface: FakeInterfaceState, b: Buffer): number {
    if (this.uid !== 0) return E.EPERM // ifioctl: proc_suser()
    const address = readSockaddrIn(b, 16)
    const dst = b.subarray(32, 48).every((x) => x === 0) ? undefined : readSockaddrIn(b, 32)
    const mask = readSockaddrIn(b, 48)
    if (address == null || dst === null || mask == null) return E.EINVAL
    if (mask !== '255.255.255.255') return E.EINVAL // ngrokd adds /32 host addresses only
    if (iface.flags & IFF_POINTOPOINT) {
      if (dst === undefined || dst === '0.0.0.0') return E.EDESTADDRREQ // in.c: a point-to-point address needs its destination
    } else if (dst !== undefined) {
      return E.EINVAL // ngrokd never sets a broadcast address
    }
    this.#assign(iface, address, { mask, ...(dst === undefined ? {} : { dst }) })
    return 0 // an existing address is updated in place: no error, as in XNU
  }

  /** SIOCDIFADDR with struct ifreq: name, ifr_addr @16. */
  #difaddr(iface: FakeInterfaceState, b: Buffer): number {
    if (this.uid !== 0) return E.EPERM
    const address = readSockaddrIn(b, 16)
    if (address == null) return E.EINVAL
    const found = iface.addresses.get(address)
    if (!found) return E.EADDRNOTAVAIL
    if (this.#systemAddresses.has(`${iface.name} ${address}`)) this.deletedSystemAddress = true
    iface.addresses.delete(address)
    const routeTo = iface.flags & IFF_POINTOPOINT ? found.dst : address
    const stillUsed = [...iface.addresses.values()].some((a) => a.dst === routeTo)
    if (!stillUsed) {
      const i = this.routes.findIndex((r) => r.index === iface.index && r.prefix === 32 && r.dst === routeTo)
      if (i >= 0) this.routes.splice(i, 1)
    }
    return 0
  }

  /** The address and the route XNU's in_ifinit adds with it: a host route to the destination (point-to-point) or to itself (loopback). */
  #assign(iface: FakeInterfaceState, address: string, info: FakeAddress): void {
    iface.addresses.set(address, info)
    const hostRoute = iface.flags & IFF_POINTOPOINT ? info.dst : iface.flags & IFF_LOOPBACK ? address : undefined
    if (hostRoute !== undefined && !this.routes.some((r) => r.index === iface.index && r.prefix === 32 && r.dst === hostRoute)) {
      this.routes.push({ dst: hostRoute, prefix: 32, index: iface.index, flags: RTF_UP | RTF_HOST })
    }
  }
}

function sockaddrIn(address: string): Buffer {
  return Buffer.from([16, AF_INET, 0, 0, ...address.split('.').map(Number), 0, 0, 0, 0, 0, 0, 0, 0])
}

/** A netmask as the routing table stores it: trailing zero bytes trimmed (sa_len 0 for /0). */
function trimmedMask(prefix: number): Buffer {
  if (prefix === 0) return Buffer.alloc(0)
  const full = Buffer.alloc(8)
  full.writeUInt32BE(prefix === 32 ? 0xffffffff : (0xffffffff << (32 - prefix)) >>> 0, 4)
  let len = 8
  while (len > 4 && full[len - 1] === 0) len--
  const trimmed = full.subarray(0, len)
  trimmed[0] = len
  trimmed[1] = 0xff // masks carry no family in the radix tree; macOS reports 0xff or 0
  return trimmed
}

/**
 * A sockaddr_in at `at`: sin_len 16, AF_INET, port 0, sin_zero zero → the address; all zero →
 * undefined; anything else → null (EINVAL).
 */
function readSockaddrIn(b: Buffer, at: number): string | undefined | null {
  const s = b.subarray(at, at + 16)
  if (s.every((x) => x === 0)) return undefined
  if (s[0] !== 16 || s[1] !== AF_INET || s[2] !== 0 || s[3] !== 0 || !s.subarray(8).every((x) => x === 0)) return null
  return [...s.subarray(4, 8)].join('.')
}
