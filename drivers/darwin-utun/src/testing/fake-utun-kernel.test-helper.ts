import type { LengthResult } from '@ngrokd/driver-loopback-alias/darwin'
import { FAKE_ERRNO as E, FakeDarwinKernel, type FakeDarwinKernelOptions, type FakeDescriptor } from '@ngrokd/driver-loopback-alias/darwin/testing'

// Numbers written out here, with their headers, rather than imported from the code under test.
const PF_SYSTEM = 32 // <sys/socket.h>
const SOCK_DGRAM = 2
const SYSPROTO_CONTROL = 2 // <sys/sys_domain.h>
const AF_SYS_CONTROL = 2
const CTLIOCGINFO = 0xc0644e03 // _IOWR('N', 3, struct ctl_info) — <sys/kern_control.h>
const UTUN_OPT_IFNAME = 2 // <net/if_utun.h>
const IFF_UTUN = 0x1 | 0x10 | 0x40 | 0x8000 // IFF_UP | IFF_POINTOPOINT | IFF_RUNNING | IFF_MULTICAST, as if_utun.c sets them
const UTUN_DEFAULT_MTU = 1500 // bsd/net/if_utun.c
const CTL_MAXUNIT = 256 // far below XNU's limit; enough to test running out

/**
 * The macOS kernel of FakeDarwinKernel plus PF_SYSTEM kernel-control sockets and the utun control,
 * as XNU's kern_control.c and if_utun.c behave: CTLIOCGINFO finds a control by name (EINVAL for an
 * empty or unterminated name, ENOENT for an unknown one); connect(2) needs sc_len 32 (EINVAL), a
 * known id (ENOENT), root (EPERM) and a free unit (EBUSY), with unit 0 meaning the lowest free
 * one, and makes `utun<unit - 1>`; getsockopt(UTUN_OPT_IFNAME) answers its name; a write is a
 * packet input on the utun (`input`); closing the socket removes the interface with its addresses
 * and routes. utun0 and utun1 belong to other
 * programs from the start, so ngrokd's first utun is utun2.
 */
export class FakeUtunKernel extends FakeDarwinKernel {
  /** Kernel controls by name; the ids are the kernel's choice. */
  readonly controls = new Map<string, number>([
    ['com.apple.network.statistics', 1],
    ['com.apple.net.utun_control', 0x2a],
  ])
  /** Units in use: the descriptor of the socket holding it, or -1 for another program's. */
  readonly units = new Map<number, number>([
    [1, -1],
    [2, -1],
  ])
  /**
   * What was written to the utun control sockets, in order: packets handed to the utun's input (if_utun.c:
   * utun_ctl_send → utun_pkt_input → ifnet_input), where ip_input delivers those to a local address.
   */
  readonly input: Array<{ name: string; datagram: Buffer }> = []
  readonly #unitOf = new Map<number, number>()

  constructor(options: FakeDarwinKernelOptions = {}) {
    super(options)
  }

  /** The utun a control socket made (by its name), or undefined. */
  utunOf(fd: number): string | undefined {
    const unit = this.#unitOf.get(fd)
    return unit === undefined ? undefined : `utun${unit - 1}`
  }

