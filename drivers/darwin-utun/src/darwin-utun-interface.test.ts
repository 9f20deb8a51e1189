import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { isDriverModule, isNgrokdError, silentLogger, type Logger } from '@ngrokd/core/driver'
import driver from './index.js'
import { DarwinUtunInterface } from './darwin-utun-interface.js'
import { FakeUtunKernel } from './testing/fake-utun-kernel.test-helper.js'

const hex = (s: string) => s.replace(/\s+/g, '')
const zeros = (n: number) => '00'.repeat(n)
const name16 = (name: string) => Buffer.from(name, 'latin1').toString('hex') + zeros(16 - name.length)
const sin = (a: string) => `10020000${Buffer.from(a.split('.').map(Number)).toString('hex')}${zeros(8)}`

/** A logger that keeps what was logged, by level. */
function recordingLogger(): Logger & { lines: Array<[string, string]> } {
  const lines: Array<[string, string]> = []
  const at = (level: string) => (a: unknown, b?: unknown) => void lines.push([level, typeof a === 'string' ? a : String(b ?? '')])
  const logger = { lines, trace: at('trace'), debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), fatal: at('fatal'), child: () => logger }
  return logger
}

/**
 * An IPv4 packet as the kernel hands it to the utun: a TCP SYN from `src`:50000 to `dst`:443, with
 * `extra` bytes of TCP options/payload after the 20-byte TCP header. Checksums stay 0: the fake
 * checks none, and the packet only has to come back as it went.
 */
function tcpSyn({ src, dst, extra = 0 }: { src: string; dst: string; extra?: number }): Buffer {
  const ip = Buffer.from('45000000' + '1c464000' + '40060000', 'hex') // version 4, IHL 5; DF; TTL 64, TCP
  const length = 20 + 20 + extra
  ip.writeUInt16BE(length, 2)
  const address = (a: string) => Buffer.from(a.split('.').map(Number))
  const tcp = Buffer.from('c35001bb' + '00000001' + '00000000' + '5002ffff' + '00000000', 'hex') // ports, seq, ack, offset 5 + SYN, window
  return Buffer.concat([ip, address(src), address(dst), tcp, Buffer.alloc(extra, 0xab)])
}

/** The datagram a utun control socket carries: AF_INET (2, <sys/socket.h>) in network byte order, then the packet. */
const AF_INET_HEADER = '00000002'
const AF_INET6_HEADER = '0000001e' // AF_INET6 is 30 on macOS

/** Turns of the event loop, for the readability watch to fire; bounded, no timers. */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve))
}

