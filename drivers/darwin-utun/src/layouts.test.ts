// Every size, offset, ioctl number and constant of ngrokd's macOS code against the numbers a
// compiler read from Apple's headers for x86_64 and arm64 (test-fixtures/darwin-layouts.json,
// made by scripts/probe-layouts.sh). The encoders are checked by where their bytes land, at the
// offsets the compiler reported.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import * as darwin from '@ngrokd/driver-loopback-alias/darwin'
import { CTL_INFO, CTLIOCGINFO, encodeCtlInfo, encodeSockaddrCtl, MAX_KCTL_NAME, SOCKADDR_CTL, SYSPROTO_CONTROL, AF_SYS_CONTROL, UTUN_CONTROL_NAME, UTUN_OPT_IFNAME } from './kern-control.js'
import * as route from './route/route-dump.js'

interface Fixture {
  headers: { xnu: string; libinfo: string }
  targets: Record<string, Record<string, number | string>>
}
const fixture = JSON.parse(readFileSync(new URL('../test-fixtures/darwin-layouts.json', import.meta.url), 'utf8')) as Fixture
/** Keys of the fixture that core checks (struct xucred for LOCAL_PEERCRED, ENOTSOCK; SO_ERROR, SO_LINGER, struct linger). */
const CHECKED_ELSEWHERE = /^(SOL_LOCAL|LOCAL_PEERCRED|XUCRED_VERSION|NGROUPS|ENOTSOCK|SO_ERROR|SO_LINGER)$|xucred|_linger/