  /** The control socket holding `utunN`. */
  socketOf(name: string): number | undefined {
    for (const [fd, unit] of this.#unitOf) if (`utun${unit - 1}` === name) return fd
    return undefined
  }

  /** A packet routed into `utunN`: what reading its control socket returns (4-byte AF header + IP packet). */
  routeInto(name: string, ipPacket: Buffer): void {
    const fd = this.socketOf(name)
    if (fd === undefined) throw new Error(`fake: no utun ${name} of ours`)
    this.deliver(fd, Buffer.concat([Buffer.from([0, 0, 0, 2 /* AF_INET */]), ipPacket]))
  }

  override socket(domain: number, type: number, protocol: number): number {
    if (domain !== PF_SYSTEM) return super.socket(domain, type, protocol)
    if (type !== SOCK_DGRAM || protocol !== SYSPROTO_CONTROL) {
      this.record({ call: 'socket', args: [domain, type, protocol] }, -E.EPROTONOSUPPORT)
      throw new Error(`fake: socket(PF_SYSTEM, ${type}, ${protocol}): only SOCK_DGRAM + SYSPROTO_CONTROL is modelled`)
    }
    return this.record({ call: 'socket', args: [domain, type, protocol] }, this.openDescriptor('kctl'))
  }

  protected override handleIoctl(d: FakeDescriptor, request: number, arg: Buffer): number {
    if (d.kind !== 'kctl') return super.handleIoctl(d, request, arg)
    if (request !== CTLIOCGINFO) return E.ENOTTY
    // struct ctl_info: u_int32_t ctl_id @0, char ctl_name[96] @4
    const name = arg.subarray(4, 100)
    const end = name.indexOf(0)
    if (end <= 0) return E.EINVAL // empty, or no NUL within MAX_KCTL_NAME
    const id = this.controls.get(name.toString('latin1', 0, end))
    if (id === undefined) return E.ENOENT
    arg.writeUInt32LE(id, 0)
    return 0
  }

  protected override handleConnect(d: FakeDescriptor, fd: number, address: Buffer): number {
    if (d.kind !== 'kctl') return super.handleConnect(d, fd, address)
    // struct sockaddr_ctl: sc_len @0, sc_family @1, ss_sysaddr @2 (u16), sc_id @4, sc_unit @8, sc_reserved[5] @12
    if (address.length !== 32 || address[0] !== 32) return E.EINVAL
    if (address[1] !== PF_SYSTEM || address.readUInt16LE(2) !== AF_SYS_CONTROL) return E.EINVAL
    if (!address.subarray(12).every((x) => x === 0)) return E.EINVAL // "Reserved, must be set to zero"
    if (this.#unitOf.has(fd)) return E.EISCONN
    const id = address.readUInt32LE(4)
    if (![...this.controls.values()].includes(id)) return E.ENOENT
    if (id !== this.controls.get('com.apple.net.utun_control')) return E.EINVAL // only the utun control is modelled
    if (this.uid !== 0) return E.EPERM // CTL_FLAG_PRIVILEGED
    let unit = address.readUInt32LE(8)
    if (unit === 0) {
      for (unit = 1; unit < CTL_MAXUNIT && this.units.has(unit); unit++);
      if (unit === CTL_MAXUNIT) return E.EBUSY
    } else if (this.units.has(unit)) {
      return E.EBUSY
    }
    this.units.set(unit, fd)
    this.#unitOf.set(fd, unit)
    this.attachInterface({ name: `utun${unit - 1}`, flags: IFF_UTUN, mtu: UTUN_DEFAULT_MTU })
    return 0
  }

  protected override handleGetsockopt(d: FakeDescriptor, fd: number, level: number, name: number, value: Buffer): LengthResult {
    if (d.kind !== 'kctl' || level !== SYSPROTO_CONTROL || name !== UTUN_OPT_IFNAME) return super.handleGetsockopt(d, fd, level, name, value)
    const ifname = this.utunOf(fd)
    if (ifname === undefined) return { errno: E.EINVAL, length: 0 } // "Only can get after connecting"
    if (value.length < ifname.length + 1) return { errno: E.EMSGSIZE, length: 0 }
    value.fill(0)
    value.write(ifname, 0, 'latin1')
    return { errno: 0, length: ifname.length + 1 }
  }

  protected override handleWrite(d: FakeDescriptor, fd: number, data: Buffer): number {
    if (d.kind !== 'kctl') return super.handleWrite(d, fd, data)
    const name = this.utunOf(fd)
    if (name === undefined) return -E.ENOTCONN
    this.input.push({ name, datagram: data })
    return data.length
  }

  protected override onClose(fd: number, d: FakeDescriptor): void {
    super.onClose(fd, d)
    const unit = this.#unitOf.get(fd)
    if (unit === undefined) return
    this.#unitOf.delete(fd)
    this.units.delete(unit)
    this.detachInterface(`utun${unit - 1}`)
  }
}