describe('darwin-utun system calls', () => {
  it('makes the utun, sets its MTU, adds and removes an address and closes, byte for byte', async () => {
    const kernel = new FakeUtunKernel()
    const iface = new DarwinUtunInterface({ syscalls: kernel })
    await iface.open({ name: 'ngrokd0', subnet: '10.107.0.0/16' })
    await iface.addAddress({ address: '10.107.0.2' })
    await iface.removeAddress({ address: '10.107.0.2' })
    await iface.close()
    const calls = kernel.calls.map(({ call, fd, request, hex, args, result }) => ({ call, ...(fd === undefined ? {} : { fd }), ...(request === undefined ? {} : { request: request.toString(16) }), ...(hex === undefined ? {} : { hex }), ...(args === undefined ? {} : { args }), result }))
    const sysctls = calls.filter((c) => c.call === 'sysctl')
    assert.equal(sysctls.length, 2, 'the route dump: size, then read')
    assert.deepEqual(sysctls[0]!.args!.slice(0, 6), [4, 17, 0, 2, 1, 0], '{ CTL_NET, PF_ROUTE, 0, AF_INET, NET_RT_DUMP, 0 }')
    assert.deepEqual(
      calls.filter((c) => c.call !== 'sysctl' && c.call !== 'getifaddrs'),
      [
        { call: 'socket', args: [32, 2, 2], result: 3 }, // PF_SYSTEM, SOCK_DGRAM, SYSPROTO_CONTROL
        { call: 'fcntl', fd: 3, args: [2, 1], result: 0 }, // F_SETFD, FD_CLOEXEC
        { call: 'ioctl', fd: 3, request: 'c0644e03', hex: hex(`00000000 ${Buffer.from('com.apple.net.utun_control').toString('hex')}`) + zeros(70), result: 0 }, // CTLIOCGINFO
        { call: 'connect', fd: 3, hex: hex(`2020 0200 2a000000 00000000`) + zeros(20), result: 0 }, // sockaddr_ctl: id 0x2a, unit 0
        { call: 'getsockopt', fd: 3, args: [2, 2, 16], result: 6 }, // SYSPROTO_CONTROL, UTUN_OPT_IFNAME: "utun2\0"
        { call: 'fcntl', fd: 3, args: [3, 0], result: 2 }, // F_GETFL
        { call: 'fcntl', fd: 3, args: [4, 6], result: 0 }, // F_SETFL, O_RDWR | O_NONBLOCK
        { call: 'socket', args: [2, 2, 0], result: 4 },
        { call: 'ioctl', fd: 4, request: '80206934', hex: name16('utun2') + hex('00400000') + zeros(12), result: 0 }, // SIOCSIFMTU 16384
        { call: 'close', fd: 4, result: 0 },
        { call: 'watchReadable', fd: 3, result: 0 },
        { call: 'socket', args: [2, 2, 0], result: 5 },
        { call: 'ioctl', fd: 5, request: '8040691a', hex: name16('utun2') + sin('10.107.0.2') + sin('10.107.0.2') + sin('255.255.255.255'), result: 0 }, // SIOCAIFADDR
        { call: 'close', fd: 5, result: 0 },
        { call: 'socket', args: [2, 2, 0], result: 6 },
        { call: 'ioctl', fd: 6, request: '80206919', hex: name16('utun2') + sin('10.107.0.2'), result: 0 }, // SIOCDIFADDR
        { call: 'close', fd: 6, result: 0 },
        { call: 'close', fd: 3, result: 0 }, // the utun goes with it
      ],
    )
    assert.equal(kernel.interfaces.has('utun2'), false)
  })

  it('asks for utunN when net.interface_name is utunN, and takes the next free unit when it is taken', async () => {
    const kernel = new FakeUtunKernel()
    const seven = new DarwinUtunInterface({ syscalls: kernel })
    const info = await seven.open({ name: 'utun7', subnet: '10.107.0.0/16' })
    assert.deepEqual([info.name, info.notes], ['utun7', []])
    const taken = new DarwinUtunInterface({ syscalls: kernel })
    const other = await taken.open({ name: 'utun1', subnet: '10.108.0.0/16' })
    assert.deepEqual([other.name, other.notes], ['utun2', ['utun1 is taken by another program; macOS gave ngrokd utun2']])
    const connects = kernel.calls.filter((c) => c.call === 'connect')
    assert.deepEqual(connects.map((c) => [Buffer.from(c.hex!, 'hex').readUInt32LE(8), c.result]), [[8, 0], [2, 16], [0, 0]], 'unit 8, then unit 2 (EBUSY), then the next free')
    await seven.close()
    await taken.close()
    assert.deepEqual([...kernel.openFds], [])
  })

  it('returns the same info when opened again with the same name, and refuses another name while open', async () => {
    const kernel = new FakeUtunKernel()
    const iface = new DarwinUtunInterface({ syscalls: kernel })
    const info = await iface.open({ name: 'ngrokd0', subnet: '10.107.0.0/16' })
    assert.equal(await iface.open({ name: 'ngrokd0', subnet: '10.107.0.0/16' }), info)
    await assert.rejects(iface.open({ name: 'ngrokd1', subnet: '10.107.0.0/16' }), (e) => isNgrokdError(e, 'NGROKD_ERR_DRIVER_MISUSE'))
    assert.equal(kernel.calls.filter((c) => c.call === 'connect').length, 1)
    await iface.close()
  })

  it('lists what the kernel has on the utun, not what it remembers', async () => {
    const kernel = new FakeUtunKernel()
    const iface = new DarwinUtunInterface({ syscalls: kernel })
    const { name } = await iface.open({ name: 'ngrokd0', subnet: '10.107.0.0/16' })
    await iface.applyAddresses({ add: ['10.107.0.3', '10.107.0.2'], remove: [] })
    kernel.addAddress(name, '10.107.0.9', { mask: '255.255.255.255', dst: '10.107.0.9' }) // `ifconfig utun2 alias …` by hand
    assert.deepEqual(await iface.listAddresses(), ['10.107.0.2', '10.107.0.3', '10.107.0.9'])
    await iface.close()
  })

  it('refuses a subnet that overlaps a VPN route, naming route and interface; force opens with a warning', async () => {
    const kernel = new FakeUtunKernel()
    kernel.routes.push({ dst: '10.107.0.0', prefix: 16, index: kernel.interfaces.get('utun0')!.index, flags: 0x801 })
    const refused = await new DarwinUtunInterface({ syscalls: kernel }).open({ name: 'ngrokd0', subnet: '10.107.0.0/16' }).catch((e: unknown) => e)
    assert.ok(isNgrokdError(refused, 'NGROKD_ERR_ADDRESS_CONFLICT'), String(refused))
    assert.equal(refused.message, 'darwin-utun: net.subnet 10.107.0.0/16 overlaps route 10.107.0.0/16 via utun0')
    assert.equal(kernel.calls.filter((c) => c.call === 'socket').length, 0, 'nothing was made')
    const logger = recordingLogger()
    const forced = new DarwinUtunInterface({ syscalls: kernel, force: true, logger })
    assert.equal((await forced.open({ name: 'ngrokd0', subnet: '10.107.0.0/16' })).name, 'utun2')
    assert.ok(logger.lines.some(([level, msg]) => level === 'warn' && /overlaps, going on because force is set/.test(msg)))
    await forced.close()
  })

  it("open({ adoptOnly: true }) (ngrokd cleanup) finds nothing to adopt and makes nothing: no utun, no route read, whatever overlaps", async () => {
    const kernel = new FakeUtunKernel()
    kernel.routes.push({ dst: '10.0.0.0', prefix: 8, index: kernel.interfaces.get('utun0')!.index, flags: 0x801 })
    const iface = new DarwinUtunInterface({ syscalls: kernel })
    const info = await iface.open({ name: 'ngrokd0', subnet: '10.107.0.0/16', adoptOnly: true })
    assert.deepEqual({ absent: info.absent, adopted: info.adopted }, { absent: true, adopted: false })
    assert.deepEqual(kernel.calls, [], 'not one call: a utun cannot outlive the process that made it')
    await iface.close({ removeInterface: true })
    assert.deepEqual(kernel.calls, [])
  })

  it('needs root: EPERM from connect is NGROKD_ERR_PERMISSION with a sudo hint, and the socket is closed', async () => {
    const kernel = new FakeUtunKernel({ uid: 501 })
    const error = await new DarwinUtunInterface({ syscalls: kernel }).open({ name: 'ngrokd0', subnet: '10.107.0.0/16' }).catch((e: unknown) => e)
    assert.ok(isNgrokdError(error, 'NGROKD_ERR_PERMISSION'), String(error))
    assert.equal(error.message, 'darwin-utun: connect(utun control) (next free unit) refused: EPERM (1)')
    assert.match(error.hint ?? '', /sudo/)
    assert.deepEqual([...kernel.openFds], [])
  })

  it('says what is wrong when the kernel has no utun control, or no free unit', async () => {
    const noControl = new FakeUtunKernel()
    noControl.controls.delete('com.apple.net.utun_control')
    const e1 = await new DarwinUtunInterface({ syscalls: noControl }).open({ name: 'ngrokd0', subnet: '10.107.0.0/16' }).catch((e: unknown) => e)
    assert.ok(isNgrokdError(e1, 'NGROKD_ERR_SYSCALL'))
    assert.equal(e1.message, 'darwin-utun: ioctl(CTLIOCGINFO) com.apple.net.utun_control failed: ENOENT (2)')
    assert.match(e1.hint ?? '', /needs macOS/)
    const full = new FakeUtunKernel()
    for (let unit = 1; unit < 256; unit++) full.units.set(unit, -1)
    const e2 = await new DarwinUtunInterface({ syscalls: full }).open({ name: 'ngrokd0', subnet: '10.107.0.0/16' }).catch((e: unknown) => e)
    assert.ok(isNgrokdError(e2, 'NGROKD_ERR_SYSCALL'))
    assert.equal(e2.message, 'connect(utun control) (next free unit) failed: EBUSY (16)')
    assert.deepEqual([...noControl.openFds, ...full.openFds], [])
  })

  it('closes the utun again when setting the MTU fails', async () => {
    const kernel = new FakeUtunKernel()
    const error = await new DarwinUtunInterface({ syscalls: kernel, mtu: 70 }).open({ name: 'ngrokd0', subnet: '10.107.0.0/16' }).catch((e: unknown) => e)
    assert.ok(isNgrokdError(error, 'NGROKD_ERR_CONFIG_INVALID'), 'checked before any call')
    const iface = new DarwinUtunInterface({ syscalls: kernel })
    const realIoctl = kernel.ioctl.bind(kernel)
    kernel.ioctl = (fd, request, arg) => (request === 0x80206934 ? 22 : realIoctl(fd, request, arg))
    const e = await iface.open({ name: 'ngrokd0', subnet: '10.107.0.0/16' }).catch((x: unknown) => x)
    assert.ok(isNgrokdError(e, 'NGROKD_ERR_SYSCALL'))
    assert.equal(e.message, 'ioctl(SIOCSIFMTU) 16384 on utun2 failed: EINVAL (22)')
    assert.deepEqual([...kernel.openFds], [])
    assert.equal(kernel.interfaces.has('utun2'), false)
  })

  it('the control socket is close-on-exec and non-blocking', async () => {
    const kernel = new FakeUtunKernel()
    const iface = new DarwinUtunInterface({ syscalls: kernel })
    const { name } = await iface.open({ name: 'ngrokd0', subnet: '10.107.0.0/16' })
    const fd = kernel.socketOf(name)!
    assert.equal(kernel.fcntl(fd, 1 /* F_GETFD */, 0), 1, 'FD_CLOEXEC')
    assert.equal(kernel.fcntl(fd, 3 /* F_GETFL */, 0) & 0x4, 0x4, 'O_NONBLOCK')
    await iface.close()
  })
})

