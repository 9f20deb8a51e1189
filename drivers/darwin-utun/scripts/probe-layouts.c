/*
 * Layout probe: every struct size, field offset, ioctl number and constant the macOS code of ngrokd
 * hands the kernel, taken from Apple's own headers by the compiler. It is compiled, never run (no
 * darwin binary can run here): each value becomes a global constant in the LLVM IR, which
 * probe-layouts.sh reads back. See probe-layouts.sh for how to regenerate the fixture.
 *
 * Headers: XNU (bsd/) and Libinfo (<ifaddrs.h>), compiled as user space (no KERNEL, no PRIVATE), as
 * the SDK installs them.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/errno.h>
#include <sys/fcntl.h>
#include <sys/ioccom.h>
#include <sys/socket.h>
#include <sys/sockio.h>
#include <sys/sysctl.h>
#include <sys/sys_domain.h>
#include <sys/kern_control.h>
#include <sys/un.h>
#include <sys/param.h>
#include <sys/ucred.h>
#include <net/if.h>
#include <net/if_dl.h>
#include <net/if_utun.h>
#include <net/route.h>
#include <netinet/in.h>
#include <netinet/in_var.h>
#include <ifaddrs.h>

/* N(name, value): a number. Names are the JSON keys. */
#define N(name, value) const long long probe_##name = (long long)(value);
#define SIZE(type) N(sizeof_##type, sizeof(struct type))
#define OFF(type, field) N(offsetof_##type##__##field, offsetof(struct type, field))
/* S(name, value): a C string. */
#define S(name, value) const char probe_s_##name[] = value;

/* <sys/socket.h> */
N(AF_UNSPEC, AF_UNSPEC)
N(AF_INET, AF_INET)
N(AF_ROUTE, AF_ROUTE)
N(AF_LINK, AF_LINK)
N(AF_SYSTEM, AF_SYSTEM)
N(AF_INET6, AF_INET6)
N(PF_ROUTE, PF_ROUTE)
N(PF_SYSTEM, PF_SYSTEM)
N(SOCK_DGRAM, SOCK_DGRAM)
N(SOL_SOCKET, SOL_SOCKET)
/* SO_ERROR, SO_LINGER and struct linger: core's socket-state.ts (a reset told under an end, closing with an RST) */
N(SO_ERROR, SO_ERROR)
N(SO_LINGER, SO_LINGER)
SIZE(linger)
OFF(linger, l_onoff)
OFF(linger, l_linger)
N(NET_RT_DUMP, NET_RT_DUMP)
SIZE(sockaddr)
OFF(sockaddr, sa_len)
OFF(sockaddr, sa_family)
OFF(sockaddr, sa_data)

/* <sys/sysctl.h> */
N(CTL_NET, CTL_NET)

/* <sys/ioccom.h> */
N(IOC_IN, IOC_IN)
N(IOC_OUT, IOC_OUT)
N(IOC_INOUT, IOC_INOUT)
N(IOCPARM_MASK, IOCPARM_MASK)

/* <sys/sys_domain.h>, <sys/kern_control.h> */
N(SYSPROTO_CONTROL, SYSPROTO_CONTROL)
N(AF_SYS_CONTROL, AF_SYS_CONTROL)
N(MAX_KCTL_NAME, MAX_KCTL_NAME)
N(CTLIOCGINFO, CTLIOCGINFO)
SIZE(ctl_info)
OFF(ctl_info, ctl_id)
OFF(ctl_info, ctl_name)
SIZE(sockaddr_ctl)
OFF(sockaddr_ctl, sc_len)
OFF(sockaddr_ctl, sc_family)
OFF(sockaddr_ctl, ss_sysaddr)
OFF(sockaddr_ctl, sc_id)
OFF(sockaddr_ctl, sc_unit)
OFF(sockaddr_ctl, sc_reserved)

/* <net/if_utun.h> */
S(UTUN_CONTROL_NAME, UTUN_CONTROL_NAME)
N(UTUN_OPT_IFNAME, UTUN_OPT_IFNAME)

/* <net/if.h> */
N(IFNAMSIZ, IFNAMSIZ)
N(IFF_UP, IFF_UP)
N(IFF_BROADCAST, IFF_BROADCAST)
N(IFF_LOOPBACK, IFF_LOOPBACK)
N(IFF_POINTOPOINT, IFF_POINTOPOINT)
N(IFF_RUNNING, IFF_RUNNING)
N(IFF_MULTICAST, IFF_MULTICAST)
SIZE(ifreq)
OFF(ifreq, ifr_name)
OFF(ifreq, ifr_addr)
OFF(ifreq, ifr_mtu)
SIZE(ifaliasreq)
OFF(ifaliasreq, ifra_name)
OFF(ifaliasreq, ifra_addr)
OFF(ifaliasreq, ifra_broadaddr)
OFF(ifaliasreq, ifra_mask)

/* <sys/sockio.h> */
N(SIOCAIFADDR, SIOCAIFADDR)
N(SIOCDIFADDR, SIOCDIFADDR)
N(SIOCSIFMTU, SIOCSIFMTU)
N(SIOCGIFMTU, SIOCGIFMTU)

/* <netinet/in.h>, <netinet/in_var.h> */
SIZE(sockaddr_in)
OFF(sockaddr_in, sin_len)
OFF(sockaddr_in, sin_family)
OFF(sockaddr_in, sin_port)
OFF(sockaddr_in, sin_addr)
OFF(sockaddr_in, sin_zero)
SIZE(in_aliasreq)
OFF(in_aliasreq, ifra_name)
OFF(in_aliasreq, ifra_addr)
OFF(in_aliasreq, ifra_dstaddr)
OFF(in_aliasreq, ifra_mask)

