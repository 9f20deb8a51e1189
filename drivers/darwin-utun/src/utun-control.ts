import { intToIpv4, ipv4ToInt, NgrokdError } from '@ngrokd/core/driver'
import {
  AF_INET,
  DARWIN_ERRNO,
  darwinError,
  F_GETFL,
  F_SETFD,
  F_SETFL,
  FD_CLOEXEC,
  O_NONBLOCK,
  PF_SYSTEM,
  SOCK_DGRAM,
  type Caller,
  type DarwinSyscalls,
  type ReadableWatch,
} from '@ngrokd/driver-loopback-alias/darwin'
import { CTLIOCGINFO, decodeCtlId, decodeIfname, encodeCtlInfo, encodeSockaddrCtl, ifnameBuffer, SYSPROTO_CONTROL, UTUN_CONTROL_NAME, UTUN_OPT_IFNAME } from './kern-control.js'

/** A connected utun control socket: the interface exists exactly as long as `fd` is open. */
export interface UtunControl {
  fd: number
  /** What the kernel named the interface: `utun<unit - 1>`. */
  name: string
}

/**
 * Makes a utun interface, as wireguard-go's tun_darwin.go does: socket(PF_SYSTEM, SOCK_DGRAM,
 * SYSPROTO_CONTROL), ioctl(CTLIOCGINFO) for com.apple.net.utun_control, connect(2) with a struct
 * sockaddr_ctl (`unit` 0: the next free one), getsockopt(UTUN_OPT_IFNAME) for the name. The socket
 * is made close-on-exec first (macOS's socket(2) takes no SOCK_CLOEXEC): a child process that
 * inherited it would keep the utun alive after ngrokd exits. Then non-blocking, for the packet
 * drain (UtunPacketDrain). Closes the socket on any failure; EBUSY (the unit is taken) is left to the caller.
 */
export function openUtun(sys: DarwinSyscalls, { unit, caller }: { unit: number; caller: Caller }): UtunControl {
  const fd = sys.socket(PF_SYSTEM, SOCK_DGRAM, SYSPROTO_CONTROL)
  try {
    check(caller, sys.fcntl(fd, F_SETFD, FD_CLOEXEC), 'fcntl(F_SETFD, FD_CLOEXEC)', 'on the utun control socket')
    const info = encodeCtlInfo(UTUN_CONTROL_NAME)
    const lookup = sys.ioctl(fd, CTLIOCGINFO, info)
    if (lookup === DARWIN_ERRNO.ENOENT) {
      throw new NgrokdError('NGROKD_ERR_SYSCALL', `${caller.driver}: ioctl(CTLIOCGINFO) ${UTUN_CONTROL_NAME} failed: ENOENT (2)`, {
        hint: 'the kernel has no utun control: darwin-utun needs macOS (use net.driver: auto)',
      })
    }
    if (lookup !== 0) throw darwinError(caller, 'ioctl(CTLIOCGINFO)', lookup, UTUN_CONTROL_NAME)
    const connected = sys.connect(fd, encodeSockaddrCtl({ id: decodeCtlId(info), unit }))
    if (connected !== 0) throw darwinError(caller, 'connect(utun control)', connected, unit === 0 ? '(next free unit)' : `(unit ${unit}, utun${unit - 1})`)
    const name = ifnameBuffer()
    const asked = sys.getsockopt(fd, SYSPROTO_CONTROL, UTUN_OPT_IFNAME, name)
    if (asked.errno !== 0) throw darwinError(caller, 'getsockopt(UTUN_OPT_IFNAME)', asked.errno, '')
    const flags = sys.fcntl(fd, F_GETFL, 0)
    check(caller, flags, 'fcntl(F_GETFL)', 'on the utun control socket')
    check(caller, sys.fcntl(fd, F_SETFL, flags | O_NONBLOCK), 'fcntl(F_SETFL, O_NONBLOCK)', 'on the utun control socket')
    return { fd, name: decodeIfname(name, asked.length) }
  } catch (e) {
    sys.close(fd)
    throw e
  }
}

function check(caller: Caller, result: number, syscall: string, detail: string): void {
  if (result < 0) throw darwinError(caller, syscall, -result, detail)
}

/** What the packet drain did since the utun was made. */
export interface DrainStats {
  /** Packets to one of the utun's own addresses, written back into it (input on the utun: delivered locally). */
  packetsReflected: number
  /** Packets read and dropped: not IPv4, not to an address of the utun, or cut. */
  packetsDropped: number
  /** Packets to reflect that the kernel refused to take back (each one is lost; TCP sends it again). */
  writeErrors: number
  /** Read errors other than EAGAIN/EINTR; the first one stops the drain. */
  readErrors: number
}

/** Why a packet was dropped, for the log. */
export type DropReason = 'not IPv4' | 'not to an address of the utun' | 'cut'

/**
 * The header of every packet read from or written to a utun control socket: the protocol family
 * (<sys/socket.h>: AF_INET 2, AF_INET6 30), a 32-bit integer in network byte order
 * (bsd/net/if_utun.c: UTUN_HEADER_SIZE, without UTUN_FLAGS_ENABLE_PROC_UUID, which ngrokd never sets).
 */
const UTUN_HEADER_BYTES = 4
/** struct ip — <netinet/ip.h> (RFC 791): ip_v/ip_hl @0, ip_len @2 (whole packet, network order), ip_dst @16; 20 bytes without options. */
const IP = { length: 2, dst: 16, minSize: 20 } as const

/** Datagrams read per wake-up at most; the watch fires again while more wait (it is level-triggered). */
const READS_PER_WAKEUP = 64

