import { NgrokdError } from '@ngrokd/core/driver'
import {
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
 * drain. Closes the socket on any failure; EBUSY (the unit is taken) is left to the caller.
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

/** What the drain saw: datagrams read and dropped, and the last read error (other than EAGAIN). */
export interface DrainStats {
  packetsDropped: number
  readErrors: number
}

/** Datagrams read per wake-up at most; the watch fires again while more wait (it is level-triggered). */
const READS_PER_WAKEUP = 64
/** Only the count matters: a datagram longer than this is cut, and the rest discarded by read(2). */
const DRAIN_BUFFER_BYTES = 2048

/**
 * Reads and drops every packet the kernel routes into the utun. Nothing should arrive
 * (connections to the utun's own addresses stay on the machine), but an unread queue would only
 * fill up. Waits on a readability watch (kqueue through libuv), never a busy loop; reads until
 * EAGAIN, at most READS_PER_WAKEUP per turn of the event loop. A read error other than
 * EAGAIN/EINTR stops the drain (a level-triggered watch on a broken descriptor would spin).
 */
export class UtunPacketDrain {
  readonly stats: DrainStats = { packetsDropped: 0, readErrors: 0 }
  readonly #sys: DarwinSyscalls
  readonly #fd: number
  readonly #onDrop: (stats: DrainStats, length: number) => void
  readonly #onError: (errno: number) => void
  readonly #buffer = Buffer.alloc(DRAIN_BUFFER_BYTES)
  #watch: ReadableWatch | undefined

  constructor(sys: DarwinSyscalls, fd: number, { onDrop, onError }: { onDrop: (stats: DrainStats, length: number) => void; onError: (errno: number) => void }) {
    this.#sys = sys
    this.#fd = fd
    this.#onDrop = onDrop
    this.#onError = onError
    this.#watch = sys.watchReadable(fd, () => this.#drain())
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
        this.#onError(-n)
        return
      }
      this.stats.packetsDropped++
      this.#onDrop(this.stats, n)
    }
  }
}