/* <net/if_dl.h> */
SIZE(sockaddr_dl)
OFF(sockaddr_dl, sdl_len)
OFF(sockaddr_dl, sdl_family)
OFF(sockaddr_dl, sdl_index)
OFF(sockaddr_dl, sdl_type)
OFF(sockaddr_dl, sdl_nlen)
OFF(sockaddr_dl, sdl_alen)
OFF(sockaddr_dl, sdl_slen)
OFF(sockaddr_dl, sdl_data)

/* <net/route.h> */
N(RTM_VERSION, RTM_VERSION)
N(RTM_GET, RTM_GET)
N(RTAX_DST, RTAX_DST)
N(RTAX_GATEWAY, RTAX_GATEWAY)
N(RTAX_NETMASK, RTAX_NETMASK)
N(RTAX_GENMASK, RTAX_GENMASK)
N(RTAX_IFP, RTAX_IFP)
N(RTAX_IFA, RTAX_IFA)
N(RTAX_AUTHOR, RTAX_AUTHOR)
N(RTAX_BRD, RTAX_BRD)
N(RTAX_MAX, RTAX_MAX)
N(RTA_DST, RTA_DST)
N(RTA_GATEWAY, RTA_GATEWAY)
N(RTA_NETMASK, RTA_NETMASK)
N(RTA_IFA, RTA_IFA)
N(RTF_UP, RTF_UP)
N(RTF_GATEWAY, RTF_GATEWAY)
N(RTF_HOST, RTF_HOST)
N(RTF_REJECT, RTF_REJECT)
N(RTF_STATIC, RTF_STATIC)
N(RTF_BLACKHOLE, RTF_BLACKHOLE)
N(RTF_LLINFO, RTF_LLINFO)
N(RTF_WASCLONED, RTF_WASCLONED)
N(RTF_LOCAL, RTF_LOCAL)
N(RTF_BROADCAST, RTF_BROADCAST)
N(RTF_MULTICAST, RTF_MULTICAST)
N(RTF_IFSCOPE, RTF_IFSCOPE)
SIZE(rt_metrics)
SIZE(rt_msghdr)
OFF(rt_msghdr, rtm_msglen)
OFF(rt_msghdr, rtm_version)
OFF(rt_msghdr, rtm_type)
OFF(rt_msghdr, rtm_index)
OFF(rt_msghdr, rtm_flags)
OFF(rt_msghdr, rtm_addrs)
OFF(rt_msghdr, rtm_pid)
OFF(rt_msghdr, rtm_seq)
OFF(rt_msghdr, rtm_errno)
OFF(rt_msghdr, rtm_use)
OFF(rt_msghdr, rtm_inits)
OFF(rt_msghdr, rtm_rmx)

/* <sys/fcntl.h> */
N(F_GETFD, F_GETFD)
N(F_SETFD, F_SETFD)
N(F_GETFL, F_GETFL)
N(F_SETFL, F_SETFL)
N(FD_CLOEXEC, FD_CLOEXEC)
N(O_NONBLOCK, O_NONBLOCK)

/* <sys/errno.h> */
N(EPERM, EPERM)
N(ENOENT, ENOENT)
N(EINTR, EINTR)
N(ENXIO, ENXIO)
N(EBADF, EBADF)
N(ENOMEM, ENOMEM)
N(EACCES, EACCES)
N(EFAULT, EFAULT)
N(EBUSY, EBUSY)
N(EEXIST, EEXIST)
N(ENODEV, ENODEV)
N(EINVAL, EINVAL)
N(EMFILE, EMFILE)
N(ENOTTY, ENOTTY)
N(EAGAIN, EAGAIN)
N(EWOULDBLOCK, EWOULDBLOCK)
N(ENOTSOCK, ENOTSOCK)
N(EDESTADDRREQ, EDESTADDRREQ)
N(EMSGSIZE, EMSGSIZE)
N(EPROTOTYPE, EPROTOTYPE)
N(ENOPROTOOPT, ENOPROTOOPT)
N(EPROTONOSUPPORT, EPROTONOSUPPORT)
N(EOPNOTSUPP, EOPNOTSUPP)
N(EAFNOSUPPORT, EAFNOSUPPORT)
N(EADDRINUSE, EADDRINUSE)
N(EADDRNOTAVAIL, EADDRNOTAVAIL)
N(ENOBUFS, ENOBUFS)
N(EISCONN, EISCONN)
N(ENOTCONN, ENOTCONN)

/* <ifaddrs.h> (Libinfo) */
SIZE(ifaddrs)
OFF(ifaddrs, ifa_next)
OFF(ifaddrs, ifa_name)
OFF(ifaddrs, ifa_flags)
OFF(ifaddrs, ifa_addr)
OFF(ifaddrs, ifa_netmask)
OFF(ifaddrs, ifa_dstaddr)
OFF(ifaddrs, ifa_data)

/* <sys/un.h>, <sys/ucred.h>, <sys/param.h>: LOCAL_PEERCRED for the control socket */
N(SOL_LOCAL, SOL_LOCAL)
N(LOCAL_PEERCRED, LOCAL_PEERCRED)
N(XUCRED_VERSION, XUCRED_VERSION)
N(NGROUPS, NGROUPS)
SIZE(xucred)
OFF(xucred, cr_version)
OFF(xucred, cr_uid)
OFF(xucred, cr_ngroups)
OFF(xucred, cr_groups)