export interface UtunPacketDrainOptions {
  /** The utun's MTU (set by the driver): the read buffer holds a packet that size plus the header, so none is cut. */
  mtu: number
  /** After each reflected packet. */
  onReflect: (stats: DrainStats) => void
  /** After each dropped packet. */
  onDrop: (stats: DrainStats, length: number, reason: DropReason) => void
  /** The first write error other than EAGAIN/ENOBUFS (later ones are only counted): an errno, or what the call threw. */
  onWriteError: (error: number | Error) => void
  /** A read error: the drain has stopped. */
  onReadError: (errno: number) => void
}

/**
 * Reads every packet the kernel routes into the utun, and writes back into it those addressed to
 * one of the utun's own addresses (`ownAddresses`); anything else is dropped.
 *
 * Why a reflector: each address is added with itself as the point-to-point destination, and
 * XNU's in_ifinit (bsd/netinet/in.c) installs an RTF_HOST route to that destination on the utun
 * itself; bsd/netinet/in_rmx.c only tags it RTF_LOCAL, and nothing in ip_output
 * (bsd/netinet/ip_output.c) sends it to lo0 instead (only ARP does that, for broadcast
 * interfaces). So a local client's packets to these addresses may be handed to the utun, that is,
 * to this socket. A datagram written to the control socket is input on the utun (bsd/net/if_utun.c:
 * utun_ctl_send → utun_pkt_input → ifnet_input), and ip_input (bsd/netinet/ip_input.c) delivers a
 * packet to a local address there: written back unchanged, it reaches the listener (and the
 * replies, to the client's address on the same utun, come back the same way). If the kernel
 * loops such traffic itself, nothing arrives here and this costs nothing; if not, each packet
 * costs a hop through ngrokd. Not run on a real Mac; `net.driver: loopback-alias` (lo0 aliases)
 * needs no reflector.
 *
 * Waits on a readability watch (kqueue through libuv), never a busy loop; reads until EAGAIN, at
 * most READS_PER_WAKEUP per turn of the event loop. A read error other than EAGAIN/EINTR stops
 * the drain (a level-triggered watch on a broken descriptor would spin). A write error never
 * stops it nor throws out of the watch: the packet is lost and counted (EAGAIN/ENOBUFS, a full
 * queue, silently; anything else is reported once).
 */
export class UtunPacketDrain {
  readonly stats: DrainStats = { packetsReflected: 0, packetsDropped: 0, writeErrors: 0, readErrors: 0 }
  readonly #sys: DarwinSyscalls
  readonly #fd: number
  readonly #options: UtunPacketDrainOptions
  readonly #buffer: Buffer
  #ownAddresses: ReadonlySet<number> = new Set()
  #writeErrorReported = false
  #watch: ReadableWatch | undefined

  constructor(sys: DarwinSyscalls, fd: number, options: UtunPacketDrainOptions) {
    this.#sys = sys
    this.#fd = fd
    this.#options = options
    this.#buffer = Buffer.alloc(options.mtu + UTUN_HEADER_BYTES)
    this.#watch = sys.watchReadable(fd, () => this.#drain())
  }

  /** The utun's own IPv4 addresses: packets to these are written back. */
  get ownAddresses(): string[] {
    return [...this.#ownAddresses].map(intToIpv4)
  }

  set ownAddresses(addresses: readonly string[]) {
    this.#ownAddresses = new Set(addresses.map(ipv4ToInt))
  }

  /** Stops watching (the descriptor stays open). Safe to call twice. */
  stop(): void {
    this.#watch?.close()
    this.#watch = undefined
  }

  #drain(): void {
    for (let i = 0; i < READS_PER_WAKEUP && this.#watch; i++) {
      const n = this.#sys.read(this.#fd, this.#buffer)
      if (n === -DARWIN_ERRNO.EAGAIN) return
      if (n === -DARWIN_ERRNO.EINTR) continue
      if (n < 0) {
        this.stats.readErrors++
        this.stop()
        this.#options.onReadError(-n)
        return
      }
      const datagram = this.#buffer.subarray(0, n)
      const drop = this.#dropReason(datagram)
      if (drop === undefined) this.#reflect(datagram)
      else {
        this.stats.packetsDropped++
        this.#options.onDrop(this.stats, n, drop)
      }
    }
  }

  /** Undefined for a whole IPv4 packet to one of the utun's own addresses: one to write back. */
  #dropReason(datagram: Buffer): DropReason | undefined {
    if (datagram.length < UTUN_HEADER_BYTES + IP.minSize || datagram.readUInt32BE(0) !== AF_INET || datagram[UTUN_HEADER_BYTES]! >> 4 !== 4) return 'not IPv4'
    // shorter than its header says: the MTU was raised behind ngrokd's back and read(2) cut it
    if (datagram.readUInt16BE(UTUN_HEADER_BYTES + IP.length) > datagram.length - UTUN_HEADER_BYTES) return 'cut'
    return this.#ownAddresses.has(datagram.readUInt32BE(UTUN_HEADER_BYTES + IP.dst)) ? undefined : 'not to an address of the utun'
  }

  #reflect(datagram: Buffer): void {
    let result: number | Error
    try {
      result = this.#sys.write(this.#fd, datagram)
    } catch (e) {
      result = e instanceof Error ? e : new Error(String(e))
    }
    if (typeof result === 'number' && result >= 0) {
      this.stats.packetsReflected++
      this.#options.onReflect(this.stats)
      return
    }
    this.stats.writeErrors++
    // a full queue loses the packet as a full NIC queue would: no report, TCP sends it again
    if (result === -DARWIN_ERRNO.EAGAIN || result === -DARWIN_ERRNO.ENOBUFS || this.#writeErrorReported) return
    this.#writeErrorReported = true
    this.#options.onWriteError(typeof result === 'number' ? -result : result)
  }
}
