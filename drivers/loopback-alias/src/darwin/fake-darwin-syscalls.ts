import type { DarwinSyscalls, IfaddrsEntry } from './darwin-syscalls.js'

/** One ioctl as the fake saw it. */
export interface FakeIoctlCall {
  fd: number
  request: number
  /** The argument's bytes, hex. */
  hex: string
}

export interface FakeDarwinSyscallsOptions {
  /** Effective uid: SIOCAIFADDR/SIOCDIFADDR fail with EPERM unless 0, as on macOS. */
  uid?: number
}

/**
 * A strict stand-in for the macOS kernel's lo0 ioctls and getifaddrs, for tests on any OS. It
 * decodes every argument with its own offsets (not the driver's encoders) and answers EINVAL to
 * any byte out of place, so a passing test means the driver sent exactly what <net/if.h> lays out.
 */
export class FakeDarwinSyscalls implements DarwinSyscalls {
  /** lo0's IPv4 addresses; 127.0.0.1 is the system's own. */
  readonly lo0 = new Set<string>(['127.0.0.1'])
  readonly ioctls: FakeIoctlCall[] = []
  readonly openFds = new Set<number>()
  /** Set when something tried to delete 127.0.0.1 (a driver must never). */
  deletedSystemAddress = false
  uid: number
  #nextFd = 3

  constructor(options: FakeDarwinSyscallsOptions = {}) {
    this.uid = options.uid ?? 0
  }

  socket(domain: number, type: number, protocol: number): number {
    if (domain !== 2 || type !== 2 || protocol !== 0) throw new Error(`fake: unexpected socket(${domain}, ${type}, ${protocol}); want AF_INET, SOCK_DGRAM, 0`)
    const fd = this.#nextFd++
    this.openFds.add(fd)
    return fd
  }

  close(fd: number): void {
    if (!this.openFds.delete(fd)) throw new Error(`fake: close(${fd}) of a descriptor that is not open`)
  }

  ioctl(fd: number, request: number, arg: Buffer): number {
    this.ioctls.push({ fd, request, hex: arg.toString('hex') })
    if (!this.openFds.has(fd)) return 9 // EBADF
    if (request === 0x8040691a) return this.#add(arg) // SIOCAIFADDR
    if (request === 0x80206919) return this.#delete(arg) // SIOCDIFADDR
    return 25 // ENOTTY
  }

  getifaddrs(): IfaddrsEntry[] {
    const inet = (a: string): Buffer => Buffer.from([16, 2, 0, 0, ...a.split('.').map(Number), 0, 0, 0, 0, 0, 0, 0, 0])
    const lo0 = 0x8049 // IFF_UP | IFF_LOOPBACK | IFF_RUNNING | IFF_MULTICAST
    const entries: IfaddrsEntry[] = [
      // AF_LINK (sockaddr_dl: len 20, family 18, index 1, type IFT_LOOP, nlen 3, "lo0") and AF_INET6 ::1
      // (sockaddr_in6: len 28, family 30) come first on a real Mac
      { name: 'lo0', flags: lo0, addr: Buffer.from([20, 18, 1, 0, 24, 3, 0, 0, 0x6c, 0x6f, 0x30, 0, 0, 0, 0, 0, 0, 0, 0, 0]), netmask: null },
      { name: 'lo0', flags: lo0, addr: Buffer.from([28, 30, 0, 0, 0, 0, 0, 0, ...Array(15).fill(0), 1, 0, 0, 0, 0]), netmask: null },
      { name: 'en0', flags: 0x8863, addr: inet('192.168.64.2'), netmask: inet('255.255.255.0') },
      { name: 'utun3', flags: 0x8051, addr: null, netmask: null },
    ]
    for (const a of this.lo0) entries.push({ name: 'lo0', flags: lo0, addr: inet(a), netmask: inet(a === '127.0.0.1' ? '255.0.0.0' : '255.255.255.255') })
    return entries
  }

  #add(b: Buffer): number {
    if (b.length !== 64) return 22 // sizeof(struct ifaliasreq)
    if (!this.#isLo0(b)) return 6 // ENXIO: no such interface
    const address = this.#sockaddrIn(b, 16)
    const broadZero = b.subarray(32, 48).every((x) => x === 0)
    const mask = this.#sockaddrIn(b, 48)
    if (address === undefined || !broadZero || mask !== '255.255.255.255') return 22
    if (this.uid !== 0) return 1 // EPERM
    this.lo0.add(address) // an existing alias is updated in place, no error
    return 0
  }

  #delete(b: Buffer): number {
    if (b.length !== 32) return 22 // sizeof(struct ifreq)
    if (!this.#isLo0(b)) return 6
    const address = this.#sockaddrIn(b, 16)
    if (address === undefined) return 22
    if (this.uid !== 0) return 1
    if (!this.lo0.has(address)) return 49 // EADDRNOTAVAIL
    if (address === '127.0.0.1') this.deletedSystemAddress = true
    this.lo0.delete(address)
    return 0
  }

  #isLo0(b: Buffer): boolean {
    return b.subarray(0, 16).equals(Buffer.from([0x6c, 0x6f, 0x30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))
  }

  /** sin_len 16, sin_family AF_INET, sin_port 0, sin_zero all zero; else undefined. */
  #sockaddrIn(b: Buffer, at: number): string | undefined {
    const s = b.subarray(at, at + 16)
    if (s[0] !== 16 || s[1] !== 2 || s[2] !== 0 || s[3] !== 0 || !s.subarray(8).every((x) => x === 0)) return undefined
    return [...s.subarray(4, 8)].join('.')
  }
}