describe('darwin-utun packet drain', () => {
  it('reads and drops what is routed into the utun, until EAGAIN, without spinning', async () => {
    const kernel = new FakeUtunKernel()
    const logger = recordingLogger()
    const iface = new DarwinUtunInterface({ syscalls: kernel, logger })
    const { name } = await iface.open({ name: 'ngrokd0', subnet: '10.107.0.0/16' })
    const packet = Buffer.from('4500001c0000000040110000' + '0a6b0002' + '0a6b0003' + '0000000000000000', 'hex')
    for (let i = 0; i < 150; i++) kernel.routeInto(name, packet)
    for (let i = 0; i < 100 && iface.stats!.packetsDropped < 150; i++) await turns(1)
    assert.equal(iface.stats!.packetsDropped, 150)
    const reads = () => kernel.calls.filter((c) => c.call === 'read')
    // 64 per wake-up: 64 + 64 + 22, then one EAGAIN ends the third wake-up
    assert.equal(reads().length, 151)
    assert.equal(reads().filter((c) => c.result === -35).length, 1)
    await turns(20)
    assert.equal(reads().length, 151, 'no read while nothing arrives')
    assert.equal(kernel.starvedWatches, 0)
    assert.deepEqual(logger.lines.filter(([level]) => level === 'warn').map(([, m]) => m), [`darwin-utun: a packet was routed into ${name} and dropped (not to an address of the utun: only packets to its own addresses are written back; check the routes to net.subnet)`])
    kernel.routeInto(name, packet)
    for (let i = 0; i < 100 && iface.stats!.packetsDropped < 151; i++) await turns(1)
    assert.equal(iface.stats!.packetsDropped, 151)
    await iface.close()
    assert.equal(kernel.activeWatches, 0)
  })

  it('stops on a read error instead of spinning on a broken descriptor', async () => {
    const kernel = new FakeUtunKernel()
    const logger = recordingLogger()
    const iface = new DarwinUtunInterface({ syscalls: kernel, logger })
    const { name } = await iface.open({ name: 'ngrokd0', subnet: '10.107.0.0/16' })
    let reads = 0
    kernel.read = () => (reads++, -9) // EBADF
    kernel.routeInto(name, Buffer.from('45', 'hex'))
    for (let i = 0; i < 100 && reads === 0; i++) await turns(1)
    await turns(20)
    assert.equal(reads, 1)
    assert.deepEqual(iface.stats, { packetsReflected: 0, packetsDropped: 0, writeErrors: 0, readErrors: 1 })
    assert.ok(logger.lines.some(([level, m]) => level === 'error' && m === `darwin-utun: reading ${name} failed: EBADF (9); no longer draining it`))
    assert.equal(kernel.activeWatches, 0)
    await iface.close()
  })

  /** An open driver on a fake kernel, holding 10.107.0.2 and 10.107.0.3, and a wait for the drain to have handled `n` packets. */
  async function reflecting(options: { mtu?: number } = {}) {
    const kernel = new FakeUtunKernel()
    const logger = recordingLogger()
    const iface = new DarwinUtunInterface({ syscalls: kernel, logger, ...options })
    const { name } = await iface.open({ name: 'ngrokd0', subnet: '10.107.0.0/16' })
    await iface.applyAddresses({ add: ['10.107.0.2', '10.107.0.3'], remove: [] })
    const handled = () => iface.stats!.packetsReflected + iface.stats!.packetsDropped + iface.stats!.writeErrors
    const settle = async (n: number) => {
      for (let i = 0; i < 100 && handled() < n; i++) await turns(1)
      assert.equal(handled(), n)
    }
    const writes = () => kernel.calls.filter((c) => c.call === 'write')
    return { kernel, logger, iface, name, fd: kernel.socketOf(name)!, settle, writes }
  }

  it('writes a packet to one of the utun\'s own addresses back into it, byte for byte', async () => {
    const { kernel, logger, iface, name, fd, settle, writes } = await reflecting()
    const syn = tcpSyn({ src: '10.107.0.3', dst: '10.107.0.2' })
    kernel.routeInto(name, syn)
    await settle(1)
    assert.deepEqual(writes(), [{ call: 'write', fd, hex: AF_INET_HEADER + syn.toString('hex'), result: 44 }])
    assert.deepEqual(kernel.input, [{ name, datagram: Buffer.from(AF_INET_HEADER + syn.toString('hex'), 'hex') }], 'input on the utun, where ip_input delivers it locally')
    assert.deepEqual(iface.stats, { packetsReflected: 1, packetsDropped: 0, writeErrors: 0, readErrors: 0 })
    // the reply, from the listener's address to the client's, comes back the same way
    kernel.routeInto(name, tcpSyn({ src: '10.107.0.2', dst: '10.107.0.3' }))
    await settle(2)
    assert.equal(iface.stats!.packetsReflected, 2)
    const said = logger.lines.filter(([, m]) => /writes those packets back/.test(m))
    assert.deepEqual(said, [['info', `darwin-utun: the kernel routes local connections to ${name}'s addresses into it: ngrokd writes those packets back (one hop through ngrokd per packet; net.driver: loopback-alias avoids it)`]], 'said once')
    const packets = (await iface.diagnose()).find((c) => c.id === 'darwin-utun.packets')
    assert.deepEqual(packets, { id: 'darwin-utun.packets', status: 'ok', summary: `${name}: 2 packets to its own addresses written back, 0 dropped, 0 write errors: the kernel routes local connections to its addresses into it, and each packet takes a hop through ngrokd` })
    await iface.close()
    assert.equal(kernel.activeWatches, 0)
  })

  it('drops a packet to an address the utun does not hold, and one to an address removed from it', async () => {
    const { kernel, iface, name, settle, writes } = await reflecting()
    kernel.routeInto(name, tcpSyn({ src: '10.107.0.3', dst: '10.107.0.9' }))
    kernel.routeInto(name, tcpSyn({ src: '10.107.0.3', dst: '192.168.64.2' })) // en0's: local, but not the utun's
    await settle(2)
    await iface.removeAddress({ address: '10.107.0.2' })
    kernel.routeInto(name, tcpSyn({ src: '10.107.0.3', dst: '10.107.0.2' }))
    await settle(3)
    kernel.addAddress(name, '10.107.0.9', { mask: '255.255.255.255', dst: '10.107.0.9' }) // by hand: learned at the next change
    await iface.addAddress({ address: '10.107.0.4' })
    kernel.routeInto(name, tcpSyn({ src: '10.107.0.3', dst: '10.107.0.9' }))
    await settle(4)
    assert.deepEqual(iface.stats, { packetsReflected: 1, packetsDropped: 3, writeErrors: 0, readErrors: 0 })
    assert.equal(writes().length, 1)
    await iface.close()
  })

  it('writes back packets to the addresses asked for when the kernel\'s list cannot be read after a change', async () => {
    const { kernel, logger, iface, name, settle } = await reflecting()
    const realGetifaddrs = kernel.getifaddrs.bind(kernel)
    kernel.getifaddrs = () => {
      throw new Error('getifaddrs failed: ENOMEM (12)')
    }
    await iface.applyAddresses({ add: ['10.107.0.4'], remove: ['10.107.0.3'] })
    kernel.getifaddrs = realGetifaddrs
    kernel.routeInto(name, tcpSyn({ src: '10.107.0.2', dst: '10.107.0.4' }))
    kernel.routeInto(name, tcpSyn({ src: '10.107.0.2', dst: '10.107.0.3' }))
    await settle(2)
    assert.deepEqual(iface.stats, { packetsReflected: 1, packetsDropped: 1, writeErrors: 0, readErrors: 0 })
    assert.ok(logger.lines.some(([level, m]) => level === 'warn' && m === `darwin-utun: cannot read ${name}'s addresses back (getifaddrs failed: ENOMEM (12)); writing back packets to the ones asked for`))
    await iface.close()
  })

  it('reads a whole packet of the utun\'s MTU (the buffer is MTU + 4 bytes) and never writes back a cut one', async () => {
    const big = await reflecting()
    const jumbo = tcpSyn({ src: '10.107.0.3', dst: '10.107.0.2', extra: 16384 - 40 }) // the default MTU, 16384
    big.kernel.routeInto(big.name, jumbo)
    await big.settle(1)
    assert.deepEqual(big.kernel.calls.filter((c) => c.call === 'read').map((c) => c.args), [[16388], [16388]], 'one packet, then EAGAIN')
    assert.deepEqual(big.writes().map((c) => [c.hex, c.result]), [[AF_INET_HEADER + jumbo.toString('hex'), 16388]])
    assert.equal(big.iface.stats!.packetsReflected, 1)
    await big.iface.close()

    const small = await reflecting({ mtu: 1500 })
    const full = tcpSyn({ src: '10.107.0.3', dst: '10.107.0.2', extra: 1500 - 40 })
    small.kernel.routeInto(small.name, full)
    small.kernel.routeInto(small.name, tcpSyn({ src: '10.107.0.3', dst: '10.107.0.2', extra: 2000 })) // the MTU raised behind ngrokd's back: read(2) cuts it
    await small.settle(2)
    assert.deepEqual(small.writes().map((c) => c.hex), [AF_INET_HEADER + full.toString('hex')])
    assert.deepEqual(small.iface.stats, { packetsReflected: 1, packetsDropped: 1, writeErrors: 0, readErrors: 0 })
    assert.ok(small.logger.lines.some(([level, m]) => level === 'warn' && m.startsWith(`darwin-utun: a packet was routed into ${small.name} and dropped (cut:`)))
    await small.iface.close()
  })

  it('drops IPv6 (AF_INET6, 30 on macOS) and anything shorter than an IPv4 header', async () => {
    const { kernel, logger, iface, name, fd, settle, writes } = await reflecting()
    // an IPv6 packet whose last bytes even look like an IPv4 destination of the utun
    const ipv6 = Buffer.from('6000000000083a40' + 'fe80' + zeros(14) + 'fe80' + zeros(10) + '0a6b0002' + '8500000000000000', 'hex')
    kernel.deliver(fd, Buffer.from(AF_INET6_HEADER + ipv6.toString('hex'), 'hex'))
    kernel.deliver(fd, Buffer.from(AF_INET_HEADER + '4500001c', 'hex')) // 4 bytes of a header
    kernel.deliver(fd, Buffer.from(AF_INET_HEADER + tcpSyn({ src: '10.107.0.3', dst: '10.107.0.2' }).toString('hex').replace(/^45/, '65'), 'hex')) // AF_INET, version 6
    await settle(3)
    assert.deepEqual(writes(), [])
    assert.deepEqual(iface.stats, { packetsReflected: 0, packetsDropped: 3, writeErrors: 0, readErrors: 0 })
    assert.ok(logger.lines.some(([level, m]) => level === 'warn' && m.startsWith(`darwin-utun: a packet was routed into ${name} and dropped (not IPv4:`)))
    await iface.close()
  })

  it('counts write errors without stopping, spinning or throwing: EAGAIN and ENOBUFS silently, another error once', async () => {
    const { kernel, logger, iface, name, settle, writes } = await reflecting()
    const syn = tcpSyn({ src: '10.107.0.3', dst: '10.107.0.2' })
    kernel.writeErrors.push(35, 55, 22, 22) // EAGAIN, ENOBUFS, EINVAL twice
    for (let i = 0; i < 5; i++) kernel.routeInto(name, syn)
    await settle(5)
    assert.deepEqual(writes().map((c) => c.result), [-35, -55, -22, -22, 44])
    assert.deepEqual(iface.stats, { packetsReflected: 1, packetsDropped: 0, writeErrors: 4, readErrors: 0 })
    const errors = () => logger.lines.filter(([level]) => level === 'error').map(([, m]) => m)
    assert.deepEqual(errors(), [`darwin-utun: writing a packet back into ${name} failed: EINVAL (22); such packets are lost (counted in writeErrors, not logged again)`])
    // a write that throws (a broken binding) is counted too, and never leaves the watch
    const realWrite = kernel.write.bind(kernel)
    kernel.write = () => {
      throw new Error('write is not a function')
    }
    kernel.routeInto(name, syn)
    await settle(6)
    assert.equal(iface.stats!.writeErrors, 5)
    assert.equal(errors().length, 1, 'reported once')
    kernel.write = realWrite
    kernel.routeInto(name, syn)
    await settle(7)
    assert.equal(iface.stats!.packetsReflected, 2, 'still reflecting')
    await turns(20)
    assert.equal(kernel.starvedWatches, 0)
    assert.equal(kernel.calls.filter((c) => c.call === 'read' && c.result === -35).length, 3, 'one EAGAIN per wake-up: no spin')
    const packets = (await iface.diagnose()).find((c) => c.id === 'darwin-utun.packets')!
    assert.deepEqual([packets.status, packets.summary], ['warn', `${name}: 2 packets to its own addresses written back, 0 dropped, 5 write errors; each write error lost a packet`])
    await iface.close()
    assert.equal(kernel.activeWatches, 0)
  })
})