describe(`darwin layouts (${fixture.headers.xnu}, ${fixture.headers.libinfo})`, () => {
  it('has both architectures', () => {
    assert.deepEqual(Object.keys(fixture.targets).sort(), ['arm64-apple-macos11', 'x86_64-apple-macos11'])
  })

  for (const [target, values] of Object.entries(fixture.targets)) {
    describe(target, () => {
      const used = new Set<string>()
      const h = (key: string): number => {
        assert.ok(key in values, `${key} is not in the fixture: add it to scripts/probe-layouts.c and rerun scripts/probe-layouts.sh`)
        used.add(key)
        return values[key] as number
      }
      /** The IPv4 address a sockaddr_in at `at` holds, read with the compiler's offsets. */
      const sinAt = (b: Buffer, at: number) => {
        assert.equal(b[at + h('offsetof_sockaddr_in__sin_len')], h('sizeof_sockaddr_in'))
        assert.equal(b[at + h('offsetof_sockaddr_in__sin_family')], h('AF_INET'))
        assert.equal(b.readUInt16BE(at + h('offsetof_sockaddr_in__sin_port')), 0)
        assert.ok(b.subarray(at + h('offsetof_sockaddr_in__sin_zero'), at + h('sizeof_sockaddr_in')).every((x) => x === 0), 'sin_zero')
        return [...b.subarray(at + h('offsetof_sockaddr_in__sin_addr'), at + h('offsetof_sockaddr_in__sin_addr') + 4)].join('.')
      }

      it('<sys/socket.h>, <sys/sysctl.h>, <net/if.h>, <sys/fcntl.h> constants', () => {
        for (const name of ['AF_UNSPEC', 'AF_INET', 'AF_ROUTE', 'AF_LINK', 'AF_INET6', 'AF_SYSTEM', 'PF_ROUTE', 'PF_SYSTEM', 'SOCK_DGRAM', 'NET_RT_DUMP', 'CTL_NET', 'IFNAMSIZ', 'IFF_UP', 'IFF_BROADCAST', 'IFF_LOOPBACK', 'IFF_POINTOPOINT', 'IFF_RUNNING', 'IFF_MULTICAST', 'F_GETFD', 'F_SETFD', 'F_GETFL', 'F_SETFL', 'FD_CLOEXEC', 'O_NONBLOCK'] as const) {
          assert.equal(darwin[name], h(name), name)
        }
        assert.equal(h('sizeof_sockaddr'), 16)
        assert.deepEqual([h('offsetof_sockaddr__sa_len'), h('offsetof_sockaddr__sa_family'), h('offsetof_sockaddr__sa_data')], [0, 1, 2], 'sa_len comes first on macOS')
        h('SOL_SOCKET') // the driver uses none of it: core's socket-state.ts checks it with SO_ERROR and SO_LINGER
      })

      it('<sys/errno.h> values', () => {
        for (const [name, value] of Object.entries(darwin.DARWIN_ERRNO)) {
          if (name === 'ENOSYS') continue // not probed: only the Linux smoke test's unbound functions use it
          assert.equal(value, h(name), name)
        }
        assert.equal(h('EWOULDBLOCK'), darwin.DARWIN_ERRNO.EAGAIN)
      })

      it('<sys/ioccom.h> and the <sys/sockio.h> requests', () => {
        assert.equal(darwin.IOC_IN, h('IOC_IN'))
        assert.equal(darwin.IOC_OUT, h('IOC_OUT'))
        assert.equal(darwin.IOC_INOUT, h('IOC_INOUT'))
        assert.equal(darwin.IOCPARM_MASK, h('IOCPARM_MASK'))
        assert.equal(darwin.SIOCAIFADDR, h('SIOCAIFADDR'))
        assert.equal(darwin._IOW('i', 26, h('sizeof_ifaliasreq')), h('SIOCAIFADDR'))
        assert.equal(darwin.SIOCDIFADDR, h('SIOCDIFADDR'))
        assert.equal(darwin._IOW('i', 25, h('sizeof_ifreq')), h('SIOCDIFADDR'))
        assert.equal(darwin.SIOCSIFMTU, h('SIOCSIFMTU'))
        assert.equal(darwin._IOW('i', 52, h('sizeof_ifreq')), h('SIOCSIFMTU'))
        assert.equal(darwin.SIOCGIFMTU, h('SIOCGIFMTU'))
        assert.equal(darwin._IOWR('i', 51, h('sizeof_ifreq')), h('SIOCGIFMTU'))
        for (const request of [darwin.SIOCAIFADDR, darwin.SIOCDIFADDR, darwin.SIOCSIFMTU]) assert.ok(darwin.ioctlParamLength(request) > 0)
        assert.equal(darwin.ioctlParamLength(darwin.SIOCAIFADDR), h('sizeof_ifaliasreq'))
      })

      it('struct sockaddr_in, ifaliasreq / in_aliasreq, ifreq as the encoders write them', () => {
        assert.equal(darwin.SOCKADDR_IN_SIZE, h('sizeof_sockaddr_in'))
        assert.equal(sinAt(darwin.encodeSockaddrIn('10.107.0.2'), 0), '10.107.0.2')

        assert.equal(darwin.IFALIASREQ_SIZE, h('sizeof_ifaliasreq'))
        assert.equal(h('sizeof_in_aliasreq'), h('sizeof_ifaliasreq'))
        assert.deepEqual(darwin.IFALIASREQ, { name: h('offsetof_ifaliasreq__ifra_name'), addr: h('offsetof_ifaliasreq__ifra_addr'), broadaddr: h('offsetof_ifaliasreq__ifra_broadaddr'), mask: h('offsetof_ifaliasreq__ifra_mask') })
        assert.deepEqual(darwin.IFALIASREQ, { name: h('offsetof_in_aliasreq__ifra_name'), addr: h('offsetof_in_aliasreq__ifra_addr'), broadaddr: h('offsetof_in_aliasreq__ifra_dstaddr'), mask: h('offsetof_in_aliasreq__ifra_mask') })
        const aliasreq = darwin.encodeIfaliasreq({ name: 'utun4', address: '10.107.0.2', mask: '255.255.255.255', broadaddr: '10.107.0.2' })
        assert.equal(aliasreq.length, h('sizeof_in_aliasreq'))
        assert.equal(aliasreq.toString('latin1', h('offsetof_in_aliasreq__ifra_name'), 5), 'utun4')
        assert.equal(sinAt(aliasreq, h('offsetof_in_aliasreq__ifra_addr')), '10.107.0.2')
        assert.equal(sinAt(aliasreq, h('offsetof_in_aliasreq__ifra_dstaddr')), '10.107.0.2')
        assert.equal(sinAt(aliasreq, h('offsetof_in_aliasreq__ifra_mask')), '255.255.255.255')

        assert.equal(darwin.IFREQ_SIZE, h('sizeof_ifreq'))
        assert.deepEqual(darwin.IFREQ, { name: h('offsetof_ifreq__ifr_name'), addr: h('offsetof_ifreq__ifr_addr'), mtu: h('offsetof_ifreq__ifr_mtu') })
        const del = darwin.encodeIfreqAddr({ name: 'utun4', address: '10.107.0.9' })
        assert.equal(del.length, h('sizeof_ifreq'))
        assert.equal(sinAt(del, h('offsetof_ifreq__ifr_addr')), '10.107.0.9')
        const mtu = darwin.encodeIfreqMtu({ name: 'utun4', mtu: 16384 })
        assert.equal(mtu.length, h('sizeof_ifreq'))
        assert.equal(mtu.readInt32LE(h('offsetof_ifreq__ifr_mtu')), 16384)
      })

      it('struct sockaddr_dl and struct ifaddrs (<net/if_dl.h>, <ifaddrs.h>)', () => {
        const dl = darwin.SOCKADDR_DL
        assert.deepEqual(dl, {
          len: h('offsetof_sockaddr_dl__sdl_len'),
          family: h('offsetof_sockaddr_dl__sdl_family'),
          index: h('offsetof_sockaddr_dl__sdl_index'),
          type: h('offsetof_sockaddr_dl__sdl_type'),
          nlen: h('offsetof_sockaddr_dl__sdl_nlen'),
          alen: h('offsetof_sockaddr_dl__sdl_alen'),
          slen: h('offsetof_sockaddr_dl__sdl_slen'),
          data: h('offsetof_sockaddr_dl__sdl_data'),
          size: h('sizeof_sockaddr_dl'),
        })
        assert.deepEqual(darwin.IFADDRS, {
          next: h('offsetof_ifaddrs__ifa_next'),
          name: h('offsetof_ifaddrs__ifa_name'),
          flags: h('offsetof_ifaddrs__ifa_flags'),
          addr: h('offsetof_ifaddrs__ifa_addr'),
          netmask: h('offsetof_ifaddrs__ifa_netmask'),
          dstaddr: h('offsetof_ifaddrs__ifa_dstaddr'),
          data: h('offsetof_ifaddrs__ifa_data'),
          size: h('sizeof_ifaddrs'),
        })
      })

      it('<sys/kern_control.h>, <sys/sys_domain.h>, <net/if_utun.h>', () => {
        assert.equal(SYSPROTO_CONTROL, h('SYSPROTO_CONTROL'))
        assert.equal(AF_SYS_CONTROL, h('AF_SYS_CONTROL'))
        assert.equal(MAX_KCTL_NAME, h('MAX_KCTL_NAME'))
        assert.equal(UTUN_OPT_IFNAME, h('UTUN_OPT_IFNAME'))
        assert.equal(UTUN_CONTROL_NAME, values.UTUN_CONTROL_NAME)
        used.add('UTUN_CONTROL_NAME')
        assert.equal(CTLIOCGINFO, h('CTLIOCGINFO'))
        assert.equal(darwin._IOWR('N', 3, h('sizeof_ctl_info')), h('CTLIOCGINFO'))
        assert.deepEqual(CTL_INFO, { id: h('offsetof_ctl_info__ctl_id'), name: h('offsetof_ctl_info__ctl_name'), size: h('sizeof_ctl_info') })
        const info = encodeCtlInfo(UTUN_CONTROL_NAME)
        assert.equal(info.length, h('sizeof_ctl_info'))
        assert.equal(info.toString('latin1', h('offsetof_ctl_info__ctl_name'), h('offsetof_ctl_info__ctl_name') + UTUN_CONTROL_NAME.length + 1), `${UTUN_CONTROL_NAME}\0`)
        assert.deepEqual(SOCKADDR_CTL, {
          len: h('offsetof_sockaddr_ctl__sc_len'),
          family: h('offsetof_sockaddr_ctl__sc_family'),
          sysaddr: h('offsetof_sockaddr_ctl__ss_sysaddr'),
          id: h('offsetof_sockaddr_ctl__sc_id'),
          unit: h('offsetof_sockaddr_ctl__sc_unit'),
          reserved: h('offsetof_sockaddr_ctl__sc_reserved'),
          size: h('sizeof_sockaddr_ctl'),
        })
        const sc = encodeSockaddrCtl({ id: 0x2a, unit: 5 })
        assert.equal(sc.length, h('sizeof_sockaddr_ctl'))
        assert.equal(sc[h('offsetof_sockaddr_ctl__sc_len')], h('sizeof_sockaddr_ctl'))
        assert.equal(sc[h('offsetof_sockaddr_ctl__sc_family')], h('AF_SYSTEM'))
        assert.equal(sc.readUInt16LE(h('offsetof_sockaddr_ctl__ss_sysaddr')), h('AF_SYS_CONTROL'))
        assert.equal(sc.readUInt32LE(h('offsetof_sockaddr_ctl__sc_id')), 0x2a)
        assert.equal(sc.readUInt32LE(h('offsetof_sockaddr_ctl__sc_unit')), 5)
      })

      it('<net/route.h>: struct rt_msghdr, RTM_*, RTAX_*, RTA_*, RTF_*', () => {
        assert.deepEqual(route.RT_MSGHDR, {
          msglen: h('offsetof_rt_msghdr__rtm_msglen'),
          version: h('offsetof_rt_msghdr__rtm_version'),
          type: h('offsetof_rt_msghdr__rtm_type'),
          index: h('offsetof_rt_msghdr__rtm_index'),
          flags: h('offsetof_rt_msghdr__rtm_flags'),
          addrs: h('offsetof_rt_msghdr__rtm_addrs'),
          pid: h('offsetof_rt_msghdr__rtm_pid'),
          seq: h('offsetof_rt_msghdr__rtm_seq'),
          errno: h('offsetof_rt_msghdr__rtm_errno'),
          use: h('offsetof_rt_msghdr__rtm_use'),
          inits: h('offsetof_rt_msghdr__rtm_inits'),
          rmx: h('offsetof_rt_msghdr__rtm_rmx'),
          size: h('sizeof_rt_msghdr'),
        })
        assert.equal(h('offsetof_rt_msghdr__rtm_rmx') + h('sizeof_rt_metrics'), h('sizeof_rt_msghdr'))
        for (const name of ['RTM_VERSION', 'RTM_GET', 'RTAX_DST', 'RTAX_GATEWAY', 'RTAX_NETMASK', 'RTAX_MAX', 'RTF_UP', 'RTF_GATEWAY', 'RTF_HOST', 'RTF_REJECT', 'RTF_STATIC', 'RTF_BLACKHOLE', 'RTF_WASCLONED', 'RTF_LOCAL', 'RTF_BROADCAST', 'RTF_MULTICAST'] as const) {
          assert.equal(route[name], h(name), name)
        }
        // the parser walks the sockaddrs by bit: RTA_x is 1 << RTAX_x
        for (const [bit, index] of [['RTA_DST', 'RTAX_DST'], ['RTA_GATEWAY', 'RTAX_GATEWAY'], ['RTA_NETMASK', 'RTAX_NETMASK'], ['RTA_IFA', 'RTAX_IFA']] as const) assert.equal(h(bit), 1 << h(index))
        for (const unused of ['RTAX_GENMASK', 'RTAX_IFP', 'RTAX_AUTHOR', 'RTAX_BRD', 'RTF_LLINFO', 'RTF_IFSCOPE']) h(unused) // in the fixture for reference only
        assert.deepEqual(route.ROUTE_DUMP_MIB, [h('CTL_NET'), h('PF_ROUTE'), 0, h('AF_INET'), h('NET_RT_DUMP'), 0])
      })

      it('compared every value the probe reported (runs last)', () => {
        const unchecked = Object.keys(values).filter((k) => !used.has(k) && !CHECKED_ELSEWHERE.test(k))
        assert.deepEqual(unchecked, [], 'probed values no test compares with the code')
      })
    })
  }
})