describe('darwin-utun driver module and doctor', () => {
  it('declares itself for darwin, and refuses to diagnose elsewhere with a coded check', async () => {
    assert.ok(isDriverModule(driver))
    assert.equal(driver.name, 'darwin-utun')
    assert.deepEqual(driver.platforms, ['darwin'])
    const checks = await driver.diagnose!({ logger: silentLogger, stateDir: '/nonexistent', platform: 'linux' }, {})
    assert.deepEqual(checks.map((c) => [c.id, c.status, c.code]), [['darwin-utun.platform', 'fail', 'NGROKD_ERR_DRIVER_UNSUPPORTED_PLATFORM']])
  })

  it('diagnose() finds the utun control without connecting, and reports privilege, name and subnet', async () => {
    const kernel = new FakeUtunKernel()
    kernel.routes.push({ dst: '10.107.0.0', prefix: 16, index: kernel.interfaces.get('utun0')!.index, flags: 0x1 })
    const iface = new DarwinUtunInterface({ syscalls: kernel, name: 'utun1', subnet: '10.107.0.0/16' })
    const checks = await iface.diagnose()
    assert.deepEqual(
      checks.map((c) => [c.id, c.status]),
      [
        ['darwin-utun.libsystem', 'ok'],
        ['darwin-utun.utun-control', 'ok'],
        ['darwin-utun.privileges', process.geteuid?.() === 0 ? 'ok' : 'fail'],
        ['darwin-utun.interface-name', 'warn'],
        ['darwin-utun.subnet', 'fail'],
      ],
    )
    assert.equal(checks[1]!.summary, 'the kernel has the utun control (com.apple.net.utun_control, id 42)')
    assert.equal(checks[4]!.summary, 'net.subnet 10.107.0.0/16 overlaps route 10.107.0.0/16 via utun0')
    assert.equal(checks[4]!.code, 'NGROKD_ERR_ADDRESS_CONFLICT')
    assert.equal(kernel.calls.filter((c) => c.call === 'connect').length, 0, 'doctor makes no utun')
    assert.deepEqual([...kernel.openFds], [])
  })

  it('diagnose() of an open driver names its utun and does not count it as a conflict', async () => {
    const kernel = new FakeUtunKernel()
    const iface = new DarwinUtunInterface({ syscalls: kernel, name: 'ngrokd0', subnet: '10.107.0.0/16' })
    await iface.open({ name: 'ngrokd0', subnet: '10.107.0.0/16' })
    await iface.addAddress({ address: '10.107.0.2' })
    const checks = await iface.diagnose()
    const byId = Object.fromEntries(checks.map((c) => [c.id, c]))
    assert.equal(byId['darwin-utun.interface-name']!.summary, 'net.interface_name ngrokd0 is utun2 (macOS names utun interfaces itself)')
    assert.equal(byId['darwin-utun.subnet']!.status, 'ok')
    assert.match(byId['darwin-utun.subnet']!.summary, /utun2 holds 1 addresses/)
    assert.deepEqual(byId['darwin-utun.packets'], { id: 'darwin-utun.packets', status: 'ok', summary: 'utun2: 0 packets to its own addresses written back, 0 dropped, 0 write errors' })
    await iface.close()
  })
})
